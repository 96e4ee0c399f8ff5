"""Fast reader of the reference spreadsheet format (one row per utterance; .xlsx or .csv).

Columns hold either text (``Utterance``, ``Emotion``, ``File Name``) or feature vectors written
as list literals (``[0.12, -0.5, 3e-2]``) in one cell. Vector widths come from the data (the
first data row) and every other row must match. Parsing is vectorised: a column's cells are
checked for bracket shape, joined, and parsed by one C-level CSV call; only when that fails
(or yields NaN/inf) are the rows checked one by one, to name the first bad row and column.
The first worksheet of a workbook is read straight from its XML (shared and inline strings):
for 10,000 rows of long list cells that takes about 2 s where openpyxl's read-only cells take 8 s.

Parsed arrays are cached under ``cache_dir()/tables`` keyed by the file's SHA-256 and the
requested columns, as ``.npz`` (``allow_pickle=False``) verified by a stored SHA-256 before use.
A bad entry is ignored and rewritten. Every problem raises :class:`DataError` naming the file,
and the row (spreadsheet numbering: header = row 1) and column where there is one. No row is
dropped; only rows with every cell empty are skipped, since they carry no sample.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmbench.errors import DataError
from mmbench.formats.text_csv import TextEncodingWarning, check_unique_columns, csv_records, decode_file
from mmbench.formats.values import VALUE_LIMIT, first_bad
from mmbench.formats.xlsx import column_letter, xlsx_rows

FORMATS = (".xlsx", ".csv")
_CACHE_VERSION = 1
_CR_TO_SPACE = bytes.maketrans(b"\r", b" ")
_EXCEL_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


@dataclass
class FeatureTable:
    """A parsed spreadsheet: vector columns as float32 ``[N, D]``, text columns as stripped strings."""

    path: Path
    vectors: dict[str, np.ndarray]
    texts: dict[str, list[str]]
    rows: np.ndarray
    sha256: str

    @property
    def n(self) -> int:
        """Number of samples (data rows)."""
        return int(self.rows.shape[0])


def read_feature_table(
    path: Path,
    vector_columns: Sequence[str],
    text_columns: Sequence[str],
    optional_vector_columns: Sequence[str] = (),
    optional_text_columns: Sequence[str] = (),
    aliases: Mapping[str, Sequence[str]] = {},  # noqa: B006 - read only
    strict_encoding: bool = False,
) -> FeatureTable:
    """Read the named columns of a .xlsx/.csv feature spreadsheet, from the parsed cache when possible.

    Optional columns that are absent (or empty in every row) are left out of the result; empty
    cells of optional text columns read as ``""``. ``aliases`` maps a canonical column name to
    other accepted header spellings; results are keyed by the canonical name. A CSV is decoded
    per line (:mod:`mmbench.formats.text_csv`): lines that are not UTF-8 are read as cp1252 with a
    warning (such a file is never cached, so the warning shows on every read), or refused with
    ``strict_encoding``.
    """
    path = Path(path)
    _check_file(path)
    from mmbench.runner.encoding_cache import file_sha256

    sha = file_sha256(path, remember=False)  # a data file is hashed in full: an edit always shows
    request = {
        "vectors": list(vector_columns),
        "texts": list(text_columns),
        "optional_vectors": list(optional_vector_columns),
        "optional_texts": list(optional_text_columns),
        "aliases": {k: list(v) for k, v in sorted(aliases.items())},
    }
    key = _cache_key(sha, request)
    cached = _cache_load(key)
    if cached is not None:
        rows, vectors, texts = cached
        return FeatureTable(path=path, vectors=vectors, texts=texts, rows=rows, sha256=sha)
    t0 = time.perf_counter()
    if path.suffix.lower() == ".xlsx":
        source, clean = xlsx_rows(path), True
    else:
        decoded = decode_file(path, strict_encoding)
        source, clean = csv_records(decoded.text, path), not decoded.fallback_lines
    rows, vectors, texts = _parse_table(
        path,
        source,
        list(vector_columns),
        list(text_columns),
        list(optional_vector_columns),
        list(optional_text_columns),
        aliases,
    )
    if clean:
        with contextlib.suppress(OSError):  # a read-only cache only costs parsing again next time
            _cache_store(key, sha, path, rows, vectors, texts, time.perf_counter() - t0)
    return FeatureTable(path=path, vectors=vectors, texts=texts, rows=rows, sha256=sha)


def read_header(path: Path, strict_encoding: bool = False) -> list[str]:
    """The column names on row 1 of a .xlsx/.csv (decoded as :func:`read_feature_table` does)."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() == ".xlsx":
        source = xlsx_rows(path)
    else:
        with warnings.catch_warnings():  # the full read that follows warns once
            warnings.simplefilter("ignore", TextEncodingWarning)
            source = csv_records(decode_file(path, strict_encoding).text, path)
    first = next(source, None)
    if first is None:
        raise DataError("empty file: no header row and no data", path=path)
    return [_unescape(v).strip() for _, v in sorted(first[1].items()) if v is not None]


