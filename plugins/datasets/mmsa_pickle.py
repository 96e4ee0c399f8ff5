"""Reader of the MMSA feature-pickle layout (CMU-MOSI, CMU-MOSEI, CH-SIMS sentiment data).

The MMSA toolkit (github.com/thuiar/MMSA, "2. Datasets") publishes its pre-extracted features as
one pickle per dataset and alignment: ``MOSI/Processed/aligned_50.pkl`` / ``unaligned_50.pkl``,
``MOSEI/Processed/aligned_50.pkl`` / ``unaligned_50.pkl`` and ``SIMS/Processed/unaligned_39.pkl``.
Each is a dict with the splits ``train`` / ``valid`` / ``test``, each split a dict of:

=========================== ============================= ==============================================
key                         shape                         meaning
=========================== ============================= ==============================================
``id``                      ``[N]`` str                   ``video_id$_$clip_id``
``raw_text``                ``[N]`` str                   the transcript
``text``                    ``[N, L, Dt]`` float          text features (BERT 768-d in MMSA's files,
                                                          GloVe 300-d in CMU-MultimodalSDK-derived ones)
``text_bert``               ``[N, 3, L]`` float or int    BERT token ids, attention mask, segment ids
``audio``                   ``[N, Ta, Da]`` float         audio features (COVAREP 5 / 74-d; SIMS 33-d)
``vision``                  ``[N, Tv, Dv]`` float         visual features (Facet 20 / 35-d; SIMS 709-d)
``audio_lengths``           ``[N]`` int                   real audio steps (unaligned files)
``vision_lengths``          ``[N]`` int                   real visual steps (unaligned files)
``regression_labels``       ``[N]`` float                 sentiment, [-3, 3] (SIMS: [-1, 1])
``regression_labels_T/A/V`` ``[N]`` float                 SIMS only: per-modality sentiment
``classification_labels``   ``[N]`` int                   negative (0), neutral (1), positive (2)
=========================== ============================= ==============================================

Reading follows MMSA's own loader (``src/MMSA/data_loader.py``): audio ``-inf`` becomes 0 (counted
in :attr:`MmsaSplits.neg_inf_replaced`); aligned files without lengths take every modality's real
steps from the ``text_bert`` attention mask (all steps when there is none); any NaN or infinity
left is a :class:`~mmbench.errors.DataError` naming file, split, key and row. The file is read with
the restricted unpickler (:func:`mmbench.formats.safe_pickle.safe_load`): a pickle that would
import anything but data types and numpy arrays is refused before it can run code, and every
array's element count is backed by bytes in the file (so a small file cannot ask for a large
allocation; the only padding done here, to the longest split's time axis, is bounded by the
largest array the file holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import DataError
from mmbench.formats.values import VALUE_LIMIT

#: File split key -> mmbench split.
SPLIT_KEYS = {"train": "train", "valid": "dev", "test": "test"}
TEXT_MODES = ("features", "raw", "bert_tokens")
LABEL_MODES = ("regression", "classification")
#: MMSA's classification labels (README, "2. Datasets": Negative(0), Neutral(1), Positive(2)).
CLASS_NAMES = ["negative", "neutral", "positive"]
#: Modality name in mmbench -> (features key, lengths key) in the file.
SEQUENCES = {"audio": ("audio", "audio_lengths"), "visual": ("vision", "vision_lengths")}


@dataclass
class MmsaSplits:
    """An MMSA pickle read into one row per clip (rows ordered train, valid, test)."""

    split_of_row: np.ndarray  # str [N]: train/dev/test
    ids: list[str]
    raw_text: list[str]
    sequences: dict[str, np.ndarray]  # modality -> float32 [N, T, D]
    lengths: dict[str, np.ndarray]  # modality -> int64 [N]
    labels: np.ndarray  # float32 [N] or int64 [N]
    tokens: dict[str, np.ndarray] = field(default_factory=dict)  # input_ids/attention_mask int64 [N, L]
    modality_labels: dict[str, np.ndarray] = field(default_factory=dict)  # SIMS: T/A/V float32 [N]
    sizes: dict[str, int] = field(default_factory=dict)  # mmbench split -> rows
    aligned: bool = False
    neg_inf_replaced: int = 0
    empty_sequences: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was read differently from the file, and why


class _Split:
    """One split's dict, with checked access naming file, split and key in every error."""

    def __init__(self, path: Path, split: str, part: Any) -> None:
        if not isinstance(part, dict):
            raise DataError(f"split {split!r} must be a dict of arrays, got {type(part).__name__}", path=path)
        self.path, self.split, self.part = path, split, part
        self.n = 0

    def error(self, key: str, message: str, row: int | None = None) -> DataError:
        where = f"split {self.split!r}, key {key!r}"
        if row is not None:
            where += f", row {row}"
        return DataError(f"{where}: {message}", path=self.path)

    def has(self, key: str) -> bool:
        return key in self.part and self.part[key] is not None

    def get(self, key: str, why: str) -> Any:
        if not self.has(key):
            keys = ", ".join(sorted(map(str, self.part))) or "none"
            raise DataError(
                f"split {self.split!r} has no key {key!r} ({why}); it has: {keys}", path=self.path
            )
        return self.part[key]

    def numeric(self, key: str, ndim: int, why: str) -> np.ndarray:
        """``key`` as an array of ``ndim`` dimensions and ``self.n`` rows: float32 for sequences
        (MOSEI's audio alone is 16,326 x 500 x 74 values: never widened to float64), float64 else."""
        value = self.get(key, why)
        dtype = np.float32 if ndim == 3 else np.float64
        try:
            arr = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError):
            raise self.error(key, "is not numeric (ragged or holds non-numbers)") from None
        if ndim == 1 and arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]  # [N, 1] labels, as some exports write them
        if arr.ndim != ndim:
            want = {1: "[N]", 3: "[N, T, D]"}[ndim]
            raise self.error(key, f"must have shape {want}, got {arr.shape}")
        if arr.shape[0] != self.n:
            raise self.error(key, f"has {arr.shape[0]} rows but the split has {self.n} labels")
        if ndim == 3 and (arr.shape[1] == 0 or arr.shape[2] == 0):
            raise self.error(key, f"has no time steps or no features (shape {arr.shape})")
        arr = np.ascontiguousarray(arr)  # blocks of rows below are views of it
        return arr if arr.flags.writeable else arr.copy()

    def finite(
        self, key: str, arr: np.ndarray, limit: float = VALUE_LIMIT, neg_inf_to_zero: bool = False
    ) -> int:
        """Raise naming the first row with a NaN, an infinity or a value beyond ``limit``; with
        ``neg_inf_to_zero`` first set ``-inf`` to 0 in place (MMSA's audio rule) and return how many.
        Works through blocks of rows, so the temporary masks stay small for MOSEI-sized arrays."""
        replaced = 0
        step = max(1, 2**22 // max(1, arr[0].size))
        for start in range(0, arr.shape[0], step):
            block = arr[start : start + step].reshape(min(step, arr.shape[0] - start), -1)
            if neg_inf_to_zero:
                hit = np.isneginf(block)
                replaced += int(hit.sum())
                block[hit] = 0.0
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(block) | (np.abs(block) > limit)
            if bad.any():
                row, col = (int(v) for v in np.argwhere(bad)[0])
                raise self.error(
                    key, f"value {block[row, col]!r} is NaN, infinite or beyond +-{limit:g}", row=start + row
                )
        return replaced

    def strings(self, key: str, why: str) -> list[str]:
        value = self.get(key, why)
        items = list(value.reshape(-1)) if isinstance(value, np.ndarray) else list(value)
        if len(items) != self.n:
            raise self.error(key, f"has {len(items)} rows but the split has {self.n} labels")
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in items]


