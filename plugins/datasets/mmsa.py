"""``mosi``, ``mosei``, ``sims``: sentiment regression on CMU-MOSI, CMU-MOSEI and CH-SIMS.

All three read the MMSA feature-pickle layout (:mod:`mmbench.plugins.datasets.mmsa_pickle`:
``aligned_50.pkl`` / ``unaligned_50.pkl`` for MOSI and MOSEI, ``unaligned_39.pkl`` for SIMS; pass
the file, or a folder holding exactly one of them, with ``--data``). They differ in their own data:
the label range (``target_range``), the split sizes the published files have (checked with a
warning when they differ) and the protocol file (``configs/protocols/<name>.yaml``).

Modalities: ``text``, ``audio``, ``visual``, each a sequence ``[N, T, D]`` with its real lengths
(``MultimodalData.lengths``, so fusions get a ``mask:<modality>``). The split is the file's own
(``train``, ``valid`` -> ``dev``, ``test``). Group ``video`` (the part of each ``id`` before
``$_$``) is the unit the leaderboard's tie test resamples: clips of one video share a speaker.

Options (``--set data.<key>=<value>``):

* ``text``: ``features`` (default; the file's ``text`` sequences, what MMSA's published numbers
  use), ``raw`` (``raw_text`` becomes the text modality, encoded by the protocol's text encoder,
  e.g. ``--encoder text=hf-text``) or ``bert_tokens`` (``text_bert``'s token ids and attention mask
  feed an encoder trained inside the model, e.g. ``--encoder text=hf-text-finetune``; MMSA's ids
  are ``bert-base-uncased`` WordPiece ids for MOSI/MOSEI, the vocabulary all-MiniLM-L6-v2 shares;
  SIMS uses ``bert-base-chinese`` ids, which need a Chinese model).
* ``labels``: ``regression`` (default; task ``regression`` on ``regression_labels``) or
  ``classification`` (``classification_labels``: ``negative``, ``neutral``, ``positive``).
* ``standardize``: z-score every feature with the train split's statistics (default false, as MMSA).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.contracts import DatasetPlugin
from mmbench.data import MultimodalData
from mmbench.errors import UsageError
from mmbench.plugins.datasets.dialogue_pickle import locate
from mmbench.plugins.datasets.emotions import warn
from mmbench.plugins.datasets.iemocap import standardized
from mmbench.plugins.datasets.mmsa_pickle import (
    CLASS_NAMES,
    LABEL_MODES,
    TEXT_MODES,
    MmsaSplits,
    read_mmsa_pickle,
)

OPTIONS = ("text", "labels", "standardize")
#: Separator of video id and clip id in MMSA's ``id`` (``03bSnISJMiM$_$1``).
ID_SEPARATOR = "$_$"


class MmsaDataset(DatasetPlugin):
    """A sentiment dataset in the MMSA feature-pickle layout (subclasses set the class attributes)."""

    needs_data: ClassVar[bool] = True
    cluster_unit: ClassVar[str | None] = "video"
    #: Registry name, and the folder name ``locate`` looks for.
    dataset: ClassVar[str] = "mmsa"
    #: Bounds of ``regression_labels``.
    target_range: ClassVar[tuple[float, float]] = (-3.0, 3.0)
    #: Rows per split of the published files (train/dev/test), or None when unknown.
    expected_sizes: ClassVar[dict[str, int] | None] = None
    known_files: ClassVar[tuple[str, ...]] = ("unaligned_50.pkl", "aligned_50.pkl")

    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        text_mode, label_mode = self._options(options)
        file = locate(path, self.dataset, self.known_files, self.data_help)
        rows = read_mmsa_pickle(file, text_mode, label_mode, self.target_range)
        notes = self._notes(file, rows)
        for note in notes:
            warn(note)
        return standardized(self._assemble(file, rows, text_mode, label_mode), options)

    def _options(self, options: dict[str, Any]) -> tuple[str, str]:
        unknown = sorted(set(options) - set(OPTIONS) - {"classes"})
        if unknown:
            raise UsageError(
                f"unknown option(s) data.{', data.'.join(unknown)} for dataset {self.dataset}; "
                f"known: {', '.join(OPTIONS)}"
            )
        if options.get("classes") is not None:
            raise UsageError(
                f"{self.dataset} has no class sets; use data.labels=classification for "
                f"{', '.join(CLASS_NAMES)}"
            )
        text_mode = str(options.get("text", "features"))
        label_mode = str(options.get("labels", "regression"))
        if text_mode not in TEXT_MODES:
            raise UsageError(f"data.text must be one of {', '.join(TEXT_MODES)}, got {text_mode!r}")
        if label_mode not in LABEL_MODES:
            raise UsageError(f"data.labels must be one of {', '.join(LABEL_MODES)}, got {label_mode!r}")
        return text_mode, label_mode

    def _notes(self, file: Path, rows: MmsaSplits) -> list[str]:
        """What the user must know about the file: replaced values, empty clips, unusual sizes."""
        notes = [f"{file}: {note}" for note in rows.notes]
        if rows.neg_inf_replaced:
            notes.append(
                f"{file}: {rows.neg_inf_replaced:,} audio values were -inf and were set to 0 "
                "(as MMSA's loader does)"
            )
        for modality, count in rows.empty_sequences.items():
            notes.append(f"{file}: {count:,} clips have no real {modality} step; each keeps one zero step")
        expected = self.expected_sizes
        if expected is not None and rows.sizes != expected:
            got = " / ".join(f"{rows.sizes[s]:,}" for s in ("train", "dev", "test"))
            want = " / ".join(f"{expected[s]:,}" for s in ("train", "dev", "test"))
            notes.append(
                f"{file}: split sizes train/valid/test are {got}, but the published {self.dataset} "
                f"files have {want}; results are not comparable with published numbers"
            )
        return notes

    def _assemble(self, file: Path, rows: MmsaSplits, text_mode: str, label_mode: str) -> MultimodalData:
        modalities = {m: {_STREAMS[m]: a} for m, a in rows.sequences.items()}
        lengths = dict(rows.lengths)
        raw: dict[str, list[str]] = {}
        in_model: dict[str, dict[str, Any]] = {}
        if text_mode == "raw":
            raw["text"] = rows.raw_text
        elif text_mode == "bert_tokens":
            in_model["text"] = {"tokens": rows.tokens, "source": f"{file}: text_bert"}
        modalities = {m: modalities[m] for m in ("text", "audio", "visual") if m in modalities}
        meta: dict[str, Any] = {
            "source": str(file),
            "format": f"MMSA {'aligned' if rows.aligned else 'unaligned'} feature pickle",
            "split_scheme": f"{self.dataset} official (MMSA train/valid/test)",
            "text": text_mode,
            "labels": label_mode,
            "audio_neg_inf_replaced": rows.neg_inf_replaced,
            "split_sizes": rows.sizes,
        }
        if rows.empty_sequences:
            meta["empty_sequences"] = rows.empty_sequences
        if rows.modality_labels:
            meta["modality_labels"] = rows.modality_labels
        task: dict[str, Any] = (
            {"task": "regression", "target_range": self.target_range, "class_names": []}
            if label_mode == "regression"
            else {"class_names": list(CLASS_NAMES)}
        )
        split_of_row = rows.split_of_row
        return MultimodalData(
            name=self.dataset,
            modalities=modalities,
            labels=rows.labels,
            splits={s: np.flatnonzero(split_of_row == s).astype(np.int64) for s in ("train", "dev", "test")},
            groups={"video": np.array([i.split(ID_SEPARATOR)[0] for i in rows.ids])},
            raw=raw,
            lengths={m: v for m, v in lengths.items() if m in modalities},
            ids=rows.ids,
            meta=meta,
            in_model=in_model,
            **task,
        )


#: Stream name of each modality: the file's key.
_STREAMS = {"text": "text", "audio": "audio", "visual": "vision"}

_HELP = (
    "Expected: an MMSA feature pickle ({files}), a dict with train/valid/test splits holding id, "
    "raw_text, text, text_bert, audio, vision, audio_lengths, vision_lengths, regression_labels. "
    "MMSA publishes these files (github.com/thuiar/MMSA, section '2. Datasets'); see "
    "docs/datasets.md, 'CMU-MOSI, CMU-MOSEI, CH-SIMS'."
)


class MosiDataset(MmsaDataset):
    """CMU-MOSI (Zadeh et al., 2016): 2,199 opinion clips of 93 YouTube videos, sentiment in [-3, 3]."""

    dataset: ClassVar[str] = "mosi"
    expected_sizes: ClassVar[dict[str, int] | None] = {"train": 1284, "dev": 229, "test": 686}
    data_help: ClassVar[str] = _HELP.format(files="MOSI/Processed/aligned_50.pkl or unaligned_50.pkl")


class MoseiDataset(MmsaDataset):
    """CMU-MOSEI (Zadeh et al., 2018): 22,856 clips, sentiment in [-3, 3]."""

    dataset: ClassVar[str] = "mosei"
    expected_sizes: ClassVar[dict[str, int] | None] = {"train": 16326, "dev": 1871, "test": 4659}
    data_help: ClassVar[str] = _HELP.format(files="MOSEI/Processed/aligned_50.pkl or unaligned_50.pkl")


class SimsDataset(MmsaDataset):
    """CH-SIMS (Yu et al., 2020): Mandarin clips, sentiment in [-1, 1] plus per-modality labels."""

    dataset: ClassVar[str] = "sims"
    target_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    #: Not checked: MMSA's config states only the train size (1,368 clips).
    expected_sizes: ClassVar[dict[str, int] | None] = None
    known_files: ClassVar[tuple[str, ...]] = ("unaligned_39.pkl",)
    data_help: ClassVar[str] = _HELP.format(files="SIMS/Processed/unaligned_39.pkl")
