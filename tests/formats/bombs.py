"""Hostile files for the resource-bomb tests (issue 19, kind 6), written by the tests themselves.

Each builder writes a small file that asks for far more memory or time than its size suggests.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

_WORKBOOK = (
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_RELS = (
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)
_SHEET_HEAD = (
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>V1</t></is></c>'
    b'<c r="B1" t="inlineStr"><is><t>Emotion</t></is></c></row>'
)


def _workbook(path: Path, sheet_body: bytes | list[bytes], shared: bytes | list[bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("xl/workbook.xml", _WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(_SHEET_HEAD)
            for part in sheet_body if isinstance(sheet_body, list) else [sheet_body]:
                fh.write(part)
            fh.write(b"</sheetData></worksheet>")
        if shared is not None:
            with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
                fh.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
                for part in shared if isinstance(shared, list) else [shared]:
                    fh.write(part)
                fh.write(b"</sst>")
    return path


def empty_rows_xlsx(path: Path, n_rows: int = 35_000_000) -> Path:
    """A worksheet of ``n_rows`` empty rows (35 million: 326 KB in the issue's report)."""
    chunk = b"<row/>" * 1_000_000
    parts = [chunk] * (n_rows // 1_000_000) + [b"<row/>" * (n_rows % 1_000_000)]
    return _workbook(path, parts)


def shared_strings_xlsx(path: Path, n_bytes: int = 200 << 20) -> Path:
    """One cell whose shared string is ``n_bytes`` long (200 MB in about half a megabyte)."""
    row = b'<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="s"><v>0</v></c></row>'
    block = b"A" * (8 << 20)
    body = [b"<si><t>"] + [block] * (n_bytes // len(block)) + [b"</t></si>"]
    return _workbook(path, row, body)


def billion_laughs_yaml(levels: int = 9, width: int = 9, flow: bool = False) -> str:
    """The "billion laughs" document: ``width ** levels`` strings through nested aliases."""
    items = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        items.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "{" + ", ".join(items) + "}" if flow else "\n".join(items) + "\n"


def pickle_bytearray(size: int = 1 << 30) -> bytes:
    """A 30-byte protocol-2 pickle for ``bytearray(size)``: memory on request."""
    return b"\x80\x02c__builtin__\nbytearray\nJ" + size.to_bytes(4, "little") + b"\x85R."


def pickle_list_of_range(n: int = 1_000_000_000) -> bytes:
    """``list(range(n))``: 8 GB of pointers from 50 bytes."""
    return b"\x80\x02c__builtin__\nlist\nc__builtin__\nrange\nJ" + n.to_bytes(4, "little") + b"\x85R\x85R."


def pickle_object_array(n: int = 1 << 27) -> bytes:
    """An object ndarray state claiming ``n`` elements with two items (numpy allocates, may crash)."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct

    class Fake:
        def __reduce__(self):
            return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (n,), np.dtype("O"), False, [1, 2]))

    return pickle.dumps(Fake(), protocol=2)


def pickle_nested(depth: int = 5000) -> bytes:
    """A list nested ``depth`` levels deep, built by opcodes (no recursion while writing)."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