def read_mmsa_pickle(
    path: Path, text_mode: str, label_mode: str, target_range: tuple[float, float]
) -> MmsaSplits:
    """Read an MMSA feature pickle (see the module doc for the layout) into :class:`MmsaSplits`.

    Raises:
        DataError: the file is not an MMSA pickle, a key is missing, a shape or row count is wrong,
            a value is NaN/infinite after MMSA's ``-inf`` -> 0 replacement in audio, a label is out
            of range, or the pickle would import code (refused by the restricted unpickler).
    """
    from mmbench.formats.safe_pickle import safe_load

    obj = safe_load(path)
    if not isinstance(obj, dict) or not all(k in obj for k in SPLIT_KEYS):
        got = f"a dict with keys {sorted(map(str, obj))}" if isinstance(obj, dict) else type(obj).__name__
        raise DataError(
            f"expected an MMSA feature pickle, a dict with keys train, valid, test; got {got}", path=path
        )
    parts = [
        _read_split(_Split(path, name, obj[name]), text_mode, label_mode, target_range) for name in SPLIT_KEYS
    ]
    del obj  # what was kept is in ``parts``; the rest of the file's arrays are freed
    out = _concatenate(parts, path)
    out.sizes = {SPLIT_KEYS[name]: len(p["labels"]) for name, p in zip(SPLIT_KEYS, parts, strict=True)}
    return out