# --------------------------------------------------------------------------------------------- reading


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError("file not found", path=path)
    if not path.is_file():
        raise DataError("not a file (expected a .xlsx or .csv spreadsheet)", path=path)
    if path.suffix.lower() not in FORMATS:
        raise DataError(
            f"unsupported format {path.suffix or '(no extension)'!r}; feature spreadsheets must be "
            ".xlsx (Excel 2007+) or .csv",
            path=path,
        )
    if path.stat().st_size == 0:
        raise DataError("empty file (0 bytes)", path=path)


def _parse_table(
    path: Path,
    source: Iterator[tuple[int, dict[int, str]]],
    vector_columns: list[str],
    text_columns: list[str],
    optional_vector_columns: list[str],
    optional_text_columns: list[str],
    aliases: Mapping[str, Sequence[str]],
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, list[str]]]:
    """Parse the file itself (no cache): row numbers, vector arrays, text lists."""
    header_row = next(source, None)
    if header_row is None:
        raise DataError("empty file: no header row and no data", path=path)
    header_number, header = header_row
    if header_number != 1:
        raise DataError(
            f"row 1 is empty; the header (column names) must be on row 1 (first non-empty row is "
            f"{header_number})",
            path=path,
        )
    check_unique_columns([_unescape(v) for _, v in sorted(header.items()) if v is not None], path)
    wanted = [*vector_columns, *text_columns, *optional_vector_columns, *optional_text_columns]
    required = set(vector_columns) | set(text_columns)
    positions = _match_header(path, header, wanted, required, aliases)
    cells: dict[str, list[str | None]] = {name: [] for name in positions}
    rows: list[int] = []
    order = list(positions.items())
    for number, values in source:
        if all(not v.strip() for v in values.values()):
            continue  # a blank row carries no sample
        picked = [values.get(i) for _, i in order]
        rows.append(number)
        for (name, _), value in zip(order, picked, strict=True):
            cells[name].append(value)
    if not rows:
        raise DataError("no data rows (only the header row)", path=path)
    row_numbers = np.asarray(rows, dtype=np.int64)
    texts: dict[str, list[str]] = {}
    for name in [*text_columns, *optional_text_columns]:
        if name in cells:
            texts[name] = _text_column(path, name, cells[name], row_numbers, name in required)
    vectors: dict[str, np.ndarray] = {}
    for name in [*vector_columns, *optional_vector_columns]:
        if name not in cells:
            continue
        column = cells[name]
        if name not in required and all(v is None or not v.strip() for v in column):
            continue  # an optional column left empty is as good as absent
        vectors[name] = _vector_column(path, name, column, row_numbers)
    return row_numbers, vectors, texts


def _match_header(
    path: Path,
    header: dict[int, str],
    wanted: list[str],
    required: set[str],
    aliases: Mapping[str, Sequence[str]],
) -> dict[str, int]:
    """Map each wanted canonical column to its position; exact (stripped) match, then case-insensitive."""
    names = {i: _unescape(v).strip() for i, v in header.items() if v is not None and v.strip()}
    found: dict[str, int] = {}
    for canonical in dict.fromkeys(wanted):
        spellings = [canonical, *aliases.get(canonical, ())]
        hits = [i for i, v in names.items() if v in spellings]
        if not hits:
            lowered = {s.strip().lower() for s in spellings}
            hits = [i for i, v in names.items() if v.lower() in lowered]
        if len(hits) > 1:
            where = ", ".join(f"{names[i]!r} (column {column_letter(i)})" for i in hits)
            raise DataError(f"column {canonical!r} appears more than once: {where}", path=path)
        if hits:
            found[canonical] = hits[0]
        elif canonical in required:
            also = f" (or {', '.join(repr(a) for a in aliases[canonical])})" if aliases.get(canonical) else ""
            present = ", ".join(repr(names[i]) for i in sorted(names)) or "(none)"
            raise DataError(f"missing column {canonical!r}{also}; the header row has: {present}", path=path)
    return found


