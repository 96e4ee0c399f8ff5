"""Text files as researchers hold them: encodings detected per file and decoded per row, CSV records.

* A byte-order mark selects UTF-8, UTF-16 (LE/BE) or UTF-32; a file without one whose first bytes
  alternate with NULs is read as UTF-16 (what Excel's "Unicode text" writes).
* Otherwise every line is decoded as UTF-8 on its own. A line that is not valid UTF-8 (a stray
  Windows-1252 byte, typically a curly quote pasted into one utterance) is decoded as cp1252 —
  that line only, so the rest of the file keeps its UTF-8 characters — and one
  :class:`TextEncodingWarning` names those lines. With ``strict=True`` such a line is refused
  instead (``DataError`` naming the file and line).
* Duplicate column names are refused naming the column (a table with two ``Emotion`` columns
  would silently use one of them).
"""

from __future__ import annotations

import codecs
import csv
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import DataError

BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
SHOWN_ROWS = 10


class TextEncodingWarning(UserWarning):
    """Some lines of a text file were not UTF-8 and were decoded as cp1252."""


@dataclass
class DecodedText:
    """A decoded file: its text, the encoding found, and the 1-based lines decoded as cp1252."""

    text: str
    encoding: str
    fallback_lines: list[int] = field(default_factory=list)


def decode_file(path: Path, strict: bool = False) -> DecodedText:
    """Decode ``path`` (see the module docstring); warn once about cp1252 lines unless ``strict``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return DecodedText(_decode_whole(data[len(bom) :], encoding, path), encoding)
    head = data[:400]
    if len(head) >= 4 and head[1::2].count(0) > 0.9 * len(head[1::2]) and head[0::2].count(0) == 0:
        return DecodedText(_decode_whole(data, "utf-16-le", path), "utf-16-le")
    if len(head) >= 4 and head[0::2].count(0) > 0.9 * len(head[0::2]) and head[1::2].count(0) == 0:
        return DecodedText(_decode_whole(data, "utf-16-be", path), "utf-16-be")
    try:
        return DecodedText(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    parts, fallback = [], []
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        try:
            parts.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            if strict:
                raise DataError(
                    f"line {number} is not valid UTF-8 (byte {line[exc.start]:#04x} at character "
                    f"{exc.start + 1}); save the file as UTF-8, or leave data.encoding at auto to read such "
                    "lines as cp1252",
                    path=path,
                ) from None
            parts.append(line.decode("cp1252", errors="replace"))
            fallback.append(number)
    shown = ", ".join(map(str, fallback[:SHOWN_ROWS])) + (" ..." if len(fallback) > SHOWN_ROWS else "")
    warnings.warn(
        f"{path}: {len(fallback)} line(s) are not valid UTF-8 and were decoded as cp1252 (Windows "
        f"Western), the rest of the file as UTF-8: line(s) {shown}. Check them, or refuse such files "
        "with data.encoding=strict",
        TextEncodingWarning,
        stacklevel=2,
    )
    return DecodedText("".join(parts), "utf-8+cp1252", fallback)


def _decode_whole(data: bytes, encoding: str, path: Path) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid {encoding.upper()} text (byte offset {exc.start})", path=path) from None


def csv_records(text: str, path: Path) -> Iterator[tuple[int, dict[int, str]]]:
    """Yield (row number, {column index: cell}) for every non-blank record; header = row 1.

    The delimiter is ``,`` unless the header line has none and has ``;`` or tabs (regional Excel,
    TSV).
    """
    if csv.field_size_limit() < 2**30:
        csv.field_size_limit(2**30)  # one cell holds a whole vector
    first = text.split("\n", 1)[0]
    delimiter = next((d for d in (";", "\t") if "," not in first and d in first), ",")
    try:
        for number, record in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1):
            if record and any(f.strip() for f in record):
                yield number, dict(enumerate(record))
    except csv.Error as exc:
        raise DataError(f"malformed CSV: {exc}", path=path) from None


def csv_rows(path: Path, strict: bool = False) -> Iterator[tuple[int, dict[int, str]]]:
    """:func:`csv_records` of the decoded file."""
    yield from csv_records(decode_file(path, strict).text, path)


def check_unique_columns(names: list[str], path: Path) -> None:
    """Refuse a header that names one column twice (after trimming white space)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        key = str(name).strip()
        if key and key in seen:
            raise DataError(
                f"column {key!r} appears more than once in the header (columns {seen[key] + 1} and "
                f"{i + 1}); rename one",
                path=path,
                column=key,
            )
        seen[key] = i


def read_csv_frame(path: Path, strict: bool = False, sep: str | None = None) -> Any:
    """A CSV/TSV as a pandas DataFrame of strings (empty cells NaN), decoded as above.

    Raises ``DataError`` for an unreadable, empty or header-only file and for duplicate columns.
    """
    import pandas as pd

    if not path.is_file():
        raise DataError("file not found", path=path)
    decoded = decode_file(path, strict)
    if not decoded.text.strip():
        raise DataError("the file is empty", path=path)
    first = decoded.text.split("\n", 1)[0]
    if sep is None:
        sep = next((d for d in ("\t", ";") if "," not in first and d in first), ",")
    header = next(csv.reader([first], delimiter=sep))
    check_unique_columns(header, path)
    try:
        frame = pd.read_csv(
            io.StringIO(decoded.text), sep=sep, dtype=object, keep_default_na=False, na_values=[""]
        )
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", path=path) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"not a readable CSV: {exc}", path=path) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame
