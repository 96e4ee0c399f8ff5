"""mmbench.formats.spreadsheet: the reference spreadsheet format (.xlsx/.csv), its errors and its cache."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import mmbench.formats.spreadsheet as ft
from mmbench.errors import DataError
from mmbench.formats.spreadsheet import FeatureTable, read_feature_table
from mmbench.runner.encoding_cache import cache_dir

VECTORS = ["V1", "V3", "A2"]
TEXTS = ["Utterance", "Emotion"]
ALIASES = {"File Name": ["File_name", "file_name"]}
DIMS = {"V1": 7, "V3": 3, "A2": 5, "V2": 2}


def _data(n: int = 5, seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    columns: dict[str, list] = {
        "File Name": [f"Ses0{1 + i % 5}F_impro01_F{i:03d}" for i in range(n)],
        "Utterance": [f"utterance {i}, with a comma & <xml> chars — café" for i in range(n)],
        "Emotion": [["hap", "sad", "neu", "ang"][i % 4] for i in range(n)],
    }
    for name in ("V1", "V3", "A2"):
        columns[name] = [rng.standard_normal(DIMS[name]).astype(np.float32).tolist() for _ in range(n)]
    columns["V1"][1][0] = 3e-2  # exponent notation
    return columns


def _cell(value) -> str:
    return str(value) if isinstance(value, list) else value


def _cells(columns: dict[str, list]) -> tuple[list[str], list[list[str]]]:
    header = list(columns)
    n = len(next(iter(columns.values())))
    rows = [
        [str(columns[h][i]) if isinstance(columns[h][i], list) else columns[h][i] for h in header]
        for i in range(n)
    ]
    return header, rows


def _write(path: Path, header: list[str], rows: list[list], how: str = "openpyxl") -> Path:
    """Write a table the ways spreadsheets get written: csv module, openpyxl (shared strings),
    openpyxl write-only (inline strings), pandas."""
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([header, *rows])
        return path
    if how == "pandas":
        import pandas as pd

        pd.DataFrame(rows, columns=header).to_excel(path, index=True)
        return path
    from openpyxl import Workbook

    wb = Workbook(write_only=how == "write_only")
    ws = wb.create_sheet("Data") if how == "write_only" else wb.active
    for row in [header, *rows]:
        ws.append(row)
    wb.save(path)
    return path


def _read(path: Path, **kwargs) -> FeatureTable:
    kwargs.setdefault("optional_vector_columns", ["V2"])
    kwargs.setdefault("optional_text_columns", ["File Name"])
    kwargs.setdefault("aliases", ALIASES)
    return read_feature_table(path, VECTORS, TEXTS, **kwargs)


# ----------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "suffix,how",
    [(".csv", "csv"), (".xlsx", "openpyxl"), (".xlsx", "write_only"), (".xlsx", "pandas")],
)
def test_round_trip(tmp_path, suffix, how):
    columns = _data()
    path = _write(tmp_path / f"table{suffix}", *_cells(columns), how=how)
    table = _read(path)
    assert table.path == path and len(table.sha256) == 64
    assert table.rows.dtype == np.int64 and table.rows.tolist() == [2, 3, 4, 5, 6]
    assert set(table.vectors) == set(VECTORS)  # V2 is optional and absent
    for name in VECTORS:
        expected = np.asarray(columns[name], dtype=np.float32)
        assert table.vectors[name].dtype == np.float32
        assert table.vectors[name].shape == (5, DIMS[name])  # widths come from the data
        np.testing.assert_array_equal(table.vectors[name], expected)
    assert table.texts["Utterance"] == columns["Utterance"]
    assert table.texts["Emotion"] == columns["Emotion"]
    assert table.texts["File Name"] == columns["File Name"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_alias_and_whitespace_headers(tmp_path, suffix):
    columns = _data()
    header, rows = _cells(columns)
    header = [{"File Name": "File_name ", "Emotion": " Emotion"}.get(h, h) for h in header]
    table = _read(_write(tmp_path / f"t{suffix}", header, rows))
    assert table.texts["File Name"] == columns["File Name"]
    assert table.texts["Emotion"] == columns["Emotion"]


def test_optional_vector_column_present_and_text_stripped(tmp_path):
    columns = _data()
    columns["V2"] = [[float(i), -float(i)] for i in range(5)]
    columns["Emotion"] = [f"  {e} " for e in columns["Emotion"]]
    table = _read(_write(tmp_path / "t.csv", *_cells(columns)))
    np.testing.assert_array_equal(table.vectors["V2"], np.asarray(columns["V2"], dtype=np.float32))
    assert table.texts["Emotion"] == [e.strip() for e in columns["Emotion"]]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_regional_csv_delimiters_and_bom(tmp_path, delimiter):
    columns = _data()
    header, rows = _cells(columns)
    path = tmp_path / "t.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh, delimiter=delimiter).writerows([header, *rows])
    table = _read(path)
    np.testing.assert_array_equal(table.vectors["A2"], np.asarray(columns["A2"], dtype=np.float32))
    assert table.texts["File Name"] == columns["File Name"]


def test_blank_rows_are_skipped_and_row_numbers_kept(tmp_path):
    header, rows = _cells(_data(3))
    path = _write(tmp_path / "t.csv", header, [rows[0], [""] * len(header), rows[1], rows[2]])
    table = _read(path)
    assert table.rows.tolist() == [2, 4, 5]
    assert table.vectors["V1"].shape == (3, 7)


def test_wrapped_and_unusual_lists_still_parse(tmp_path):
    """Lists wrapped over lines (CR/LF inside the cell) and non-ASCII digits: parsed, not refused."""
    header = ["Utterance", "Emotion", "V1", "V3", "A2"]
    rows = [
        ["a", "neu", "[1, 2,\n 3]", "[1,\r\n2, 3]", "[\u0667]"],  # Arabic-Indic seven
        ["b", "hap", "[4, 5, 6]", "[1, 2, 3]", "[8]"],
    ]
    table = _read(_write(tmp_path / "t.csv", header, rows))
    np.testing.assert_array_equal(table.vectors["V1"], np.float32([[1, 2, 3], [4, 5, 6]]))
    np.testing.assert_array_equal(table.vectors["V3"], np.float32([[1, 2, 3], [1, 2, 3]]))
    np.testing.assert_array_equal(table.vectors["A2"], np.float32([[7], [8]]))


def test_spreadsheet_list_literal_variants(tmp_path):
    header = ["Utterance", "Emotion", "V1", "V3", "A2"]
    rows = [
        ["a", "neu", "[1, 2.5, -3e-2]", " [ 1e3,-0.0 , +4 ] ", "[7]"],
        ["b", "hap", "[0.1,0.2,0.3]", "[1, 2, 3]", "[8]"],
    ]
    table = _read(_write(tmp_path / "t.csv", header, rows))
    np.testing.assert_array_equal(table.vectors["V1"], np.float32([[1, 2.5, -0.03], [0.1, 0.2, 0.3]]))
    np.testing.assert_array_equal(table.vectors["V3"], np.float32([[1000, 0, 4], [1, 2, 3]]))
    assert table.vectors["A2"].shape == (2, 1)


def test_valid_file_takes_the_vectorised_path(tmp_path, monkeypatch):
    def no_slow_path(*args):
        raise AssertionError("row-by-row parsing ran on a valid file")

    monkeypatch.setattr(ft, "_slow_parse", no_slow_path)
    table = _read(_write(tmp_path / "t.xlsx", *_cells(_data(40))))
    assert table.vectors["A2"].shape == (40, 5)


# ----------------------------------------------------------------------------------------- malformed


def _set(row: int, column: str, value: str):
    """Variant: data row ``row`` (spreadsheet numbering) of ``column`` replaced by ``value``."""

    def change(header, rows):
        rows[row - 2][header.index(column)] = value
        return header, rows

    return change


def _drop(column: str):
    def change(header, rows):
        i = header.index(column)
        return [h for h in header if h != column], [r[:i] + r[i + 1 :] for r in rows]

    return change


def _duplicate(column: str):
    def change(header, rows):
        i = header.index(column)
        return [*header, column], [[*r, r[i]] for r in rows]

    return change


MALFORMED = {
    # name: (change, expected row, expected column, message fragment)
    "missing column": (_drop("V3"), None, None, "missing column 'V3'"),
    "ragged vector": (_set(4, "V3", "[0.1, 0.2]"), 4, "V3", "2 values, expected 3 as in row 2"),
    "unparsable value": (_set(3, "V1", "[0.1, abc, 0.3, 1, 2, 3, 4]"), 3, "V1", "'abc'"),
    "not a list": (_set(5, "A2", "0.5"), 5, "A2", "cannot parse '0.5'"),
    "nested list": (_set(3, "V3", "[[1, 2, 3]]"), 3, "V3", "nested"),
    "trailing comma": (_set(6, "V3", "[1, 2, ]"), 6, "V3", "empty value"),
    "nan": (_set(4, "V1", "[0.1, nan, 0.3, 1, 2, 3, 4]"), 4, "V1", "NaN"),
    "inf": (_set(2, "A2", "[inf, 1, 2, 3, 4]"), 2, "A2", "infinite"),
    "float32 overflow": (_set(3, "A2", "[1e39, 1, 2, 3, 4]"), 3, "A2", "too large"),
    "beyond float32 statistics": (_set(3, "A2", "[1e30, 1, 2, 3, 4]"), 3, "A2", "beyond +-1e+15"),
    "empty vector cell": (_set(5, "V1", ""), 5, "V1", "empty cell"),
    "empty list": (_set(4, "V3", "[]"), 4, "V3", "empty vector"),
    "empty text cell": (_set(3, "Emotion", "  "), 3, "Emotion", "empty cell"),
    "duplicate column": (_duplicate("V1"), None, "V1", "appears more than once"),
    "quoted numbers": (_set(2, "V3", '["1", "2", "3"]'), 2, "V3", "cannot parse"),
}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.parametrize("variant", list(MALFORMED))
def test_malformed_variant_names_file_row_column(tmp_path, suffix, variant):
    change, row, column, fragment = MALFORMED[variant]
    header, rows = change(*_cells(_data()))
    path = _write(tmp_path / f"bad{suffix}", header, rows)
    with pytest.raises(DataError) as err:
        _read(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and fragment in message
    assert err.value.row == row and err.value.column == column
    if row is not None:
        assert f"row {row}" in message and repr(column) in message


def test_missing_column_lists_what_exists(tmp_path):
    header, rows = _drop("A2")(*_cells(_data()))
    with pytest.raises(
        DataError, match=r"the header row has: 'File Name', 'Utterance', 'Emotion', 'V1', 'V3'"
    ):
        _read(_write(tmp_path / "t.xlsx", header, rows))


def test_ragged_row_two_reports_the_first_disagreeing_row(tmp_path):
    header, rows = _set(2, "V3", "[1, 2, 3, 4]")(*_cells(_data()))
    with pytest.raises(DataError, match=r"row 3, column 'V3': vector has 3 values, expected 4 as in row 2"):
        _read(_write(tmp_path / "t.csv", header, rows))


@pytest.mark.parametrize(
    "name,content,fragment",
    [
        ("empty.csv", b"", "empty file"),
        ("empty.xlsx", b"", "empty file"),
        ("header_only.csv", b"Utterance,Emotion,V1,V3,A2\n", "no data rows"),
        ("blank_lines.csv", b"\n\n\n", "header"),
        ("renamed.xlsx", b"Utterance,Emotion,V1\nhi,neu,[1]\n", "not an .xlsx workbook"),
        ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, "old binary .xls"),
        ("table.xls", b"whatever", "unsupported format '.xls'"),
        ("table.txt", b"a,b\n", "unsupported format '.txt'"),
    ],
)
def test_bad_files(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        _read(path)
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_header_only_xlsx_and_missing_file(tmp_path):
    path = _write(tmp_path / "t.xlsx", ["Utterance", "Emotion", "V1", "V3", "A2"], [])
    with pytest.raises(DataError, match="no data rows"):
        _read(path)
    with pytest.raises(DataError, match="file not found"):
        _read(tmp_path / "absent.xlsx")


def test_damaged_xlsx(tmp_path):
    import zipfile

    path = tmp_path / "t.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook")
    with pytest.raises(DataError, match="damaged or unsupported .xlsx"):
        _read(path)


# ----------------------------------------------------------------------------------------- cache


def _entries() -> list[Path]:
    return sorted((cache_dir() / "tables").glob("*.npz"))


def test_cache_hit_does_not_parse_again(tmp_path, monkeypatch):
    path = _write(tmp_path / "t.xlsx", *_cells(_data()))
    first = _read(path)
    assert len(_entries()) == 1

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed again despite a cache entry")

    monkeypatch.setattr(ft, "_parse_table", no_parse)
    second = _read(path)
    assert second.sha256 == first.sha256 and second.rows.tolist() == first.rows.tolist()
    assert second.texts == first.texts
    assert set(second.vectors) == set(first.vectors)
    for name, array in first.vectors.items():
        assert second.vectors[name].dtype == np.float32
        np.testing.assert_array_equal(second.vectors[name], array)


def test_cache_key_covers_columns_and_content(tmp_path):
    columns = _data()
    path = _write(tmp_path / "t.csv", *_cells(columns))
    _read(path)
    narrower = read_feature_table(path, ["V1"], ["Emotion"])
    assert set(narrower.vectors) == {"V1"} and set(narrower.texts) == {"Emotion"}
    assert len(_entries()) == 2
    columns["Emotion"][0] = "sad"
    path.unlink()
    _write(path, *_cells(columns))
    assert _read(path).texts["Emotion"][0] == "sad"


def _parse_counter(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = ft._parse_table

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "_parse_table", counting)
    return calls


def test_tampered_cache_is_ignored_and_rewritten(tmp_path, monkeypatch):
    columns = _data()
    path = _write(tmp_path / "t.csv", *_cells(columns))
    expected = _read(path).vectors["V1"]
    (entry,) = _entries()
    payload = bytearray(entry.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    entry.write_bytes(bytes(payload))
    calls = _parse_counter(monkeypatch)
    table = _read(path)
    assert calls == [1]
    np.testing.assert_array_equal(table.vectors["V1"], expected)
    meta = json.loads(entry.with_suffix(".json").read_text())
    import hashlib

    assert hashlib.sha256(entry.read_bytes()).hexdigest() == meta["sha256"]  # rewritten
    _read(path)
    assert calls == [1]  # and trusted again


def test_entry_of_another_table_is_not_served(tmp_path, monkeypatch):
    """A checksum-valid entry copied over another key (other file, same columns) is rejected."""
    a = _read(_write(tmp_path / "a.csv", *_cells(_data(seed=1))))
    (entry_a,) = _entries()
    b_path = _write(tmp_path / "b.csv", *_cells(_data(seed=2)))
    b = _read(b_path)
    entry_b = next(p for p in _entries() if p != entry_a)
    shutil.copy(entry_a, entry_b)
    shutil.copy(entry_a.with_suffix(".json"), entry_b.with_suffix(".json"))
    calls = _parse_counter(monkeypatch)
    again = _read(b_path)
    assert calls == [1]
    np.testing.assert_array_equal(again.vectors["V1"], b.vectors["V1"])
    assert not np.array_equal(again.vectors["V1"], a.vectors["V1"])
