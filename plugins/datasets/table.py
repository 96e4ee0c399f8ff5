"""``table``: any table of utterances (or samples), labels and features, configured by options only.

``--data`` is either a **folder with one file per split** (a file whose name contains ``train``,
one with ``dev``/``val``/``valid``/``validation``, one with ``test``; e.g. EmoryNLP's
``emorynlp_train_final.csv``, ``emorynlp_dev_final.csv``, ``emorynlp_test_final.csv``) or **one
file with a split column** (``data.split_column``, default ``split``; values train, dev/val/valid/
validation, test). Files: ``.csv``, ``.tsv``, ``.txt`` (tab- or comma-separated), ``.xlsx``,
``.parquet`` (needs pyarrow). CSVs are decoded per line (:mod:`mmbench.formats.text_csv`).

Options (``--set data.<name>=...``; all enter the protocol fingerprint):

* ``label_column`` (required): the class of each row.
* ``labels``: the class set, in label order (e.g. ``[Joyful, Peaceful, Powerful, Scared, Mad,
  Sad, Neutral]``); a row with another label is an error naming file, row and column. Without
  it, the classes are the train split's labels, sorted; a dev/test label unseen in train is an
  error.
* ``text_columns``: raw text column(s), the ``text`` modality (joined with a space), encoded by
  the protocol's text encoder.
* ``feature_columns``: a list of columns (one ``features`` modality) or modality -> columns
  (``{audio: [a1, a2], visual: [v]}``). A column holds plain numbers or list literals
  (``[0.1, 0.2]``); each column is one stream.
* ``dialogue_columns`` (a column or a list joined with ``_``, e.g. ``[Season, Episode,
  Scene_ID]``), ``speaker_column``, ``position_column`` (order inside the dialogue, e.g.
  ``Utterance_ID``), ``id_column``, ``group_columns`` (more group kinds, name -> column).
* ``encoding``: ``auto`` (default) or ``strict`` (refuse CSV lines that are not UTF-8).
* ``standardize``: ``true`` z-scores every feature with the train split's mean and std.

Values: every feature must be finite and within +-1e15 (larger values overflow the float32
statistics of normalisation layers); otherwise a ``DataError`` names the file, row and column.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.contracts import DatasetPlugin
from mmbench.data import SPLITS, MultimodalData
from mmbench.errors import DataError, UsageError
from mmbench.formats.values import VALUE_LIMIT, standardize_train_only
from mmbench.plugins.datasets.dialogue_pickle import SPLIT_WORDS

OPTIONS = {
    "label_column",
    "labels",
    "text_columns",
    "feature_columns",
    "dialogue_columns",
    "speaker_column",
    "position_column",
    "id_column",
    "group_columns",
    "split_column",
    "encoding",
    "standardize",
    "allow_duplicates",
}
SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".parquet")
HELP = (
    "Expected: a folder with one file per split (names containing train, dev/val/valid, test) or one "
    "file with a split column; .csv, .tsv, .xlsx or .parquet; options data.label_column (required), "
    "data.text_columns, data.feature_columns, data.labels, data.dialogue_columns, data.speaker_column "
    "(see docs/datasets.md)."
)


class TableDataset(DatasetPlugin):
    """A generic table: label, text and feature columns named by options."""

    needs_data: ClassVar[bool] = True
    data_help: ClassVar[str] = HELP

    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        opts = _check_options(options)
        if path is None:
            raise UsageError(f"dataset table needs --data FILE_OR_FOLDER. {HELP}")
        frames = _read_split_files(path, opts) if path.is_dir() else _read_one_file(path, opts)
        return _assemble(path, frames, opts)


def _as_list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
        raise UsageError(f"data.{key} must be a column name or a list of column names, got {value!r}")
    return [str(v).strip() for v in value]


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise UsageError(
            f"unknown option(s) data.{', data.'.join(unknown)} for dataset table; known: "
            f"{', '.join(sorted(OPTIONS - {'allow_duplicates'}))}"
        )
    label = options.get("label_column")
    if not isinstance(label, str) or not label.strip():
        raise UsageError("dataset table needs data.label_column (the column holding each row's class)")
    features = options.get("feature_columns")
    if isinstance(features, dict):
        feature_map = {str(m): _as_list(c, f"feature_columns.{m}") for m, c in features.items()}
    else:
        cols = _as_list(features, "feature_columns")
        feature_map = {"features": cols} if cols else {}
    text = _as_list(options.get("text_columns"), "text_columns")
    if not text and not any(feature_map.values()):
        raise UsageError("dataset table needs data.text_columns or data.feature_columns (or both)")
    labels = options.get("labels")
    if labels is not None:
        labels = _as_list(labels, "labels")
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise UsageError(f"data.labels must list at least two distinct labels, got {labels!r}")
    encoding = options.get("encoding", "auto")
    if encoding not in ("auto", "strict"):
        raise UsageError(f"data.encoding must be auto or strict, got {encoding!r}")
    groups = options.get("group_columns") or {}
    if not isinstance(groups, dict):
        raise UsageError(f"data.group_columns must map a group kind to a column, got {groups!r}")
    return {
        "label": label.strip(),
        "labels": labels,
        "text": text,
        "features": feature_map,
        "dialogue": _as_list(options.get("dialogue_columns"), "dialogue_columns"),
        "speaker": options.get("speaker_column"),
        "position": options.get("position_column"),
        "id": options.get("id_column"),
        "groups": {str(k): str(v) for k, v in groups.items()},
        "split": options.get("split_column", "split"),
        "strict": encoding == "strict",
        "standardize": bool(options.get("standardize", False)),
    }


# ----------------------------------------------------------------------------------------- files
def _read_frame(path: Path, strict: bool) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"unsupported file type {suffix or '(none)'}; {HELP}", path=path)
    if suffix in (".csv", ".tsv", ".txt"):
        from mmbench.formats.text_csv import read_csv_frame

        return read_csv_frame(path, strict, sep="\t" if suffix == ".tsv" else None)
    from mmbench.formats.text_csv import check_unique_columns

    if suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except ImportError:
            raise UsageError("reading .parquet needs pyarrow: pip install pyarrow") from None
    else:
        try:
            import openpyxl

            sheet = openpyxl.load_workbook(path, read_only=True, data_only=True).worksheets[0]
            header = [str(c) if c is not None else "" for c in next(sheet.iter_rows(values_only=True))]
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is a data error
            raise DataError(f"not a readable .xlsx workbook ({type(exc).__name__})", path=path) from None
        check_unique_columns(header, path)
        frame = pd.read_excel(path, dtype=object)
    check_unique_columns([str(c) for c in frame.columns], path)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.astype(object).where(frame.notna(), None)


def _read_split_files(folder: Path, opts: dict[str, Any]) -> list[tuple[str, Path, Any]]:
    found: dict[str, list[Path]] = {s: [] for s in SPLITS}
    for file in sorted(folder.iterdir()):
        if not file.is_file() or file.suffix.lower() not in SUFFIXES:
            continue
        words = set(re.split(r"[^a-z]+", file.stem.lower()))
        hits = {SPLIT_WORDS[w] for w in words if w in SPLIT_WORDS}
        if len(hits) == 1:
            found[hits.pop()].append(file)
    for split, files in found.items():
        if len(files) > 1:
            raise UsageError(f"{folder} holds several {split} files ({', '.join(f.name for f in files)})")
    missing = [s for s, files in found.items() if not files]
    if missing:
        if all(not f for f in found.values()):
            raise UsageError(f"{folder} holds no train/dev/test files. {HELP}")
        raise UsageError(f"{folder} has no {' or '.join(missing)} file (names must contain the split)")
    return [(s, found[s][0], _read_frame(found[s][0], opts["strict"])) for s in SPLITS]


def _read_one_file(path: Path, opts: dict[str, Any]) -> list[tuple[str, Path, Any]]:
    if not path.is_file():
        raise DataError("file or folder does not exist", path=path)
    frame = _read_frame(path, opts["strict"])
    column = opts["split"]
    if column not in frame.columns:
        raise DataError(
            f"one file needs a split column (data.split_column, default 'split'); the header has "
            f"{', '.join(frame.columns)}. Or pass a folder with train/dev/test files",
            path=path,
            column=column,
        )
    out = []
    words = []
    for i, value in enumerate(frame[column].tolist()):
        word = SPLIT_WORDS.get(str(value).strip().lower()) if value is not None else None
        if word is None:
            raise DataError(f"split {value!r} is not train, dev or test", path=path, row=i + 2, column=column)
        words.append(word)
    words_arr = np.array(words)
    for split in SPLITS:
        part = frame[words_arr == split]
        out.append((split, path, part))
    return out


# ------------------------------------------------------------------------------------- assembly
def _column(frame: Any, name: str, path: Path) -> list[Any]:
    if name not in frame.columns:
        raise DataError(
            f"missing column; the header has {', '.join(map(str, frame.columns))}", path=path, column=name
        )
    return frame[name].tolist()


def _rows(frame: Any) -> np.ndarray:
    """Spreadsheet row numbers (header = row 1) of the frame's rows."""
    return np.asarray(frame.index, dtype=np.int64) + 2


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()