def _read_split(s: _Split, text_mode: str, label_mode: str, target_range: tuple[float, float]) -> dict:
    label_key = "regression_labels" if label_mode == "regression" else "classification_labels"
    raw_labels = s.get(label_key, f"the labels of data.labels={label_mode}")
    try:
        s.n = len(raw_labels)
    except TypeError:  # a scalar, not one label per clip
        raise s.error(label_key, f"must be one value per clip, got {type(raw_labels).__name__}") from None
    if s.n == 0:
        raise s.error(label_key, "the split has no rows")
    labels = s.numeric(label_key, 1, "labels")
    s.finite(label_key, labels)
    if label_mode == "regression":
        lo, hi = target_range
        outside = np.flatnonzero((labels < lo - 1e-6) | (labels > hi + 1e-6))
        if len(outside):
            row = int(outside[0])
            raise s.error(label_key, f"sentiment {labels[row]:g} lies outside [{lo:g}, {hi:g}]", row=row)
        labels = labels.astype(np.float32)
    else:
        bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0) | (labels >= len(CLASS_NAMES)))
        if len(bad):
            row = int(bad[0])
            raise s.error(
                label_key, f"label {labels[row]:g} is not 0, 1 or 2 ({', '.join(CLASS_NAMES)})", row=row
            )
        labels = labels.astype(np.int64)
    out: dict[str, Any] = {
        "notes": [],
        "labels": labels,
        "sequences": {},
        "lengths": {},
        "tokens": {},
        "modality_labels": {},
    }
    out["ids"] = s.strings("id", "clip ids") if s.has("id") else [f"{s.split}_{i}" for i in range(s.n)]
    out["raw_text"] = s.strings("raw_text", "transcripts for data.text=raw") if text_mode == "raw" else []
    mask = _bert_tokens(s, out) if (s.has("text_bert") or text_mode == "bert_tokens") else None
    out["aligned"] = not any(s.has(k) for _, k in SEQUENCES.values())
    if text_mode == "features":
        text = s.numeric("text", 3, "text features for data.text=features")
        s.finite("text", text)
        out["sequences"]["text"] = text
        out["lengths"]["text"] = _mask_lengths(mask, text.shape[1], s.n)
    neg_inf = 0
    for modality, (key, length_key) in SEQUENCES.items():
        arr = s.numeric(key, 3, f"{modality} features")
        # MMSA's loader: audio[audio == -inf] = 0
        neg_inf += s.finite(key, arr, neg_inf_to_zero=key == "audio")
        out["sequences"][modality] = arr
        if s.has(length_key):
            out["lengths"][modality] = _lengths(s, length_key, arr.shape[1], mask, out["notes"])
        else:
            out["lengths"][modality] = _mask_lengths(mask, arr.shape[1], s.n)
    out["neg_inf"] = neg_inf
    for m in "TAV":
        key = f"regression_labels_{m}"
        if s.has(key):
            values = s.numeric(key, 1, "per-modality labels")
            s.finite(key, values)
            out["modality_labels"][m] = values.astype(np.float32)
    return out


def _bert_tokens(s: _Split, out: dict) -> np.ndarray:
    """``text_bert`` ``[N, 3, L]`` -> ids and mask (int64 ``[N, L]``); returns the mask."""
    arr = s.numeric("text_bert", 3, "BERT token ids for data.text=bert_tokens")
    if arr.shape[1] != 3:
        raise s.error("text_bert", f"must have shape [N, 3, L] (ids, mask, segments), got {arr.shape}")
    s.finite("text_bert", arr)
    if (arr != np.round(arr)).any() or arr.min() < 0 or arr.max() >= 2**31:
        row = int(np.argwhere((arr != np.round(arr)) | (arr < 0) | (arr >= 2**31))[0][0])
        raise s.error("text_bert", "token ids, mask and segment ids must be non-negative integers", row=row)
    ids, mask = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
    if not np.isin(mask, (0, 1)).all():
        row = int(np.argwhere(~np.isin(mask, (0, 1)))[0][0])
        raise s.error("text_bert", "the attention mask (second row) must hold only 0 and 1", row=row)
    out["tokens"] = {"input_ids": ids, "attention_mask": mask}
    return mask


