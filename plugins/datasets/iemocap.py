"""``iemocap``: IEMOCAP from the user's files (the data needs a licence; mmbench ships none of it).

Formats (``--data FILE`` or a folder holding one of :data:`KNOWN_FILES`):

* **Spreadsheet** (``.xlsx`` / ``.csv``), one row per utterance: ``Utterance`` (raw text, the
  ``text`` modality, encoded by the protocol's text encoder), ``V1``, ``V3``, ``V4`` and optional
  ``V2`` (the ``audio`` streams), ``A2`` (the ``visual`` stream), ``Emotion``, optional
  ``File Name`` / ``File_name`` (ids such as ``Ses01F_impro01_F000``). Widths come from the data.
* **COSMIC pickles**: sentences (``iemocap.pkl``: ``speakers, labels, sentences, trainIds,
  testIds, validIds``) and RoBERTa features (``iemocap_features_roberta.pkl``: ``speakers, labels,
  roberta1-4, sentences, trainIds, testIds, validIds``; ``text`` = the mean of the four vectors).
  Their train/valid/test lists are used as given.
* **DialogueRNN / M3Net / MMGCN feature pickle** (``IEMOCAP_features.pkl``; any widths, e.g. audio
  1,582-d and visual 342-d): ``videoIDs, videoSpeakers,
  videoLabels, videoText, videoAudio, videoVisual, videoSentence, trainVid, testVid``; labels are
  ints for ``hap, sad, neu, ang, exc, fru``. Read with the restricted unpickler. The ``text``
  modality holds both the pickle's text features (``--encoder text=precomputed``) and the
  sentences (encoded by ``tfidf``/``hf-text``, the protocol's default).

Split (``split_scheme`` in meta, recorded in the protocol): test = session 5 (speaker-independent:
its two actors appear nowhere else); dev (``data.dev``) = COSMIC's 12 validation dialogues
(:data:`COSMIC_DEV`, default) or ``hash``: in each session the ``dev_fraction`` (0.12) of dialogues
with the lowest stable hash of their id; train = the rest. A spreadsheet without ids is refused
unless ``data.split=random`` accepts a stratified 70/10/20 split (own fingerprint). Groups:
``speaker`` (``Ses01F``), ``session``, ``dialogue``; ``positions`` = order inside the dialogue.

Class sets: ``classes: 6`` (default; hap, sad, neu, ang, exc, fru), ``classes: 4`` (hap+exc, sad,
neu, ang), ``classes: 8`` (adds sur, fea: the reference system's 8 classes), or a list of labels
(``+`` merges labels into one class). Rows whose label is outside the set
(``xxx``, ``oth``, ``dis``...) are dropped and counted in ``meta["dropped_labels"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.contracts import DatasetPlugin
from mmbench.data import MultimodalData
from mmbench.errors import DataError, UsageError
from mmbench.plugins.datasets.dialogue_pickle import (
    fallback_split,
    finish,
    held_out_groups,
    locate,
    order_positions,
    read_dialogue_pickle,
    split_array,
)
from mmbench.plugins.datasets.emotions import (
    ClassSet,
    encode_labels,
    resolve_class_set,
    warn,
)

KNOWN_FILES = (
    "IEMOCAP_features.pkl",
    "IEMOCAP_features_raw.pkl",
    "Filtered_IMOCAP.xlsx",
    "Filtered_IEMOCAP.xlsx",
    "IEMOCAP.xlsx",
    "IEMOCAP.csv",
    "Filtered_IMOCAP.csv",
    "features.csv",  # what `mmbench extract` writes
    "iemocap.pkl",  # COSMIC's sentences
    "iemocap_features_roberta.pkl",  # COSMIC's RoBERTa features
)
PICKLE_FIELDS = (
    "videoIDs",
    "videoSpeakers",
    "videoLabels",
    "videoText",
    "videoAudio",
    "videoVisual",
    "videoSentence",
    "trainVid",
    "testVid",
)
#: COSMIC's sentence pickle (``iemocap/iemocap.pkl``: speakers, labels, sentences, trainIds,
#: testIds, validIds) and RoBERTa feature pickle (``iemocap_features_roberta.pkl``: speakers,
#: labels, roberta1-4 (1,024-d each), sentences, trainIds, testIds, validIds), as role names.
COSMIC_SENTENCES = ("videoSpeakers", "videoLabels", "videoSentence", "trainVid", "testVid", "validVid")
COSMIC_ROBERTA = (
    "videoSpeakers",
    "videoLabels",
    "roberta1",
    "roberta2",
    "roberta3",
    "roberta4",
    "videoSentence",
    "trainVid",
    "testVid",
    "validVid",
)
ROBERTA_FIELDS = ("roberta1", "roberta2", "roberta3", "roberta4")
PICKLE_LAYOUTS = {9: PICKLE_FIELDS, 6: COSMIC_SENTENCES, 10: COSMIC_ROBERTA}
PICKLE_FORMATS = {9: "DialogueRNN pickle", 6: "COSMIC sentence pickle", 10: "COSMIC RoBERTa pickle"}
#: The 12 validation dialogues of sessions 1-4 that the COSMIC line of work ships (``validIds`` of
#: conv-emotion's COSMIC/feature-extraction/iemocap/iemocap.pkl): the most reused fixed IEMOCAP
#: dev split (train 108 / dev 12 / test 31 dialogues).
COSMIC_DEV = (
    "Ses01M_impro01",
    "Ses01M_script03_1",
    "Ses02F_impro02",
    "Ses02F_impro07",
    "Ses02M_script01_2",
    "Ses03F_impro01",
    "Ses03M_impro02",
    "Ses03M_impro08a",
    "Ses03M_script02_2",
    "Ses03M_script03_2",
    "Ses04F_impro07",
    "Ses04F_script02_1",
)
PICKLE_LABELS = ("hap", "sad", "neu", "ang", "exc", "fru")
#: canonical column -> other accepted header spellings (case-insensitive matches are accepted too)
ID_ALIASES = {"File Name": ("File_name", "FileName", "Filename", "file_name")}
OPTIONS = {
    "classes",
    "dev_fraction",
    "duplicate_ids",
    "audio_columns",
    "visual_columns",
    "allow_duplicates",
    "encoding",
    "standardize",
}
IEMOCAP_OPTIONS = OPTIONS | {"dev", "split"}
#: ``Ses01F_impro01_F000`` / ``Ses01F_script01_1_M012``: session, dialogue, speaker's gender.
ID_PATTERN = re.compile(r"^(Ses(\d{2})[MF]_.+)_([MF])\d+$")
HELP = (
    "Expected: a spreadsheet (.xlsx or .csv; columns Utterance, V1, V3, V4, A2, Emotion, optional V2 "
    "and File Name with ids like Ses01F_impro01_F000), or the DialogueRNN feature pickle "
    "IEMOCAP_features.pkl; a folder is searched for " + ", ".join(KNOWN_FILES) + ". IEMOCAP is "
    "distributed under a licence by USC SAIL: request it at https://sail.usc.edu/iemocap/ "
    "(the DialogueRNN pickle is published with the DialogueRNN code once you hold that licence). "
    "See docs/datasets.md."
)


def check_options(dataset: str, options: dict[str, Any], known: set[str]) -> float:
    """Refuse unknown ``data.*`` options; return ``dev_fraction``."""
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(
            f"unknown option(s) data.{', data.'.join(unknown)} for dataset {dataset}; known: "
            f"{', '.join(sorted(known - {'allow_duplicates'}))}"
        )
    frac = options.get("dev_fraction", 0.12)
    if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 < frac < 0.5:
        raise UsageError(f"data.dev_fraction must be a number in (0, 0.5), got {frac!r}")
    mode = options.get("duplicate_ids", "error")
    if mode not in ("error", "keep"):
        raise UsageError(f"data.duplicate_ids must be error or keep, got {mode!r}")
    return float(frac)


def check_unique_ids(ids: list[str], rows: np.ndarray, path: Path, column: str, mode: str) -> int:
    """Refuse repeated utterance ids (the trace of over-sampling before splitting) unless ``keep``."""
    seen: dict[str, int] = {}
    repeats = 0
    first: tuple[str, int, int] | None = None
    for i, uid in enumerate(ids):
        if uid in seen:
            repeats += 1
            first = first or (uid, int(rows[seen[uid]]), int(rows[i]))
        else:
            seen[uid] = i
    if repeats and mode != "keep":
        uid, a, b = first  # type: ignore[misc]
        raise DataError(
            f"{repeats} rows repeat an earlier id (e.g. {uid!r} on rows {a} and {b}). Repeated "
            "utterances usually mean the sheet was over-sampled before splitting, which puts copies "
            "of one utterance in several places; keep one row per utterance, or accept them with "
            "--set data.duplicate_ids=keep (recorded in the protocol)",
            path=path,
            column=column,
        )
    return repeats


@dataclass(frozen=True)
class SheetLayout:
    """Which spreadsheet columns make the ``audio`` and ``visual`` streams, in stream order."""

    audio: tuple[str, ...]
    visual: tuple[str, ...]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    #: the reference columns were assumed (no data.audio_columns/visual_columns given)
    default: bool = False
    #: data.encoding=strict: a CSV line that is not UTF-8 is refused instead of read as cp1252
    strict_encoding: bool = False


def sheet_layout(dataset: str, options: dict[str, Any]) -> SheetLayout:
    """The reference layout, or ``data.audio_columns`` / ``data.visual_columns`` (all required)."""
    audio, visual = options.get("audio_columns"), options.get("visual_columns")
    for key, value in (("audio_columns", audio), ("visual_columns", visual)):
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(c, str) and c.strip() for c in value)
        ):
            raise UsageError(f"data.{key} must be a list of column names, e.g. [V1, V3], got {value!r}")
    encoding = options.get("encoding", "auto")
    if encoding not in ("auto", "strict"):
        raise UsageError(
            f"data.encoding must be auto (UTF-8, cp1252 lines with a warning) or strict, got {encoding!r}"
        )
    default = audio is None and visual is None
    required: list[str] = []
    optional: list[str] = []
    if audio is None:
        audio, required, optional = ["V1", "V2", "V3", "V4"], ["V1", "V3", "V4"], ["V2"]
    else:
        required += audio
    if visual is None:
        visual = ["A2"]
        (required if dataset == "iemocap" else optional).append("A2")
    else:
        required += visual
    clash = sorted(set(audio) & set(visual))
    if clash:
        raise UsageError(f"column {clash[0]} is in both data.audio_columns and data.visual_columns")
    return SheetLayout(
        tuple(audio),
        tuple(visual),
        tuple(dict.fromkeys(required)),
        tuple(optional),
        default,
        encoding == "strict",
    )


def read_sheet(path: Path, layout: SheetLayout, optional_texts: tuple[str, ...]) -> Any:
    """The spreadsheet through :func:`mmbench.formats.spreadsheet.read_feature_table`.

    With the reference layout assumed and none of its feature columns in the header, the sheet is
    read as text only (``Utterance`` and ``Emotion``); some but not all of them is an error naming
    the missing column.
    """
    from mmbench.formats.spreadsheet import read_feature_table, read_header

    if layout.default:
        header = {h.strip().lower() for h in read_header(path, layout.strict_encoding)}
        if not header & {c.lower() for c in (*layout.audio, *layout.visual)}:
            layout = SheetLayout((), (), (), (), False, layout.strict_encoding)
    return read_feature_table(
        path,
        strict_encoding=layout.strict_encoding,
        vector_columns=list(layout.required),
        text_columns=["Utterance", "Emotion"],
        optional_vector_columns=list(layout.optional),
        optional_text_columns=list(optional_texts),
        aliases={k: list(v) for k, v in ID_ALIASES.items()},
    )


def sheet_modalities(table: Any, layout: SheetLayout) -> dict[str, dict[str, np.ndarray]]:
    """``audio`` = V1 (+V2) + V3 + V4 and ``visual`` = A2 by default (columns that are present)."""
    out = {}
    for modality, columns in (("audio", layout.audio), ("visual", layout.visual)):
        streams = {c: table.vectors[c] for c in columns if c in table.vectors}
        if streams:
            out[modality] = streams
    return out


class IemocapDataset(DatasetPlugin):
    """IEMOCAP from a reference-format spreadsheet, a DialogueRNN/M3Net feature pickle or COSMIC's pickles."""

    needs_data: ClassVar[bool] = True
    id_pattern: ClassVar[str | None] = ID_PATTERN.pattern
    #: Utterances of one dialogue share errors: the tie test resamples dialogues.
    cluster_unit: ClassVar[str | None] = "dialogue"
    data_help: ClassVar[str] = HELP

    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        dev_fraction = check_options("iemocap", options, IEMOCAP_OPTIONS)
        class_set = resolve_class_set("iemocap", options.get("classes"))
        dev = options.get("dev", "cosmic")
        if dev not in ("cosmic", "hash"):
            raise UsageError(f"data.dev must be cosmic (COSMIC's 12 dialogues) or hash, got {dev!r}")
        split = options.get("split", "sessions")
        if split not in ("sessions", "random"):
            raise UsageError(f"data.split must be sessions or random, got {split!r}")
        plan = SplitPlan(dev, dev_fraction, split)
        file = locate(path, "iemocap", KNOWN_FILES, HELP)
        suffix = file.suffix.lower()
        if suffix in (".pkl", ".pickle"):
            return standardized(self._from_pickle(file, class_set, plan), options)
        if suffix in (".xlsx", ".csv"):
            layout = sheet_layout("iemocap", options)
            dup_mode = options.get("duplicate_ids", "error")
            return standardized(self._from_sheet(file, class_set, plan, dup_mode, layout), options)
        raise DataError(f"unsupported file type {suffix or '(none)'}; {HELP}", path=file)

    # -------------------------------------------------------------------------- spreadsheet
    def _from_sheet(
        self, path: Path, class_set: ClassSet, plan: SplitPlan, dup_mode: str, layout: SheetLayout
    ) -> MultimodalData:
        table = read_sheet(path, layout, ("File Name",))
        n = len(table.rows)
        labels, dropped = encode_labels(table.texts["Emotion"], class_set, path=path, rows=table.rows)
        texts = list(table.texts["Utterance"])
        ids = table.texts.get("File Name")
        if ids is not None and all(not str(u).strip() for u in ids):
            ids = None
        meta: dict[str, Any] = {"source": str(path), "format": "spreadsheet", "sha256": table.sha256}
        groups: dict[str, list[str]] = {}
        positions = None
        if ids is None:
            if plan.split != "random":
                raise DataError(
                    "no File Name column with IEMOCAP utterance ids (such as Ses01F_impro01_F000), so "
                    "the standard split (test = session 5, whole dialogues per split) is impossible and a "
                    "random utterance-level split would put turns of one dialogue and one speaker in "
                    "train and test. Add a 'File Name' column with the ids (IEMOCAP's transcriptions name "
                    "every turn), or accept a random stratified 70/10/20 split explicitly with "
                    "--set data.split=random (not comparable with published results; own fingerprint)",
                    path=path,
                    column="File Name",
                )
            warn(
                f"{path}: data.split=random: stratified 70/10/20 utterance-level split (seed 0); results "
                "are not comparable with the session split (they get their own protocol fingerprint)"
            )
            row_ids = [f"row{r}" for r in table.rows]
            keep = labels >= 0
            splits = fallback_split(labels[keep], None, path)
            split_of_row = np.full(n, "", dtype=object)
            split_of_row[np.flatnonzero(keep)] = split_array(int(keep.sum()), splits)
            meta["split_scheme"] = "iemocap random: stratified 70/10/20 (seed 0), file has no ids"
        else:
            ids = [str(u).strip() for u in ids]
            meta["repeated_ids"] = check_unique_ids(ids, table.rows, path, "File Name", dup_mode)
            sessions, dialogues, speakers = [], [], []
            for uid, row in zip(ids, table.rows, strict=True):
                m = ID_PATTERN.match(uid)
                if not m or not 1 <= int(m.group(2)) <= 5:
                    raise DataError(
                        f"id {uid!r} is not an IEMOCAP utterance id such as Ses01F_impro01_F000 "
                        "(session 01-05, dialogue, speaker gender and turn)",
                        path=path,
                        row=int(row),
                        column="File Name",
                    )
                sessions.append(f"Ses{m.group(2)}")
                dialogues.append(m.group(1))
                speakers.append(f"Ses{m.group(2)}{m.group(3)}")
            row_ids = ids
            split_of_row, meta["split_scheme"] = session_split(sessions, dialogues, labels >= 0, plan, path)
            groups = {"speaker": speakers, "session": sessions, "dialogue": dialogues}
            positions = order_positions(dialogues)  # ids number each speaker's turns, not the dialogue's
        return require_session5(
            finish(
                "iemocap",
                path,
                labels,
                class_set,
                dropped,
                split_of_row,
                sheet_modalities(table, layout),
                {"text": texts},
                row_ids,
                groups,
                meta,
                positions,
            ),
            path,
        )

    # ------------------------------------------------------------------------------- pickle
    def _from_pickle(self, path: Path, class_set: ClassSet, plan: SplitPlan) -> MultimodalData:
        missing = [c for c in class_set.concepts() if c not in PICKLE_LABELS]
        if missing:
            raise UsageError(
                f"{path}: IEMOCAP pickles hold only the labels {', '.join(PICKLE_LABELS)}; "
                f"class set {class_set.name} also needs {', '.join(missing)} (use a spreadsheet for it)"
            )
        features = ("videoText", "videoAudio", "videoVisual", *ROBERTA_FIELDS)
        rows = read_dialogue_pickle(path, PICKLE_LAYOUTS, features, 6)
        index = class_set.index()
        code_of = np.array(PICKLE_LABELS)[rows.label]
        labels = np.array([index.get(c, -1) for c in code_of], dtype=np.int64)
        dropped: dict[str, int] = {}
        for c in code_of[labels < 0]:
            dropped[str(c)] = dropped.get(str(c), 0) + 1
        sessions, speakers = [], []
        for dialogue, spk in zip(rows.dialogue, rows.speaker, strict=True):
            m = re.match(r"^Ses(\d{2})", dialogue)
            if not m or not 1 <= int(m.group(1)) <= 5:
                raise DataError(
                    f"dialogue id {dialogue!r} does not name an IEMOCAP session (Ses01..Ses05)", path=path
                )
            sessions.append(f"Ses{m.group(1)}")
            speakers.append(f"Ses{m.group(1)}{spk}")
        n_fields = len(rows.extra.get("layout", ())) or None
        meta: dict[str, Any] = {"source": str(path), "format": PICKLE_FORMATS.get(n_fields or 9, "pickle")}
        if rows.valid_dialogues:
            # The file's own lists, used as given (COSMIC: 108 / 12 / 31 dialogues).
            valid, test = set(rows.valid_dialogues), set(rows.test_dialogues)
            split_of_row = np.array(
                ["test" if d in test else ("dev" if d in valid else "train") for d in rows.dialogue],
                dtype=object,
            )
            meta["split_scheme"] = (
                f"iemocap file lists: train {len(rows.train_dialogues)} / valid {len(valid)} / test "
                f"{len(test)} dialogues as given in the pickle"
            )
        else:
            test_by_session = {d for d, s in zip(rows.dialogue, sessions, strict=True) if s == "Ses05"}
            if test_by_session != set(rows.test_dialogues):
                warn(
                    f"{path}: testVid ({len(rows.test_dialogues)} dialogues) is not exactly session 5 "
                    f"({len(test_by_session)} dialogues); mmbench uses session 5 as test"
                )
                meta["testVid_differs_from_session5"] = True
            split_of_row, meta["split_scheme"] = session_split(
                sessions, rows.dialogue, labels >= 0, plan, path
            )
        modalities = pickle_modalities(rows)
        groups = {"speaker": speakers, "session": sessions, "dialogue": rows.dialogue}
        return require_session5(
            finish(
                "iemocap",
                path,
                labels,
                class_set,
                dropped,
                split_of_row,
                modalities,
                {"text": rows.sentences},
                rows.utterance,
                groups,
                meta,
                rows.position,
            ),
            path,
        )


