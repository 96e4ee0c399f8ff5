"""The data model every dataset plugin produces and every fusion consumes.

``MultimodalData`` holds named modalities, each made of one or more feature streams (for example
``audio`` = ``V1`` 512 + ``V3`` 25 + ``V4`` 25), optional raw text still to be encoded, integer
labels with class names (or a real-valued regression target), the dataset's own train/dev/test
split, group ids (speaker, dialogue, session) and a content fingerprint. It is numpy-only so that
loading and inspecting data never needs torch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmbench.errors import DataError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class StreamSpec:
    """One feature stream of a modality: its name and feature width."""

    name: str
    dim: int


@dataclass(frozen=True)
class ModalitySpec:
    """Shape of one modality as a fusion sees it: its streams, concatenated in order."""

    name: str
    streams: tuple[StreamSpec, ...]
    sequence: bool = False
    max_len: int = 1

    @property
    def dim(self) -> int:
        """Width of the modality tensor (all streams concatenated along the last axis)."""
        return sum(s.dim for s in self.streams)

    def stream_slices(self) -> dict[str, slice]:
        """Column slice of each stream inside the concatenated modality tensor."""
        out, start = {}, 0
        for s in self.streams:
            out[s.name] = slice(start, start + s.dim)
            start += s.dim
        return out


@dataclass(frozen=True)
class InputSpec:
    """Everything a fusion needs to build itself: modality shapes and the output width.

    ``num_outputs`` is the number of classes of a classification task, or 1 for a regression task
    (``mmbench.tasks``): a fusion maps a batch to ``[B, num_outputs]``. ``num_classes`` is the same
    number under its older name.

    A batch handed to the model is ``dict[str, Tensor]`` keyed by modality name: ``[B, D]`` for
    utterance-level modalities, ``[B, T, D]`` for sequences, the latter with a boolean
    ``mask:<modality>`` entry of shape ``[B, T]`` (True where a time step is real).
    """

    modalities: tuple[ModalitySpec, ...]
    num_outputs: int

    @property
    def num_classes(self) -> int:
        """The output width (``num_outputs``), by the name fusions written for classification use."""
        return self.num_outputs

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.modalities]

    def __getitem__(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(m.name == name for m in self.modalities)


def mask_key(modality: str) -> str:
    """Batch key of the time-step mask of a sequence modality."""
    return f"mask:{modality}"


@dataclass
class MultimodalData:
    """A labelled multimodal dataset with its own split.

    Construct it with the five required fields; everything else is optional (``None`` or left out
    means empty)::

        MultimodalData(
            name="my-data",
            modalities={"audio": {"mfcc": np.zeros((6, 40), np.float32)},      # [N, D] per stream
                        "visual": {"faces": np.zeros((6, 10, 512), np.float32)}},  # or [N, T, D]
            labels=np.array([0, 1, 2, 0, 1, 2]),                                # int64 [N]
            class_names=["neg", "neu", "pos"],
            splits={"train": np.arange(4), "dev": np.array([4]), "test": np.array([5])},
            raw={"text": ["so good", "fine", "awful", "ok", "meh", "great"]},   # encoded by the protocol
            groups={"speaker": np.array(["a", "b", "a", "b", "a", "b"])},       # optional
            lengths={"visual": np.array([10, 7, 10, 3, 10, 10])},               # optional, sequences
        ).validate()

    ``validate()`` raises ``DataError`` naming the field that breaks a rule below.

    Attributes:
        name: dataset name (the plugin's registry name).
        modalities: modality -> stream name -> float32 array ``[N, D]`` or ``[N, T, D]``.
        labels: int64 array ``[N]`` of class indices into ``class_names``; for a regression task
            a float array ``[N]`` of targets (float32 when validated).
        class_names: the class set, in label order (empty for a regression task).
        splits: ``train``/``dev``/``test`` -> int64 sample indices; disjoint.
        groups: group kind (``speaker``, ``dialogue``, ``session``) -> array ``[N]`` of group ids.
        raw: modality -> list of raw strings still to be encoded (e.g. utterance text).
        lengths: sequence modality -> int64 array ``[N]`` of real time steps.
        ids: optional per-sample identifiers (utterance ids).
        positions: optional int64 array ``[N]``: each utterance's 0-based position in its dialogue
            (``groups["dialogue"]``), for conversation context. Needs the dialogue groups; positions
            are unique within a dialogue (gaps allowed, e.g. after a dropped utterance).
        meta: free-form provenance (source file, split scheme, notes).
        in_model: modality -> ``{"encoder", "options", "dim", "sequence", "lr", "tokens"}`` for
            modalities whose encoder is trained inside the fusion model; ``tokens`` maps a name
            to an int64 array ``[N, T]`` (see ``EncoderPlugin.in_model``). A dataset may give a
            modality as ready token ids (``{"tokens": {...}, "source": ...}``, e.g. a file's BERT
            ids): the protocol's encoder for it must then be trained inside the model, and it
            receives these tokens instead of tokenising raw text.
        task: ``"classification"`` (default) or ``"regression"`` (``mmbench.tasks``).
        target_range: a regression target's bounds ``(low, high)``, e.g. ``(-3.0, 3.0)`` for
            CMU-MOSI/MOSEI sentiment, ``(-1.0, 1.0)`` for CH-SIMS; chooses the accuracies reported
            beside MAE and correlation. ``None``: unbounded (MAE and correlation only).
    """

    name: str
    modalities: dict[str, dict[str, np.ndarray]]
    labels: np.ndarray
    class_names: list[str]
    splits: dict[str, np.ndarray]
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    raw: dict[str, list[str]] = field(default_factory=dict)
    lengths: dict[str, np.ndarray] = field(default_factory=dict)
    ids: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    in_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: np.ndarray | None = None
    task: str = "classification"
    target_range: tuple[float, float] | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # The optional mappings may be given as None (documented as optional): the same as empty.
        for name in ("groups", "raw", "lengths", "meta", "in_model"):
            if getattr(self, name) is None:
                setattr(self, name, {})

    # ------------------------------------------------------------------ shape
    @property
    def n(self) -> int:
        return int(len(self.labels))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_outputs(self) -> int:
        """The width of a fusion's output: the number of classes, or 1 for a regression target."""
        return 1 if self.task == "regression" else self.num_classes

    @property
    def modality_names(self) -> list[str]:
        """All modalities: numeric ones in order, then raw-only ones."""
        names = list(self.modalities)
        names += [m for m in self.raw if m not in self.modalities]
        names += [m for m in self.in_model if m not in names]
        return names

    def input_spec(self) -> InputSpec:
        """Shapes of the numeric modalities, for building a fusion model."""
        mods = []
        for name, streams in self.modalities.items():
            first = next(iter(streams.values()))
            seq = first.ndim == 3
            mods.append(
                ModalitySpec(
                    name=name,
                    streams=tuple(StreamSpec(s, int(a.shape[-1])) for s, a in streams.items()),
                    sequence=seq,
                    max_len=int(first.shape[1]) if seq else 1,
                )
            )
        for name, info in self.in_model.items():
            if "dim" not in info:  # a dataset's token ids, not yet bound to an encoder
                continue
            steps = next(iter(info["tokens"].values())).shape[1]
            stream = (StreamSpec(str(info["encoder"]), int(info["dim"])),)
            seq = bool(info["sequence"])
            mods.append(ModalitySpec(name=name, streams=stream, sequence=seq, max_len=steps if seq else 1))
        return InputSpec(modalities=tuple(mods), num_outputs=self.num_outputs)

    def concatenated(self, modality: str) -> np.ndarray:
        """The modality's streams concatenated along the feature axis (float32)."""
        arrays = list(self.modalities[modality].values())
        if len(arrays) == 1:
            return np.ascontiguousarray(arrays[0], dtype=np.float32)
        return np.concatenate(arrays, axis=-1).astype(np.float32, copy=False)

    def split_counts(self) -> dict[str, int]:
        return {s: int(len(self.splits.get(s, ()))) for s in SPLITS}

    # ------------------------------------------------------------ fingerprint
    @property
    def fingerprint(self) -> str:
        """Content hash of features, labels, class names and split (first 16 hex digits)."""
        if self._fingerprint is None:
            self._fingerprint = self.compute_fingerprint()
        return self._fingerprint

    def compute_fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(repr(self.class_names).encode())
        if self.task == "regression":  # only then, so classification fingerprints stay unchanged
            h.update(f"regression{self.target_range}".encode())
            h.update(np.ascontiguousarray(self.labels, dtype=np.float32).tobytes())
        else:
            h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        for split in SPLITS:
            h.update(split.encode())
            h.update(np.ascontiguousarray(self.splits.get(split, []), dtype=np.int64).tobytes())
        for mod in sorted(self.modalities):
            for stream in self.modalities[mod]:
                arr = np.ascontiguousarray(self.modalities[mod][stream], dtype=np.float32)
                h.update(f"{mod}/{stream}{arr.shape}".encode())
                h.update(arr.tobytes())
        for mod in sorted(self.raw):
            h.update(mod.encode())
            h.update("\x1f".join(self.raw[mod]).encode())
        for mod in sorted(self.in_model):  # only when present, so older fingerprints stay unchanged
            for name, tokens in sorted(self.in_model[mod]["tokens"].items()):
                arr = np.ascontiguousarray(tokens, dtype=np.int64)
                h.update(f"tokens/{mod}/{name}{arr.shape}".encode())
                h.update(arr.tobytes())
        if self.positions is not None:  # only when present, so older fingerprints stay unchanged
            h.update(b"positions")
            h.update(np.ascontiguousarray(self.positions, dtype=np.int64).tobytes())
            h.update("\x1f".join(map(str, self.groups["dialogue"])).encode())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------- validation
    def validate(self) -> MultimodalData:
        """Check internal consistency; raise ``DataError`` naming what is wrong."""
        src = self.meta.get("source", self.name)
        n = self.n
        if n == 0:
            raise DataError("the dataset has no samples", path=src)
        labels = self._validate_labels(src)
        if not self.modalities and not self.raw:
            raise DataError("the dataset has no modalities", path=src)
        for mod, streams in self.modalities.items():
            if not streams:
                raise DataError(f"modality {mod!r} has no feature streams", path=src)
            arrays = list(streams.values())
            if len({a.ndim for a in arrays}) > 1 or any(a.ndim not in (2, 3) for a in arrays):
                raise DataError(
                    f"streams of modality {mod!r} must all be 2-D [N, D] or all 3-D [N, T, D]",
                    path=src,
                )
            if arrays[0].ndim == 3 and len({a.shape[1] for a in arrays}) > 1:
                raise DataError(f"streams of modality {mod!r} disagree on their time axis", path=src)
            for stream, arr in streams.items():
                if arr.shape[0] != n:
                    raise DataError(
                        f"stream {mod}/{stream} has {arr.shape[0]} rows but there are {n} labels",
                        path=src,
                    )
                if not np.isfinite(arr).all():
                    bad = int(np.argwhere(~np.isfinite(arr.reshape(n, -1)))[0][0])
                    raise DataError(f"stream {mod}/{stream} holds NaN or inf values", path=src, row=bad)
        for mod, info in self.in_model.items():
            for name, tokens in info.get("tokens", {}).items():
                if np.ndim(tokens) != 2 or len(tokens) != n:
                    raise DataError(f"token ids {mod}/{name} must be an array [N={n}, T]", path=src)
        for mod, texts in self.raw.items():
            if len(texts) != n:
                raise DataError(f"raw modality {mod!r} has {len(texts)} rows, expected {n}", path=src)
        seen = np.zeros(n, dtype=bool)
        for split in SPLITS:
            idx = np.asarray(self.splits.get(split, []), dtype=np.int64)
            if len(idx) == 0:
                raise DataError(f"the {split} split has no rows", path=src)
            if idx.min() < 0 or idx.max() >= n:
                raise DataError(f"the {split} split indexes rows outside the dataset", path=src)
            if seen[idx].any() or len(np.unique(idx)) != len(idx):
                raise DataError(f"the {split} split overlaps another split", path=src)
            seen[idx] = True
            self.splits[split] = idx
        train_classes = set(np.unique(labels[self.splits["train"]]).tolist())
        for split in ("dev", "test") if self.task == "classification" else ():
            missing = sorted(set(np.unique(labels[self.splits[split]]).tolist()) - train_classes)
            if missing:
                names = [self.class_names[i] for i in missing]
                raise DataError(f"class(es) {names} occur in the {split} split but never in train", path=src)
        for kind, g in self.groups.items():
            if len(g) != n:
                raise DataError(f"group ids {kind!r} have {len(g)} rows, expected {n}", path=src)
        if self.positions is not None:
            self._validate_positions(src)
        return self

    def _validate_labels(self, src: str) -> np.ndarray:
        """Class indices into ``class_names``, or finite float targets inside ``target_range``."""
        labels = np.asarray(self.labels)
        if self.task not in ("classification", "regression"):
            raise DataError(f"task must be 'classification' or 'regression', got {self.task!r}", path=src)
        if self.task == "regression":
            if labels.ndim != 1 or not (
                np.issubdtype(labels.dtype, np.floating) or np.issubdtype(labels.dtype, np.integer)
            ):
                raise DataError("regression targets must be a 1-D array of numbers", path=src)
            labels = labels.astype(np.float32)
            if not np.isfinite(labels).all():
                raise DataError(
                    "a regression target is NaN or inf", path=src, row=int(np.argmin(np.isfinite(labels)))
                )
            if self.target_range is not None:
                low, high = (float(v) for v in self.target_range)
                if not low < high:
                    raise DataError(
                        f"target_range must be (low, high) with low < high, got {self.target_range}", path=src
                    )
                outside = (labels < low) | (labels > high)
                if outside.any():
                    row = int(np.argmax(outside))
                    raise DataError(
                        f"regression target {labels[row]:g} lies outside target_range [{low:g}, {high:g}]",
                        path=src,
                        row=row,
                    )
                self.target_range = (low, high)
            self.labels = labels
            return labels
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError("labels must be a 1-D integer array", path=src)
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise DataError(
                f"labels must lie in [0, {self.num_classes}) for classes {self.class_names}",
                path=src,
            )
        return labels

    def _validate_positions(self, src: str) -> None:
        """Positions need dialogue ids; each (dialogue, position) pair names one utterance."""
        n = self.n
        if "dialogue" not in self.groups:
            raise DataError(
                "positions in a dialogue were given without dialogue ids (groups['dialogue'])", path=src
            )
        pos = np.asarray(self.positions)
        if pos.shape != (n,) or not np.issubdtype(pos.dtype, np.integer):
            raise DataError(f"positions must be an integer array of {n} rows", path=src)
        if n and pos.min() < 0:
            raise DataError("positions in a dialogue must be non-negative", path=src, row=int(np.argmin(pos)))
        seen: dict[tuple[str, int], int] = {}
        for row, (dialogue, p) in enumerate(zip(self.groups["dialogue"], pos.tolist(), strict=False)):
            key = (str(dialogue), int(p))
            if key in seen:
                raise DataError(
                    f"dialogue {dialogue!r} has two utterances at position {p} (rows {seen[key]} and {row})",
                    path=src,
                    row=row,
                )
            seen[key] = row
        self.positions = pos.astype(np.int64, copy=False)
