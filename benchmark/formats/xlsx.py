"""The first worksheet of an ``.xlsx`` workbook, read straight from its XML (shared and inline strings).

For 10,000 rows of long list cells that takes about 2 s where openpyxl's read-only cells take 8 s.
Parts are checked for their uncompressed size and compression ratio before parsing (decompression
bombs), and rows beyond Excel's limit are refused. Every problem is a
:class:`~mmbench.errors.DataError` naming the file.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

from mmbench.errors import DataError

_CELL_REF = re.compile(r"([A-Za-z]+)")
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
#: Excel's own sheet limit; a row number or row count above it is a damaged or crafted file.
MAX_ROWS = 1_048_576
#: Largest uncompressed workbook part read (worksheet, shared strings).
MAX_PART_BYTES = 4 << 30
#: Largest compression ratio of a part over 16 MiB. Text of numbers compresses about 3:1; a
#: part that expands 100 times or more is a decompression bomb (35 million empty rows in 326 KB).
MAX_RATIO, RATIO_FROM_BYTES = 100, 16 << 20


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _column_index(ref: str) -> int:
    index = 0
    for ch in ref.upper():
        index = index * 26 + ord(ch) - 64
    return index - 1


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def xlsx_rows(path: Path) -> Iterator[tuple[int, dict[int, str]]]:
    """Yield (row number, {column index: cell text}) of the first worksheet, read from its XML."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        with path.open("rb") as fh:
            head = fh.read(8)
        hint = (
            " It looks like an old binary .xls file; save it as .xlsx."
            if head.startswith(b"\xd0\xcf\x11\xe0")
            else " Is it a CSV or another file renamed to .xlsx?"
        )
        raise DataError(f"not an .xlsx workbook (not a zip archive).{hint}", path=path) from None
    with archive:
        try:
            sheet, strings_part = _workbook_parts(archive)
            for part in (sheet, strings_part):
                if part is not None:
                    _check_part_size(path, archive.getinfo(part))
            shared = _shared_strings(archive, strings_part) if strings_part else []
            with archive.open(sheet) as fh:
                yield from _sheet_rows(fh, shared)
        except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, EOFError, ValueError, IndexError) as e:
            message = f"damaged or unsupported .xlsx workbook ({type(e).__name__}: {e})"
            raise DataError(message, path=path) from None


def _check_part_size(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse a part whose uncompressed size (from the zip directory, before inflating) is a bomb."""
    size, packed = info.file_size, max(info.compress_size, 1)
    if size > MAX_PART_BYTES:
        raise DataError(
            f"{info.filename} would unpack to {size:,} bytes (limit {MAX_PART_BYTES:,}); refused", path=path
        )
    if size > RATIO_FROM_BYTES and size / packed > MAX_RATIO:
        raise DataError(
            f"{info.filename} would unpack from {packed:,} to {size:,} bytes ({size // packed:,} times; "
            f"spreadsheets of numbers stay under {MAX_RATIO}); refused as a decompression bomb",
            path=path,
        )


def _workbook_parts(archive: zipfile.ZipFile) -> tuple[str, str | None]:
    """Zip member names of the first worksheet and of the shared-strings table."""
    names = set(archive.namelist())
    if "xl/workbook.xml" not in names:
        raise KeyError("xl/workbook.xml is missing")
    rels: dict[str, tuple[str, str]] = {}
    if "xl/_rels/workbook.xml.rels" in names:
        root = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        for rel in root:
            target = rel.get("Target", "")
            target = target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)
            rels[rel.get("Id", "")] = (rel.get("Type", ""), target)
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    sheet = None
    for el in workbook.iter():
        if _local(el.tag) == "sheet":
            rid = el.get(_REL_NS) or next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
            if rid in rels:
                sheet = rels[rid][1]
            break
    if sheet is None or sheet not in names:
        sheet = "xl/worksheets/sheet1.xml"
    if sheet not in names:
        raise KeyError("the workbook has no worksheet")
    strings = next((t for kind, t in rels.values() if kind.endswith("/sharedStrings")), None)
    if strings not in names:
        strings = "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in names else None
    return sheet, strings


def _rich_text(el: ElementTree.Element) -> str:
    """Text of an ``<si>``/``<is>`` element: its ``<t>`` or its runs' ``<t>``, without phonetic hints."""
    if len(el) == 1 and _local(el[0].tag) == "t":
        return el[0].text or ""
    parts = []
    for child in el:
        tag = _local(child.tag)
        if tag == "t":
            parts.append(child.text or "")
        elif tag == "r":
            parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
    return "".join(parts)


def _shared_strings(archive: zipfile.ZipFile, member: str) -> list[str]:
    strings: list[str] = []
    with archive.open(member) as fh:
        root = None
        for event, el in ElementTree.iterparse(fh, events=("start", "end")):
            if root is None:
                root = el
            if event == "end" and _local(el.tag) == "si":
                strings.append(_rich_text(el))
                el.clear()
                root.clear()  # read strings leave the tree
    return strings


def _sheet_rows(fh: io.BufferedIOBase, shared: list[str]) -> Iterator[tuple[int, dict[int, str]]]:
    """Rows of a worksheet's XML; memory stays bounded: each row is dropped once read."""
    row_number = 0
    n_rows = 0
    column = -1
    values: dict[int, str] = {}
    parents: list[ElementTree.Element] = []
    for event, el in ElementTree.iterparse(fh, events=("start", "end")):
        tag = _local(el.tag)
        if event == "start":
            if tag == "sheetData":
                parents.append(el)
            elif tag == "row":
                r = el.get("r")
                row_number = int(r) if r else row_number + 1
                n_rows += 1
                if row_number > MAX_ROWS or n_rows > MAX_ROWS:
                    raise ValueError(f"the worksheet has more than {MAX_ROWS:,} rows (Excel's limit)")
                column, values = -1, {}
            continue
        if tag == "c":
            ref = el.get("r")
            match = _CELL_REF.match(ref) if ref else None
            column = _column_index(match.group(1)) if match else column + 1
            value = _cell_value(el, shared)
            if value is not None:
                values[column] = value
            el.clear()
        elif tag == "row":
            if values:
                yield row_number, values
            el.clear()
            if parents and len(parents[-1]):
                parents[-1].clear()  # drop read rows: 35 million empty rows must not stay in memory


def _cell_value(el: ElementTree.Element, shared: list[str]) -> str | None:
    kind = el.get("t", "n")
    if kind == "inlineStr":
        for child in el:
            if _local(child.tag) == "is":
                return _rich_text(child)
        return None
    v = None
    for child in el:
        if _local(child.tag) == "v":
            v = child.text
            break
    if v is None:
        return None
    if kind == "s":
        return shared[int(v)]
    if kind == "b":
        return "TRUE" if v.strip() == "1" else "FALSE"
    return v