def standardized(data: MultimodalData, options: dict[str, Any]) -> MultimodalData:
    """``data.standardize: true``: every numeric feature z-scored with the train split's statistics."""
    from mmbench.formats.values import standardize_train_only

    if options.get("standardize", False):
        data.modalities = standardize_train_only(data.modalities, data.splits["train"])
        data.meta["standardized"] = "train mean/std per feature"
    return data


def pickle_modalities(rows: Any) -> dict[str, dict[str, np.ndarray]]:
    """``text`` (``videoText``, or the mean of COSMIC's four RoBERTa vectors, as COSMIC averages
    them), ``audio`` and ``visual``: whichever the pickle holds."""
    out: dict[str, dict[str, np.ndarray]] = {}
    if all(f in rows.streams for f in ROBERTA_FIELDS):
        stack = np.stack([rows.streams[f] for f in ROBERTA_FIELDS])
        out["text"] = {"roberta": stack.mean(axis=0).astype(np.float32)}
    elif "videoText" in rows.streams:
        out["text"] = {"videoText": rows.streams["videoText"]}
    for modality, name in (("audio", "videoAudio"), ("visual", "videoVisual")):
        if name in rows.streams:
            out[modality] = {name: rows.streams[name]}
    return out


@dataclass(frozen=True)
class SplitPlan:
    """How to split sessions 1-4 into train and dev (``dev``: cosmic | hash) or not at all."""

    dev: str = "cosmic"
    dev_fraction: float = 0.12
    split: str = "sessions"