def _text_column(
    path: Path, name: str, values: list[str | None], rows: np.ndarray, required: bool
) -> list[str]:
    out = [_unescape(v).strip() if v is not None else "" for v in values]
    if required:
        for i, v in enumerate(out):
            if not v:
                raise DataError(
                    "empty cell; this column is required", path=path, row=int(rows[i]), column=name
                )
    return out


def _unescape(value: str) -> str:
    """Decode Excel's ``_xHHHH_`` escapes of control characters."""
    return _EXCEL_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value) if "_x" in value else value


# --------------------------------------------------------------------------------------------- vectors


def _vector_column(path: Path, name: str, values: list[str | None], rows: np.ndarray) -> np.ndarray:
    """Parse one column of list literals into float32 ``[N, D]`` (vectorised; row by row if that fails)."""
    cells: list[str] = []
    for i, v in enumerate(values):
        s = v.strip() if v is not None else ""
        if not s:
            raise DataError(
                "empty cell; expected a list of numbers like [0.12, -0.5]",
                path=path,
                row=int(rows[i]),
                column=name,
            )
        if s[0] != "[" or s[-1] != "]":
            raise DataError(
                f"cannot parse {_excerpt(s)} as a list of numbers like [0.12, -0.5]",
                path=path,
                row=int(rows[i]),
                column=name,
            )
        cells.append(s)
    array = _fast_parse(cells)
    return array if array is not None else _slow_parse(path, name, cells, rows)


