"""Encodings per row: a stray cp1252 byte decodes that line only (one warning naming it), strict
refuses it; UTF-16 and byte-order marks are detected; duplicate column names are refused."""

from __future__ import annotations

import warnings

import pytest

from mmbench.errors import DataError
from mmbench.formats.spreadsheet import read_feature_table
from mmbench.formats.text_csv import TextEncodingWarning, decode_file, read_csv_frame

UTF8_LINE = "“Hi,” she said – it’s café time"
CP1252_LINE = "they’re here".encode("cp1252")


def _mixed(tmp_path):
    body = (
        b"Utterance,Emotion\n"
        + f'"{UTF8_LINE}",neu\n'.encode()
        + b'"'
        + CP1252_LINE
        + b'",hap\n'
        + "ok ✓,sad\n".encode()
    )
    path = tmp_path / "mixed.csv"
    path.write_bytes(body)
    return path


def test_one_cp1252_line_is_decoded_alone_with_one_warning_naming_it(tmp_path):
    path = _mixed(tmp_path)
    with pytest.warns(TextEncodingWarning, match=r"1 line\(s\) .* line\(s\) 3\b") as caught:
        frame = read_csv_frame(path)
    assert len([w for w in caught if w.category is TextEncodingWarning]) == 1
    assert frame["Utterance"].tolist() == [UTF8_LINE, "they’re here", "ok ✓"]  # no mojibake
    with pytest.raises(DataError, match=r"mixed\.csv: line 3 is not valid UTF-8 \(byte 0x92"):
        read_csv_frame(path, strict=True)


def test_utf16_with_and_without_bom_and_utf8_bom(tmp_path):
    text = "Utterance,Emotion\nhallo,neu\n"
    for name, data in (
        ("bom16.csv", text.encode("utf-16")),
        ("le16.csv", text.encode("utf-16-le")),
        ("bom8.csv", b"\xef\xbb\xbf" + text.encode()),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            frame = read_csv_frame(path)
        assert list(frame.columns) == ["Utterance", "Emotion"] and frame["Utterance"][0] == "hallo", name
    assert decode_file(tmp_path / "le16.csv").encoding == "utf-16-le"


def test_duplicate_column_names_are_refused_naming_the_column(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("Utterance,Emotion,Speaker,Emotion\nhi,neu,A,hap\n")
    with pytest.raises(DataError, match=r"column 'Emotion': column 'Emotion' appears more than once"):
        read_csv_frame(path)


def test_feature_sheet_with_a_cp1252_line_warns_every_read_and_strict_refuses(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_bytes(b'Utterance,Emotion,V1\n"caf\xe9",neu,"[1, 2]"\nok,hap,"[3, 4]"\n')
    for _ in range(2):  # never cached, so the warning is not lost on the second read
        with pytest.warns(TextEncodingWarning, match="line\\(s\\) 2"):
            table = read_feature_table(path, ["V1"], ["Utterance", "Emotion"])
    assert table.texts["Utterance"] == ["café", "ok"]
    with pytest.raises(DataError, match="line 2 is not valid UTF-8"):
        read_feature_table(path, ["V1"], ["Utterance", "Emotion"], strict_encoding=True)