def _vector(value: Any, path: Path, row: int, column: str) -> np.ndarray:
    """A cell as float64 values: a number or a list literal ``[0.1, 0.2]``."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    else:
        text = _text(value)
        if text.startswith("[") and text.endswith("]"):
            items = [t for t in text[1:-1].replace(";", ",").split(",") if t.strip()]
        else:
            items = [text]
    try:
        out = np.array([float(x) for x in items], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"{_text(value)[:40]!r} is not a number or a list of numbers", path=path, row=row, column=column
        ) from None
    if not len(out):
        raise DataError("empty feature value", path=path, row=row, column=column)
    bad = ~np.isfinite(out) | (np.abs(out) > VALUE_LIMIT)
    if bad.any():
        raise DataError(
            f"value {out[bad][0]!r} is not finite or beyond +-{VALUE_LIMIT:g} (it would overflow float32 "
            "statistics); fix or rescale the feature",
            path=path,
            row=row,
            column=column,
        )
    return out


def _feature_stream(parts: list[tuple[str, Path, Any]], column: str) -> np.ndarray:
    arrays, width = [], None
    for _, path, frame in parts:
        values = _column(frame, column, path)
        for value, row in zip(values, _rows(frame), strict=True):
            vec = _vector(value, path, int(row), column)
            if width is None:
                width = len(vec)
            elif len(vec) != width:
                raise DataError(
                    f"{len(vec)} values where earlier rows have {width}",
                    path=path,
                    row=int(row),
                    column=column,
                )
            arrays.append(vec)
    return np.asarray(arrays, dtype=np.float32).reshape(len(arrays), width or 0)


def _assemble(source: Path, parts: list[tuple[str, Path, Any]], opts: dict[str, Any]) -> MultimodalData:
    label_col = opts["label"]
    raw_labels: list[str] = []
    split_of_row: list[str] = []
    where: list[tuple[Path, int]] = []
    for split, path, frame in parts:
        for value, row in zip(_column(frame, label_col, path), _rows(frame), strict=True):
            text = _text(value)
            if not text:
                raise DataError("empty label", path=path, row=int(row), column=label_col)
            raw_labels.append(text)
            where.append((path, int(row)))
        split_of_row += [split] * len(frame)
    train_labels = sorted({lab for lab, s in zip(raw_labels, split_of_row, strict=True) if s == "train"})
    classes = opts["labels"] or train_labels
    index = {c: i for i, c in enumerate(classes)}
    labels = np.empty(len(raw_labels), dtype=np.int64)
    for i, lab in enumerate(raw_labels):
        if lab not in index:
            how = "data.labels" if opts["labels"] else "the train split's labels"
            path, row = where[i]
            raise DataError(
                f"label {lab!r} is not one of {how}: {', '.join(classes)}",
                path=path,
                row=row,
                column=label_col,
            )
        labels[i] = index[lab]
    modalities = {
        mod: {col: _feature_stream(parts, col) for col in cols}
        for mod, cols in opts["features"].items()
        if cols
    }
    raw: dict[str, list[str]] = {}
    if opts["text"]:
        columns = [[_text(v) for _, p, f in parts for v in _column(f, c, p)] for c in opts["text"]]
        raw["text"] = [" ".join(t for t in texts if t) for texts in zip(*columns, strict=True)]

    def joined(cols: list[str]) -> list[str]:
        values = [[_text(v) for _, p, f in parts for v in _column(f, c, p)] for c in cols]
        return ["_".join(v) for v in zip(*values, strict=True)]

    groups: dict[str, np.ndarray] = {}
    positions = None
    if opts["dialogue"]:
        dialogue = [f"{s}:{d}" for s, d in zip(split_of_row, joined(opts["dialogue"]), strict=True)]
        groups["dialogue"] = np.asarray(dialogue)
        from mmbench.plugins.datasets.dialogue_pickle import dialogue_positions

        explicit = None
        if opts["position"]:
            explicit = []
            for _, path, frame in parts:
                for value, row in zip(_column(frame, opts["position"], path), _rows(frame), strict=True):
                    text = _text(value).removesuffix(".0")
                    if not text.isdigit():
                        raise DataError(
                            f"{text!r} is not a position (0, 1, ...)",
                            path=path,
                            row=int(row),
                            column=opts["position"],
                        )
                    explicit.append(int(text))
        positions = dialogue_positions(dialogue, explicit)
    if opts["speaker"]:
        groups["speaker"] = np.asarray(joined([opts["speaker"]]))
    for kind, col in opts["groups"].items():
        groups[kind] = np.asarray(joined([col]))
    ids = (
        joined([opts["id"]])
        if opts["id"]
        else [f"{s}:{p.name}:{r}" for s, (p, r) in zip(split_of_row, where, strict=True)]
    )
    split_arr = np.asarray(split_of_row)
    if opts["standardize"]:
        modalities = standardize_train_only(modalities, np.flatnonzero(split_arr == "train"))
    return MultimodalData(
        name="table",
        modalities=modalities,
        labels=labels,
        class_names=list(classes),
        splits={s: np.flatnonzero(split_arr == s).astype(np.int64) for s in SPLITS},
        groups=groups,
        raw=raw,
        ids=ids,
        positions=positions,
        meta={
            "source": str(source),
            "format": "table",
            "files": {s: str(p) for s, p, _ in parts},
            "split_scheme": "table: the files' own train/dev/test"
            if source.is_dir()
            else f"table: column {opts['split']}",
            "labels_from": "data.labels" if opts["labels"] else "train split (sorted)",
            "standardized": "train mean/std per feature" if opts["standardize"] else "no",
        },
    )