def _mask_lengths(mask: np.ndarray | None, steps: int, n: int) -> np.ndarray:
    """Real steps of an aligned sequence: the text attention mask's count, or all ``steps``."""
    if mask is None or mask.shape[1] != steps:
        return np.full(n, steps, dtype=np.int64)
    return mask.sum(axis=1).astype(np.int64)


def _lengths(s: _Split, key: str, steps: int, mask: np.ndarray | None, notes: list[str]) -> np.ndarray:
    """A file's lengths of a sequence of ``steps`` steps. Lengths beyond the axis of a sequence
    aligned to the text (its steps = the ``text_bert`` mask's) count the unaligned frames: the text
    mask gives the real steps instead, as MMSA does for aligned data (noted)."""
    arr = s.numeric(key, 1, "sequence lengths")
    bad = np.flatnonzero((arr != np.round(arr)) | (arr < 0) | (arr > steps))
    beyond = len(bad) and (arr[bad] > steps).all() and (arr == np.round(arr)).all() and (arr >= 0).all()
    if beyond and mask is not None and mask.shape[1] == steps:
        notes.append(
            f"split {s.split!r}: {key} exceed the {steps} steps aligned to the text in {len(bad):,} rows "
            "(unaligned frame counts); the text_bert mask gives the real steps, as MMSA does for aligned data"
        )
        return mask.sum(axis=1).astype(np.int64)
    if len(bad):
        row = int(bad[0])
        raise s.error(key, f"length {arr[row]:g} is not an integer in [0, {steps}] (the time axis)", row=row)
    return arr.astype(np.int64)


def _concatenate(parts: list[dict], path: Path) -> MmsaSplits:
    """Rows of all splits in one array per field; time axes padded (with zeros) to the longest split."""
    n_rows = [len(p["labels"]) for p in parts]
    split_of_row = np.concatenate(
        [np.full(n, SPLIT_KEYS[k], dtype=object) for k, n in zip(SPLIT_KEYS, n_rows, strict=True)]
    )
    sequences, lengths, empty = {}, {}, {}
    for modality in parts[0]["sequences"]:
        arrays = [p["sequences"][modality] for p in parts]
        dims = {a.shape[2] for a in arrays}
        if len(dims) > 1:
            raise DataError(
                f"{modality} features have {sorted(dims)} values per step in different splits", path=path
            )
        steps = max(a.shape[1] for a in arrays)
        merged = np.zeros((sum(n_rows), steps, dims.pop()), dtype=np.float32)
        start = 0
        for part, a in zip(parts, arrays, strict=True):
            merged[start : start + len(a), : a.shape[1]] = a
            start += len(a)
            part["sequences"][modality] = None  # the loaded copy can go (peak: one modality twice)
        del arrays
        sequences[modality] = merged
        length = np.concatenate([p["lengths"][modality] for p in parts]).astype(np.int64)
        # A clip with no real step (MMSA's files hold some) would give an all-masked sequence;
        # it keeps one (zero) step so attention and pooling stay defined.
        empty[modality] = int((length == 0).sum())
        lengths[modality] = np.maximum(length, 1)
    tokens = {}
    if all(p["tokens"] for p in parts):
        for name in parts[0]["tokens"]:
            steps = max(p["tokens"][name].shape[1] for p in parts)
            tokens[name] = np.concatenate(
                [np.pad(p["tokens"][name], ((0, 0), (0, steps - p["tokens"][name].shape[1]))) for p in parts]
            )
    modality_labels = {}
    for m in "TAV":
        if all(m in p["modality_labels"] for p in parts):
            modality_labels[m] = np.concatenate([p["modality_labels"][m] for p in parts])
    return MmsaSplits(
        split_of_row=split_of_row,
        ids=[i for p in parts for i in p["ids"]],
        raw_text=[t for p in parts for t in p["raw_text"]] if all(p["raw_text"] for p in parts) else [],
        sequences=sequences,
        lengths=lengths,
        labels=np.concatenate([p["labels"] for p in parts]),
        tokens=tokens,
        modality_labels=modality_labels,
        aligned=all(p["aligned"] for p in parts),
        neg_inf_replaced=sum(p["neg_inf"] for p in parts),
        notes=[n for p in parts for n in p["notes"]],
        empty_sequences={m: c for m, c in empty.items() if c},
    )
