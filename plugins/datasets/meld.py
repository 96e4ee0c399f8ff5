"""``meld``: MELD (Multimodal EmotionLines Dataset) from the user's files; 7 emotion classes.

Formats (``--data FILE_OR_FOLDER``):

* **Official CSV folder**: ``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv``
  (columns ``Utterance``, ``Speaker``, ``Emotion``, ``Dialogue_ID``, ``Utterance_ID``, ...). The
  ``text`` modality is the raw ``Utterance`` (encoded by the protocol's text encoder); the split
  is the official one (train 9,989 / dev 1,109 / test 2,610 utterances).
* **Spreadsheet** (``.xlsx`` / ``.csv``) in the reference format: ``Utterance``, ``V1``, ``V3``,
  ``V4`` (audio), optional ``V2`` (audio) and ``A2`` (visual), ``Emotion``, and optionally
  ``Split`` (train/dev/test), ``Dialogue_ID``, ``Speaker``, ``File Name`` (``dia12_utt3``).
  Without a ``Split`` column: a grouped (by dialogue when known) stratified 70/10/20 fallback with
  a warning and its own ``split_scheme`` (so its own protocol fingerprint).
* **DialogueRNN pickle** ``MELD_features_raw.pkl``: ``videoIDs, videoSpeakers, videoLabels,
  videoText (600), videoAudio (300), videoSentence, trainVid, testVid, videoLabelsSentiment``
  (a 10-item variant also holds ``videoVisual`` after ``videoAudio``); labels are ints for
  ``neutral, surprise, fear, sadness, joy, disgust, anger``. ``trainVid`` holds train and dev:
  ids 1039..1152 are the official dev dialogues when all of them are there (the 1,152- and
  1,153-id layouts; MELD's train has no dialogue 60); otherwise dev is a hash-ranked 10% of the
  ``trainVid`` dialogues, with a warning saying why.
* **COSMIC pickles** ``meld.pkl`` (sentences) and ``meld_features_roberta.pkl``: their
  train/valid/test lists are used as given.

Class set: ``neutral, joy, surprise, anger, sadness, disgust, fear`` (or a list via ``classes``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.contracts import DatasetPlugin
from mmbench.data import MultimodalData
from mmbench.errors import DataError, UsageError
from mmbench.plugins.datasets.dialogue_pickle import (
    SPLIT_WORDS,
    dialogue_positions,
    fallback_split,
    finish,
    held_out_groups,
    locate,
    read_dialogue_pickle,
    split_array,
)
from mmbench.plugins.datasets.emotions import (
    ClassSet,
    encode_labels,
    resolve_class_set,
    warn,
)
from mmbench.plugins.datasets.iemocap import (
    OPTIONS,
    ROBERTA_FIELDS,
    SheetLayout,
    check_options,
    check_unique_ids,
    pickle_modalities,
    read_sheet,
    sheet_layout,
    sheet_modalities,
    standardized,
)

CSV_FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
KNOWN_FILES = (
    "MELD_features_raw.pkl",
    "MELD_features.pkl",
    "MELD.xlsx",
    "MELD.csv",
    "features.csv",
    "meld.pkl",
    "meld_features_roberta.pkl",
)
PICKLE_9 = (
    "videoIDs",
    "videoSpeakers",
    "videoLabels",
    "videoText",
    "videoAudio",
    "videoSentence",
    "trainVid",
    "testVid",
    "videoLabelsSentiment",
)
PICKLE_10 = (*PICKLE_9[:5], "videoVisual", *PICKLE_9[5:])
#: COSMIC's sentence pickle (``meld/meld.pkl``: speakers, emotion labels, sentiment labels,
#: sentences, trainIds, testIds, validIds) and RoBERTa feature pickle
#: (``meld_features_roberta.pkl``: speakers, emotion and sentiment labels, roberta1-4, sentences,
#: trainIds, testIds, validIds), as role names (``_``: read past).
COSMIC_SENTENCES = (
    "videoSpeakers",
    "videoLabels",
    "_sentiment",
    "videoSentence",
    "trainVid",
    "testVid",
    "validVid",
)
COSMIC_ROBERTA = (
    "videoSpeakers",
    "videoLabels",
    "_sentiment",
    "roberta1",
    "roberta2",
    "roberta3",
    "roberta4",
    "videoSentence",
    "trainVid",
    "testVid",
    "validVid",
)
PICKLE_LAYOUTS = {9: PICKLE_9, 10: PICKLE_10, 7: COSMIC_SENTENCES, 11: COSMIC_ROBERTA}
PICKLE_FORMATS = {
    9: "DialogueRNN pickle",
    10: "DialogueRNN pickle (with visual)",
    7: "COSMIC sentence pickle",
    11: "COSMIC RoBERTa pickle",
}
PICKLE_LABELS = ("neu", "sur", "fea", "sad", "hap", "dis", "ang")
OFFICIAL_TRAIN_DIALOGUES, OFFICIAL_DEV_DIALOGUES = 1039, 114
CSV_COLUMNS = ("Utterance", "Emotion", "Dialogue_ID", "Utterance_ID")
HELP = (
    "Expected: a folder with MELD's official CSVs (train_sent_emo.csv, dev_sent_emo.csv, "
    "test_sent_emo.csv), a spreadsheet (.xlsx or .csv; columns Utterance, V1, V3, V4, Emotion, "
    "optional V2, A2, Split, Dialogue_ID, Speaker, File Name), or the DialogueRNN feature pickle "
    "MELD_features_raw.pkl. MELD is available from https://affective-meld.github.io/ (the CSVs are "
    "in MELD.Raw.tar.gz). See docs/datasets.md."
)


class MeldDataset(DatasetPlugin):
    """MELD from the official CSVs, a reference-format spreadsheet or a DialogueRNN feature pickle."""

    needs_data: ClassVar[bool] = True
    id_pattern: ClassVar[str | None] = r"^((train|dev|test)_)?dia\d+_utt\d+$"
    #: Utterances of one dialogue share errors: the tie test resamples dialogues.
    cluster_unit: ClassVar[str | None] = "dialogue"
    data_help: ClassVar[str] = HELP

    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        return standardized(self._load(path, options), options)

    def _load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        check_options("meld", options, OPTIONS)
        class_set = resolve_class_set("meld", options.get("classes"))
        dup_mode = options.get("duplicate_ids", "error")
        if path is not None and path.is_dir():
            folder = next((f for f in (path, path / "meld", path / "MELD") if _has_csvs(f)), None)
            if folder is not None:
                strict = sheet_layout("meld", options).strict_encoding
                return self._from_csvs(folder, class_set, dup_mode, strict)
        file = locate(path, "meld", KNOWN_FILES, HELP)
        suffix = file.suffix.lower()
        if suffix in (".pkl", ".pickle"):
            return self._from_pickle(file, class_set, float(options.get("dev_fraction", 0.1)))
        if suffix in (".xlsx", ".csv"):
            return self._from_sheet(file, class_set, dup_mode, sheet_layout("meld", options))
        raise DataError(f"unsupported file type {suffix or '(none)'}; {HELP}", path=file)

    # ------------------------------------------------------------------------ official CSVs
    def _from_csvs(
        self, folder: Path, class_set: ClassSet, dup_mode: str, strict: bool = False
    ) -> MultimodalData:
        texts: list[str] = []
        labels_parts, dropped_all = [], {}
        split_of_row, ids, dialogues, speakers, positions = [], [], [], [], []
        for split, name in CSV_FILES.items():
            file = folder / name
            frame = _read_csv(file, strict)
            rows = np.arange(len(frame)) + 2  # the header is row 1
            labels, dropped = encode_labels(frame["Emotion"].tolist(), class_set, path=file, rows=rows)
            for k, v in dropped.items():
                dropped_all[k] = dropped_all.get(k, 0) + v
            labels_parts.append(labels)
            dia = [
                _int_cell(v, file, r, "Dialogue_ID") for v, r in zip(frame["Dialogue_ID"], rows, strict=True)
            ]
            utt = [
                _int_cell(v, file, r, "Utterance_ID")
                for v, r in zip(frame["Utterance_ID"], rows, strict=True)
            ]
            uids = [f"{split}_dia{d}_utt{u}" for d, u in zip(dia, utt, strict=True)]
            check_unique_ids(uids, rows, file, "Dialogue_ID/Utterance_ID", dup_mode)
            for i, text in enumerate(frame["Utterance"].tolist()):
                if not isinstance(text, str):
                    raise DataError(
                        "empty or non-text utterance", path=file, row=int(rows[i]), column="Utterance"
                    )
                texts.append(text)
            ids += uids
            dialogues += [f"{split}:{d}" for d in dia]
            positions += list(dialogue_positions([f"{split}:{d}" for d in dia], utt))
            spk = frame["Speaker"].tolist() if "Speaker" in frame.columns else [""] * len(frame)
            speakers += ["" if s is None or s != s else str(s) for s in spk]
            split_of_row += [split] * len(frame)
        labels = np.concatenate(labels_parts)
        meta = {
            "source": str(folder),
            "format": "official CSVs",
            "split_scheme": "meld official: train/dev/test CSVs",
        }
        return finish(
            "meld",
            folder,
            labels,
            class_set,
            dropped_all,
            np.array(split_of_row, dtype=object),
            {},
            {"text": texts},
            ids,
            {"dialogue": dialogues, "speaker": speakers},
            meta,
            positions,
        )

    # -------------------------------------------------------------------------- spreadsheet
    def _from_sheet(
        self, path: Path, class_set: ClassSet, dup_mode: str, layout: SheetLayout
    ) -> MultimodalData:
        table = read_sheet(path, layout, ("File Name", "Split", "Dialogue_ID", "Speaker"))
        n = len(table.rows)
        labels, dropped = encode_labels(table.texts["Emotion"], class_set, path=path, rows=table.rows)
        meta: dict[str, Any] = {"source": str(path), "format": "spreadsheet", "sha256": table.sha256}
        split_col = table.texts.get("Split")
        official = None
        if split_col is not None and any(str(s).strip() for s in split_col):
            official = []
            for value, row in zip(split_col, table.rows, strict=True):
                word = SPLIT_WORDS.get(str(value).strip().lower())
                if word is None:
                    raise DataError(
                        f"split {value!r} is not train, dev or test", path=path, row=int(row), column="Split"
                    )
                official.append(word)
        dialogue = _sheet_dialogues(table, official)
        positions = None if dialogue is None else dialogue_positions(dialogue, _sheet_turns(table))
        file_ids = table.texts.get("File Name")
        ids = [str(u).strip() for u in file_ids] if file_ids is not None else [f"row{r}" for r in table.rows]
        if file_ids is not None:
            scoped = [f"{s}:{u}" for s, u in zip(official or [""] * n, ids, strict=True)]
            meta["repeated_ids"] = check_unique_ids(scoped, table.rows, path, "File Name", dup_mode)
        if official is not None:
            split_of_row = np.array(official, dtype=object)
            meta["split_scheme"] = "meld official: Split column"
        else:
            how = "grouped by dialogue" if dialogue is not None else "rows independent (no dialogue ids)"
            warn(
                f"{path}: no Split column, so MELD's official split is unknown; using a stratified "
                f"70/10/20 fallback ({how}) whose results are not comparable with the official split "
                "(it gets its own protocol fingerprint)"
            )
            keep = labels >= 0
            groups = np.asarray(dialogue, dtype=object)[keep] if dialogue is not None else None
            split_of_row = np.full(n, "", dtype=object)
            split_of_row[np.flatnonzero(keep)] = split_array(
                int(keep.sum()), fallback_split(labels[keep], groups, path)
            )
            meta["split_scheme"] = f"meld fallback: stratified 70/10/20 (seed 0), {how}"
        groups_out: dict[str, list[str]] = {}
        if dialogue is not None:
            groups_out["dialogue"] = dialogue
        if "Speaker" in table.texts:
            groups_out["speaker"] = [str(s) for s in table.texts["Speaker"]]
        return finish(
            "meld",
            path,
            labels,
            class_set,
            dropped,
            split_of_row,
            sheet_modalities(table, layout),
            {"text": list(table.texts["Utterance"])},
            ids,
            groups_out,
            meta,
            positions,
        )

    # ------------------------------------------------------------------------------- pickle
    def _from_pickle(self, path: Path, class_set: ClassSet, dev_fraction: float) -> MultimodalData:
        missing = [c for c in class_set.concepts() if c not in PICKLE_LABELS]
        if missing:
            raise UsageError(f"{path}: the MELD pickle has no label(s) {', '.join(missing)}")
        features = ("videoText", "videoAudio", "videoVisual", *ROBERTA_FIELDS)
        rows = read_dialogue_pickle(path, PICKLE_LAYOUTS, features, 7)
        index = class_set.index()
        code_of = np.array(PICKLE_LABELS)[rows.label]
        labels = np.array([index.get(c, -1) for c in code_of], dtype=np.int64)
        dropped: dict[str, int] = {}
        for c in code_of[labels < 0]:
            dropped[str(c)] = dropped.get(str(c), 0) + 1
        fmt = PICKLE_FORMATS.get(len(rows.extra.get("layout", ())), "pickle")
        meta: dict[str, Any] = {"source": str(path), "format": fmt}
        if rows.valid_dialogues:
            dev = set(rows.valid_dialogues)
            meta["split_scheme"] = (
                f"meld file lists: train {len(rows.train_dialogues)} / valid {len(dev)} / test "
                f"{len(rows.test_dialogues)} dialogues as given in the pickle"
            )
        else:
            dev, why = official_dev(rows.train_dialogues)
            if dev is not None:
                meta["split_scheme"] = (
                    "meld official: pickle trainVid ids up to 1038 train, 1039-1152 dev; testVid test"
                )
            else:
                train_set = set(rows.train_dialogues)
                kept_train = [
                    d for d, k in zip(rows.dialogue, labels >= 0, strict=True) if k and d in train_set
                ]
                dev = held_out_groups(kept_train, dev_fraction)
                warn(
                    f"{path}: the official dev split cannot be recovered from trainVid ({why}); dev = "
                    f"{dev_fraction:g} of the trainVid dialogues (hash-ranked); results get their own "
                    "protocol fingerprint"
                )
                meta["split_scheme"] = (
                    f"meld pickle: testVid test; dev = {dev_fraction:g} of trainVid dialogues (hash-ranked)"
                )
        test = set(rows.test_dialogues)
        split_of_row = np.array(
            ["test" if d in test else ("dev" if d in dev else "train") for d in rows.dialogue], dtype=object
        )
        return finish(
            "meld",
            path,
            labels,
            class_set,
            dropped,
            split_of_row,
            pickle_modalities(rows),
            {"text": rows.sentences},
            [f"{d}_{u}" for d, u in zip(rows.dialogue, rows.utterance, strict=True)],
            {"dialogue": rows.dialogue, "speaker": rows.speaker},
            meta,
            rows.position,
        )


def official_dev(train_ids: list[str]) -> tuple[set[str] | None, str]:
    """MELD's official dev dialogues inside a merged train+dev id list, or None and why not.

    MELD numbers its train dialogues 0-1038 (1,038 of them: id 60 has no utterance in the official
    CSV) and its dev dialogues 1039-1152 (114), so a pickle that merged them (1,152 or 1,153 ids)
    still tells them apart by number: every id 1039-1152 present, no id above, and at least 1,038
    ids below 1039.
    """
    numbers = [int(d) for d in train_ids if d.isdigit()]
    if len(numbers) != len(train_ids):
        return None, "its ids are not MELD's dialogue numbers"
    dev_range = range(OFFICIAL_TRAIN_DIALOGUES, OFFICIAL_TRAIN_DIALOGUES + OFFICIAL_DEV_DIALOGUES)
    dev = [n for n in numbers if n in dev_range]
    above = [n for n in numbers if n >= dev_range.stop]
    below = [n for n in numbers if n < dev_range.start]
    if above:
        return None, f"it holds ids above 1152 (e.g. {above[0]}), which MELD's train and dev do not use"
    if len(dev) != OFFICIAL_DEV_DIALOGUES:
        return None, f"it holds {len(dev)} of the 114 official dev ids 1039-1152"
    if len(below) < OFFICIAL_TRAIN_DIALOGUES - 1:
        return None, f"it holds {len(below)} train ids below 1039, MELD has 1,038"
    return {str(n) for n in dev}, ""


def _has_csvs(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).is_file() for name in CSV_FILES.values())


def _read_csv(file: Path, strict_encoding: bool = False) -> Any:
    """One official CSV (decoded per line, :mod:`mmbench.formats.text_csv`); a missing file or
    column, an empty file or a repeated column name is a ``DataError``."""
    from mmbench.formats.text_csv import read_csv_frame

    if not file.is_file():
        raise DataError(f"missing; a MELD CSV folder needs {', '.join(CSV_FILES.values())}", path=file)
    frame = read_csv_frame(file, strict_encoding)
    for column in CSV_COLUMNS:
        if column not in frame.columns:
            raise DataError(
                f"missing column; the header has {', '.join(frame.columns)}", path=file, column=column
            )
    if frame.empty:
        raise DataError("the file has a header but no rows", path=file)
    return frame


def _int_cell(value: Any, file: Path, row: int, column: str) -> int:
    text = "" if value is None or value != value else str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit():
        raise DataError(f"{text!r} is not a non-negative integer id", path=file, row=int(row), column=column)
    return int(text)


def _sheet_dialogues(table: Any, official: list[str] | None) -> list[str] | None:
    """Dialogue ids from ``Dialogue_ID`` or ``File Name`` (``dia12_utt3``), scoped by split."""
    n = len(table.rows)
    prefix = official or [""] * n
    if "Dialogue_ID" in table.texts:
        out = []
        for value, row, split in zip(table.texts["Dialogue_ID"], table.rows, prefix, strict=True):
            out.append(f"{split}:{_int_cell(value, table.path, int(row), 'Dialogue_ID')}")
        return out
    names = table.texts.get("File Name")
    if names is None:
        return None
    out = []
    for value, split in zip(names, prefix, strict=True):
        m = re.match(r"^dia(\d+)_utt\d+", str(value).strip())
        if not m:
            return None
        out.append(f"{split}:{m.group(1)}")
    return out


def _sheet_turns(table: Any) -> list[int] | None:
    """Utterance numbers from ``File Name`` (``dia12_utt3`` -> 3), or None when any is missing."""
    names = table.texts.get("File Name")
    if names is None:
        return None
    out = []
    for value in names:
        m = re.match(r"^dia\d+_utt(\d+)", str(value).strip())
        if not m:
            return None
        out.append(int(m.group(1)))
    return out