def _fast_parse(cells: list[str]) -> np.ndarray | None:
    """All cells at once through pandas' C CSV parser; None when anything is off (then row by row)."""
    n = len(cells)
    blob = "\n".join(cells)
    if blob.count("\n") != n - 1:  # a list wrapped over several lines inside its cell
        blob = "\n".join(c.replace("\n", " ") for c in cells)
    try:
        data = blob.encode("ascii")
    except UnicodeEncodeError:
        return None
    stripped = data.translate(_CR_TO_SPACE, b"[]")
    if len(stripped) != len(data) - 2 * n:
        return None  # brackets beyond each cell's own leading [ and trailing ]: nested or stray
    import pandas as pd

    try:
        frame = pd.read_csv(
            io.BytesIO(stripped),
            header=None,
            sep=",",
            dtype=np.float64,
            engine="c",
            quoting=csv.QUOTE_NONE,
            na_filter=False,
            skip_blank_lines=False,
            low_memory=False,
        )
    except (ValueError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if frame.shape[0] != n or frame.shape[1] == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        array = np.ascontiguousarray(frame.to_numpy(dtype=np.float64), dtype=np.float32)
    # NaN/inf in the text and values beyond float32's range (inf after the cast) go to the diagnosis
    return array if first_bad(array) is None else None


def _slow_parse(path: Path, name: str, cells: list[str], rows: np.ndarray) -> np.ndarray:
    """Parse the cells one by one; raise DataError naming the first bad row, else return the array."""
    expected: int | None = None
    parsed: list[list[float]] = []
    for i, cell in enumerate(cells):
        row = int(rows[i])
        inner = cell[1:-1]
        if "[" in inner or "]" in inner:
            raise DataError(
                f"cannot parse {_excerpt(cell)}: nested or stray brackets; expected a flat list of numbers",
                path=path,
                row=row,
                column=name,
            )
        tokens = inner.split(",") if inner.strip() else []
        values = []
        for token in tokens:
            value = _to_float(token)
            if value is None:
                raise DataError(
                    f"cannot parse {_excerpt(token.strip()) if token.strip() else 'an empty value'} "
                    f"as a number in {_excerpt(cell)}",
                    path=path,
                    row=row,
                    column=name,
                )
            values.append(value)
        if not values:
            raise DataError("empty vector []; expected at least one number", path=path, row=row, column=name)
        if expected is None:
            expected = len(values)
        elif len(values) != expected:
            raise DataError(
                f"vector has {len(values)} values, expected {expected} as in row {int(rows[0])}",
                path=path,
                row=row,
                column=name,
            )
        for k, value in enumerate(values):
            if not math.isfinite(value):
                raise DataError(
                    f"value {k + 1} is {tokens[k].strip()!r}; NaN and infinite values are not allowed",
                    path=path,
                    row=row,
                    column=name,
                )
            if abs(value) > VALUE_LIMIT:
                raise DataError(
                    f"value {k + 1} ({tokens[k].strip()}) is beyond +-{VALUE_LIMIT:g}: too large for the "
                    "float32 statistics of training (its square overflows); rescale the feature",
                    path=path,
                    row=row,
                    column=name,
                )
        parsed.append(values)
    return np.asarray(parsed, dtype=np.float32)


def _to_float(token: str) -> float | None:
    token = token.strip()
    if not token or "_" in token:  # float() accepts "1_0"; the fast parser does not
        return None
    try:
        return float(token)
    except ValueError:
        return None


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


# --------------------------------------------------------------------------------------------- cache


def _cache_key(sha: str, request: dict) -> str:
    blob = json.dumps({"version": _CACHE_VERSION, "file": sha, "request": request}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _cache_paths(key: str) -> tuple[Path, Path] | None:
    from mmbench.runner.encoding_cache import usable_cache_dir

    root = usable_cache_dir()
    if root is None:
        return None
    path = root / "tables" / f"{key}.npz"
    return path, path.with_suffix(".json")


def _cache_store(
    key: str,
    sha: str,
    source: Path,
    rows: np.ndarray,
    vectors: dict[str, np.ndarray],
    texts: dict[str, list[str]],
    seconds: float,
) -> None:
    from mmbench.runner.encoding_cache import store

    streams: dict[str, np.ndarray] = {
        "key": np.array([key]),
        "rows": rows,
        "vector_names": np.array(list(vectors), dtype=str),
        "text_names": np.array(list(texts), dtype=str),
    }
    for i, array in enumerate(vectors.values()):
        streams[f"v{i}"] = array
    for i, values in enumerate(texts.values()):
        encoded = [s.encode("utf-8") for s in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        streams[f"t{i}_data"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        streams[f"t{i}_offsets"] = offsets
    paths = _cache_paths(key)
    if paths is None:
        return
    path, meta_path = paths
    store(path, meta_path, streams, {"table": str(source), "sha256": sha}, seconds)


def _cache_load(key: str) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, list[str]]] | None:
    """The cached parse for ``key``, or None when absent or not exactly as written (checksum, shapes)."""
    from mmbench.runner.encoding_cache import load_cached

    paths = _cache_paths(key)
    if paths is None:
        return None
    path, meta_path = paths
    if not (path.exists() and meta_path.exists()):
        return None
    loaded = load_cached(path, meta_path)
    if loaded is None:
        return None
    streams = loaded[0]
    try:
        if str(streams["key"][0]) != key:
            return None
        rows = streams["rows"]
        n = rows.shape[0]
        if rows.dtype != np.int64 or rows.ndim != 1 or n == 0:
            return None
        vectors: dict[str, np.ndarray] = {}
        for i, name in enumerate(streams["vector_names"].tolist()):
            array = streams[f"v{i}"]
            if array.dtype != np.float32 or array.ndim != 2 or array.shape[0] != n:
                return None
            vectors[str(name)] = array
        texts: dict[str, list[str]] = {}
        for i, name in enumerate(streams["text_names"].tolist()):
            data, offsets = streams[f"t{i}_data"].tobytes(), streams[f"t{i}_offsets"]
            if offsets.shape != (n + 1,) or int(offsets[-1]) != len(data):
                return None
            ends = offsets.tolist()
            texts[str(name)] = [data[a:b].decode("utf-8") for a, b in zip(ends[:-1], ends[1:], strict=True)]
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        return None
    return rows, vectors, texts
