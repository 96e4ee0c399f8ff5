"""Extreme values refused naming where they are; train-only standardisation; MELD CSVs with a stray
cp1252 byte keep their other characters."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from mmbench.errors import DataError
from mmbench.formats.text_csv import TextEncodingWarning
from tests.plugins.datasets.test_datasets_iemocap_meld import (
    iemocap_frame,
    iemocap_pickle,
    load,
    meld_csv_folder,
    write_sheet,
)


def test_pickle_value_beyond_the_limit_is_refused_naming_dialogue_and_utterance(tmp_path):
    path = iemocap_pickle(tmp_path / "IEMOCAP_features.pkl")
    obj = list(pickle.loads(path.read_bytes()))
    obj[4]["Ses01F_impro01"][3] = obj[4]["Ses01F_impro01"][3].copy()
    obj[4]["Ses01F_impro01"][3][2] = 1e30  # audio
    path.write_bytes(pickle.dumps(tuple(obj)))
    with pytest.raises(DataError, match=r"'Ses01F_impro01', utterance 3: videoAudio value 3 is .*beyond"):
        load("iemocap", path)


def test_sheet_value_beyond_the_limit_names_row_and_column(tmp_path):
    frame = iemocap_frame(dialogues_per_session=2, utterances=12)
    frame.loc[5, "V3"] = "[1e30, 0.5, 0.25]"
    with pytest.raises(DataError, match=r"row 7, column 'V3': value 1 \(1e30\) is beyond"):
        load("iemocap", write_sheet(frame, tmp_path / "IEMOCAP.csv"))


def test_standardize_uses_train_statistics_only(tmp_path):
    path = write_sheet(iemocap_frame(dialogues_per_session=2, utterances=12), tmp_path / "IEMOCAP.csv")
    plain = load("iemocap", path)
    z = load("iemocap", path, "data.standardize=true")
    train = z.splits["train"]
    x, raw = z.modalities["audio"]["V1"], plain.modalities["audio"]["V1"]
    np.testing.assert_allclose(x[train].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x[train].std(axis=0), 1, atol=1e-4)
    mean, std = raw[train].mean(axis=0), raw[train].std(axis=0)
    test = z.splits["test"]
    np.testing.assert_allclose(x[test], (raw[test] - mean) / std, rtol=1e-4, atol=1e-5)
    assert z.fingerprint != plain.fingerprint and z.meta["standardized"]


def test_meld_csv_with_one_cp1252_byte_keeps_the_other_rows_utf8(tmp_path):
    folder = meld_csv_folder(tmp_path / "csv")
    test = pd.read_csv(folder / "test_sent_emo.csv")
    test.loc[0, "Utterance"] = "it’s the café"  # UTF-8 on its own line
    test.to_csv(folder / "test_sent_emo.csv", index=False)
    raw = (folder / "test_sent_emo.csv").read_bytes().replace(b"yay test 0 line 1", b"they\x92re here", 1)
    (folder / "test_sent_emo.csv").write_bytes(raw)
    with pytest.warns(TextEncodingWarning, match=r"test_sent_emo\.csv: 1 line\(s\) .* line\(s\) 3\b"):
        data = load("meld", folder)
    texts = set(data.raw["text"])
    assert "it’s the café" in texts and "they’re here" in texts
    with pytest.raises(DataError, match="line 3 is not valid UTF-8"):
        load("meld", folder, "data.encoding=strict")