def require_session5(data: MultimodalData, path: Path) -> MultimodalData:
    """With the session split, an empty test split means the file holds no session 5."""
    if "Ses05" in data.meta.get("split_scheme", "") and not len(data.splits["test"]):
        raise DataError("no session 5 utterances: IEMOCAP's test split is session 5 (Ses05...)", path=path)
    return data


def split_scheme(dev_fraction: float) -> str:
    """The hash-based split description recorded in the protocol (its change changes the fingerprint)."""
    return (
        f"iemocap sessions: test = Ses05; dev = {dev_fraction:g} of the dialogues of each of Ses01-Ses04 "
        "(lowest blake2b hash of the dialogue id); train = the rest"
    )


COSMIC_SCHEME = "iemocap sessions: test = Ses05; dev = the 12 COSMIC validation dialogues; train = the rest"


def session_split(
    sessions: list[str], dialogues: list[str], kept: np.ndarray, plan: SplitPlan, path: object = None
) -> tuple[np.ndarray, str]:
    """Per-row split and its description: test = session 5; dev = COSMIC's 12 dialogues (default,
    when the file holds all of them) or hash-ranked held-out dialogues of sessions 1-4."""
    present = {d for d, s in zip(dialogues, sessions, strict=True) if s != "Ses05"}
    if plan.dev == "cosmic":
        missing = [d for d in COSMIC_DEV if d not in present]
        if not missing:
            dev, scheme = set(COSMIC_DEV), COSMIC_SCHEME
        else:
            warn(
                f"{path}: {len(missing)} of COSMIC's 12 validation dialogues are not in the file (e.g. "
                f"{missing[0]}); dev = {plan.dev_fraction:g} of each session's dialogues (hash-ranked) "
                "instead; results get their own protocol fingerprint"
            )
            dev, scheme = None, split_scheme(plan.dev_fraction)
    else:
        dev, scheme = None, split_scheme(plan.dev_fraction)
    if dev is None:
        train_pool = [(d, s) for d, s, k in zip(dialogues, sessions, kept, strict=True) if s != "Ses05" and k]
        dev = held_out_groups([d for d, _ in train_pool], plan.dev_fraction, [s for _, s in train_pool])
    out = np.empty(len(sessions), dtype=object)
    for i, (d, s) in enumerate(zip(dialogues, sessions, strict=True)):
        out[i] = "test" if s == "Ses05" else ("dev" if d in dev else "train")
    return out, scheme
