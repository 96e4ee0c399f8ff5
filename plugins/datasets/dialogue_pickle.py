"""Shared parts of the dialogue emotion datasets (``iemocap``, ``meld``).

* :func:`read_dialogue_pickle`: the DialogueRNN feature-pickle layout (a tuple of dicts keyed by
  dialogue id holding per-utterance lists, plus the train/test dialogue lists), read with the
  restricted unpickler (:func:`mmbench.formats.safe_pickle.safe_load`) and flattened to one row per
  utterance, checking lengths, widths and finiteness with messages naming dialogue and utterance.
* split helpers: hash-ranked held-out dialogues (deterministic, independent of file order) and a
  grouped stratified fallback for files that carry no split information.
* :func:`locate`: resolve ``--data`` (file or folder) against the known file names, or explain
  which files are expected and where to obtain them.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import DataError, UsageError
from mmbench.formats.values import VALUE_LIMIT, first_bad


# ------------------------------------------------------------------------------------ pickles
@dataclass
class DialogueRows:
    """A feature pickle flattened to one row per utterance (pickle order: train dialogues, then test)."""

    dialogue: list[str]
    utterance: list[str]
    speaker: list[str]
    label: np.ndarray  # int64 raw label index of the pickle
    streams: dict[str, np.ndarray]  # field name (videoText...) -> float32 [N, D]
    sentences: list[str]
    train_dialogues: list[str]
    test_dialogues: list[str]
    #: the file's own validation dialogues (COSMIC layouts); empty when the file has no such list
    valid_dialogues: list[str] = field(default_factory=list)
    #: each row's 0-based position in its dialogue (the pickle's per-dialogue list order)
    position: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _as_list(value: Any) -> list:
    if isinstance(value, np.ndarray):
        return list(value)
    return list(value)


def read_dialogue_pickle(
    path: Path,
    layouts: dict[int, tuple[str, ...]],
    feature_fields: Sequence[str],
    n_labels: int,
) -> DialogueRows:
    """Read a dialogue pickle; ``layouts`` maps tuple length -> field names.

    Field names are the DialogueRNN ones (``videoIDs``, ``videoSpeakers``, ``videoLabels``,
    ``videoSentence``, ``trainVid``, ``testVid``) plus ``validVid`` for layouts that ship a
    validation list (COSMIC's ``validIds``); a name starting with ``_`` is a field that is read
    past (e.g. sentiment labels). Only the ``feature_fields`` present in the layout are read.
    """
    from mmbench.formats.safe_pickle import safe_load

    try:
        obj = safe_load(path)
    except DataError as exc:
        if exc.path is None:  # make sure the message names the file
            raise DataError(str(exc), path=path) from None
        raise
    if not isinstance(obj, (tuple, list)) or len(obj) not in layouts:
        got = (
            f"a {type(obj).__name__} of {len(obj)} items"
            if isinstance(obj, (tuple, list))
            else type(obj).__name__
        )
        shapes = " or of ".join(
            f"{k} items ({', '.join(n.lstrip('_') for n in names)})" for k, names in layouts.items()
        )
        raise DataError(f"expected a dialogue pickle layout, a tuple of {shapes}; got {got}", path=path)
    layout = layouts[len(obj)]
    fields = {k: v for k, v in zip(layout, obj, strict=True) if not k.startswith("_")}
    feature_fields = [f for f in feature_fields if f in fields]
    for name in ("videoIDs", "videoSpeakers", "videoLabels", "videoSentence", *feature_fields):
        if name in fields and not isinstance(fields[name], dict):
            raise DataError(f"field {name} must be a dict keyed by dialogue id", path=path)
    # trainVid/testVid are often sets: sort so the row order (and the data fingerprint) never
    # depends on Python's string hashing.
    train = sorted((_key(v) for v in _as_list(fields["trainVid"])), key=_natural)
    test = sorted((_key(v) for v in _as_list(fields["testVid"])), key=_natural)
    valid = sorted((_key(v) for v in _as_list(fields.get("validVid", []))), key=_natural)
    for a, b, name in (
        (train, test, "trainVid and testVid"),
        (train, valid, "the train and valid lists"),
        (valid, test, "the valid and test lists"),
    ):
        both = set(a) & set(b)
        if both:
            raise DataError(
                f"{len(both)} dialogues are in both {name} (e.g. {sorted(both, key=_natural)[0]})", path=path
            )
    keyed = {
        name: {_key(k): v for k, v in fields[name].items()}
        for name in fields
        if isinstance(fields[name], dict)
    }
    out = DialogueRows([], [], [], np.zeros(0, np.int64), {}, [], train, test, valid)
    out.extra["layout"] = layout
    labels: list[int] = []
    columns: dict[str, list[np.ndarray]] = {f: [] for f in feature_fields}
    dims: dict[str, int] = {}
    for dialogue in [*train, *valid, *test]:
        if dialogue not in keyed["videoLabels"]:
            raise DataError(
                f"dialogue {dialogue!r} is listed in trainVid/testVid but has no videoLabels", path=path
            )
        dlabels = _as_list(keyed["videoLabels"][dialogue])
        n = len(dlabels)
        for name in ("videoIDs", "videoSpeakers", "videoSentence", *feature_fields):
            if name not in keyed:
                continue
            if dialogue not in keyed[name]:
                raise DataError(f"dialogue {dialogue!r} is missing from {name}", path=path)
            got = len(_as_list(keyed[name][dialogue]))
            if got != n:
                raise DataError(
                    f"dialogue {dialogue!r}: {name} has {got} utterances but videoLabels has {n}", path=path
                )
        for j, value in enumerate(dlabels):
            try:
                label = int(value)
            except (TypeError, ValueError):
                label = -1
            if label < 0 or label >= n_labels or float(value) != label:
                raise DataError(
                    f"dialogue {dialogue!r}, utterance {j}: label {value!r} is not one of 0..{n_labels - 1}",
                    path=path,
                )
            labels.append(label)
        ids = keyed.get("videoIDs", {}).get(dialogue)
        out.utterance += (
            [str(u) for u in _as_list(ids)] if ids is not None else [f"{dialogue}_{j}" for j in range(n)]
        )
        out.dialogue += [dialogue] * n
        out.position += list(range(n))
        speakers = keyed.get("videoSpeakers", {}).get(dialogue)
        out.speaker += (
            [_speaker(dialogue, s) for s in _as_list(speakers)] if speakers is not None else [""] * n
        )
        sentences = keyed.get("videoSentence", {}).get(dialogue)
        out.sentences += [repair_text(s) for s in _as_list(sentences)] if sentences is not None else [""] * n
        for name in feature_fields:
            try:
                arr = np.asarray(_as_list(keyed[name][dialogue]), dtype=np.float32)
            except (TypeError, ValueError):
                raise DataError(
                    f"dialogue {dialogue!r}: {name} is ragged or not numeric (utterance vectors of "
                    "different lengths?)",
                    path=path,
                ) from None
            if arr.ndim != 2 or (n and arr.shape[0] != n):
                raise DataError(f"dialogue {dialogue!r}: {name} must be one vector per utterance", path=path)
            if dims.setdefault(name, arr.shape[1]) != arr.shape[1]:
                raise DataError(
                    f"dialogue {dialogue!r}: {name} vectors have {arr.shape[1]} values, earlier "
                    f"dialogues {dims[name]}",
                    path=path,
                )
            bad = first_bad(arr) if arr.size else None
            if bad is not None:
                raise DataError(
                    f"dialogue {dialogue!r}, utterance {bad[0]}: {name} value {bad[1] + 1} is "
                    f"{arr[bad]!r}: NaN, infinite or beyond +-{VALUE_LIMIT:g} (its square overflows "
                    "float32 statistics)",
                    path=path,
                )
            columns[name].append(arr)
    if not labels:
        raise DataError("the pickle holds no utterances", path=path)
    out.label = np.asarray(labels, dtype=np.int64)
    out.streams = {name: np.concatenate(arrs, axis=0) for name, arrs in columns.items()}
    return out


_C1 = range(0x80, 0xA0)


def repair_text(value: Any) -> str:
    """A sentence as text; Windows-1252 punctuation read as Latin-1 control characters (the
    pickles were written by Python 2 and are read with ``encoding='latin1'``: ``company\x92s``)
    is decoded back (``company’s``)."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    text = str(value)
    if any(ord(c) in _C1 for c in text):
        try:
            return text.encode("latin-1").decode("cp1252")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return text
    return text


def _key(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin1")
    if isinstance(value, (np.integer, float)) and float(value) == int(value):
        return str(int(value))
    return str(value)


def _natural(key: str) -> tuple[int, int, str]:
    """Sort integer ids numerically, before other ids, and other ids as text."""
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def _speaker(dialogue: str, value: Any) -> str:
    """IEMOCAP pickles hold 'M'/'F'; MELD pickles a one-hot vector per utterance."""
    if isinstance(value, (str, bytes)):
        return _key(value)
    arr = np.asarray(value).ravel()
    if arr.size > 1:
        return f"{dialogue}:spk{int(arr.argmax())}"
    return f"{dialogue}:spk{arr[0] if arr.size else ''}"


# ------------------------------------------------------------------------------------- splits
def hash_rank(key: str, salt: str = "mmbench-dev") -> int:
    """A stable pseudo-random rank of a group id (independent of file order and platform)."""
    return int.from_bytes(hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest(), "big")


def held_out_groups(groups: Sequence[str], fraction: float, strata: Sequence[str] | None = None) -> set[str]:
    """The ``fraction`` of distinct groups (at least one per stratum) with the lowest hash rank."""
    strata = strata if strata is not None else [""] * len(groups)
    by_stratum: dict[str, set[str]] = {}
    for g, s in zip(groups, strata, strict=True):
        by_stratum.setdefault(s, set()).add(g)
    chosen: set[str] = set()
    for members in by_stratum.values():
        ranked = sorted(members, key=hash_rank)
        k = max(1, int(round(fraction * len(ranked)))) if len(ranked) > 1 else 0
        chosen.update(ranked[:k])
    return chosen


#: Spellings of split names in split columns and file names, mapped to train/dev/test.
SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "development": "dev",
    "test": "test",
    "testing": "test",
}


def fallback_split(
    labels: np.ndarray,
    groups: np.ndarray | None,
    path: object = None,
    test_fraction: float = 0.2,
    dev_fraction: float = 0.1,
) -> dict[str, np.ndarray]:
    """Grouped stratified split (seed 0): ~``test_fraction`` test, ~``dev_fraction`` dev, rest train.

    Rows of one group stay in one split; without groups every row is its own group.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n = len(labels)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    idx = np.arange(n)

    def one_fold(rows: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        k = max(2, int(round(1 / fraction)))
        n_groups = len(np.unique(groups[rows]))
        if n_groups < k:
            raise DataError(f"only {n_groups} groups of rows: too few for a train/dev/test split", path=path)
        folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # classes rarer than k
            rest, held = next(folds.split(rows, labels[rows], groups[rows]))
        return rows[rest], rows[held]

    rest, test = one_fold(idx, test_fraction)
    train, dev = one_fold(rest, dev_fraction / (1 - test_fraction))
    return {"train": np.sort(train), "dev": np.sort(dev), "test": np.sort(test)}


# ---------------------------------------------------------------------------------- locating
def locate(path: Path | None, dataset: str, known_names: Sequence[str], help_text: str) -> Path:
    """The data file: ``path`` itself, or the one known file (or CSV folder) found inside a folder."""
    if path is None:
        raise UsageError(
            f"dataset {dataset} needs your data files (--data FILE_OR_FOLDER or MMBENCH_DATA). {help_text}"
        )
    if path.is_file():
        return path
    candidates = [path, path / dataset, path / dataset.upper()]
    for folder in candidates:
        if not folder.is_dir():
            continue
        entries = {p.name.lower(): p for p in folder.iterdir()}
        found = [entries[n.lower()] for n in known_names if n.lower() in entries]
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise UsageError(
                f"{folder} holds several {dataset} data files ({names}); pass one with --data FILE"
            )
        if found:
            return found[0]
    raise UsageError(
        f"{path} is a folder without {dataset} data (looked for {', '.join(known_names)} in it and in "
        f"its {dataset}/ subfolder). {help_text}"
    )


# ----------------------------------------------------------------------------- dialogue order
def order_positions(dialogues: Sequence[str]) -> np.ndarray:
    """Each row's 0-based rank among the rows of its dialogue, in file order (int64 ``[N]``).

    For files that keep a dialogue's utterances in spoken order but carry no explicit index
    (an IEMOCAP sheet: ids such as ``Ses01F_impro01_F000`` number each speaker's turns separately,
    so the file order is the only dialogue order they hold).
    """
    counts: dict[str, int] = {}
    out = np.empty(len(dialogues), dtype=np.int64)
    for i, d in enumerate(dialogues):
        out[i] = counts.get(d, 0)
        counts[d] = out[i] + 1
    return out


def dialogue_positions(dialogues: Sequence[str], explicit: Sequence[int] | None = None) -> np.ndarray:
    """Positions in the dialogue: ``explicit`` (e.g. MELD's ``Utterance_ID``) when each is unique
    within its dialogue, otherwise the file order (:func:`order_positions`), e.g. when repeated
    utterance ids were accepted with ``data.duplicate_ids=keep``."""
    if explicit is not None:
        pairs = set(zip(dialogues, explicit, strict=True))
        if len(pairs) == len(dialogues) and all(int(p) >= 0 for p in explicit):
            return np.asarray(explicit, dtype=np.int64)
    return order_positions(dialogues)


# ---------------------------------------------------------------------------------- assembling
def assemble(
    name: str,
    *,
    labels: np.ndarray,
    class_names: Sequence[str],
    split_of_row: np.ndarray,
    modalities: dict[str, dict[str, np.ndarray]],
    raw: dict[str, list[str]],
    ids: Sequence[str],
    groups: dict[str, Sequence[str]],
    meta: dict[str, Any],
    positions: Sequence[int] | np.ndarray | None = None,
) -> Any:
    """``MultimodalData`` from per-row arrays, without the rows labelled ``-1`` (dropped labels).

    ``positions`` (each row's place in its dialogue, before dropping) is kept when ``groups`` has
    ``dialogue`` ids; dropped rows leave gaps, which :class:`~mmbench.data.MultimodalData` allows.
    """
    from mmbench.data import MultimodalData

    keep = np.flatnonzero(labels >= 0)
    split_of_row = np.asarray(split_of_row)[keep]
    return MultimodalData(
        name=name,
        modalities={
            m: {s: np.ascontiguousarray(a[keep]) for s, a in st.items()} for m, st in modalities.items()
        },
        labels=labels[keep].astype(np.int64),
        class_names=list(class_names),
        splits={s: np.flatnonzero(split_of_row == s).astype(np.int64) for s in ("train", "dev", "test")},
        groups={k: np.asarray(v, dtype=object)[keep].astype(str) for k, v in groups.items()},
        raw={m: [texts[i] for i in keep] for m, texts in raw.items()},
        ids=[str(ids[i]) for i in keep],
        meta=meta,
        positions=(
            np.asarray(positions, dtype=np.int64)[keep]
            if positions is not None and "dialogue" in groups
            else None
        ),
    )


def split_array(n: int, splits: dict[str, np.ndarray]) -> np.ndarray:
    """Per-row split name from split -> row indices."""
    out = np.full(n, "", dtype=object)
    for split, idx in splits.items():
        out[idx] = split
    return out


def finish(
    name: str,
    source: Path,
    labels: np.ndarray,
    class_set: Any,
    dropped: dict[str, int],
    split_of_row: np.ndarray,
    modalities: dict[str, dict[str, np.ndarray]],
    raw: dict[str, list[str]],
    ids: Sequence[str],
    groups: dict[str, Sequence[str]],
    meta: dict[str, Any],
    positions: Sequence[int] | np.ndarray | None = None,
) -> Any:
    """Warn about labels outside the class set, record the class set and the drops in ``meta``,
    and :func:`assemble` the data (shared by the iemocap and meld readers)."""
    from mmbench.plugins.datasets.emotions import describe_drops, warn

    note = describe_drops(dropped, class_set, source)
    if note:
        warn(note)
    meta.update(
        {
            "class_set": class_set.name,
            "classes": list(class_set.names),
            "dropped_labels": dropped,
            "dropped_rows": int(sum(dropped.values())),
        }
    )
    return assemble(
        name,
        labels=labels,
        class_names=class_set.names,
        split_of_row=split_of_row,
        modalities=modalities,
        raw=raw,
        ids=ids,
        groups=groups,
        meta=meta,
        positions=positions,
    )
