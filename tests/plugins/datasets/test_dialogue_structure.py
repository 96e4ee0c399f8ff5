"""Every conversation dataset gives each utterance its dialogue, its speaker and its place in the dialogue.

``groups["dialogue"]`` (scoped by split where ids restart per split, as MELD's do),
``groups["speaker"]`` and ``MultimodalData.positions``, for every format of ``meld`` and ``iemocap``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmbench.plugins.datasets.dialogue_pickle import dialogue_positions, order_positions
from tests.plugins.datasets.real_data import shared_data
from tests.plugins.datasets.test_datasets_iemocap_meld import (
    MELD_WORDS,
    iemocap_frame,
    iemocap_pickle,
    load,
    meld_csv_folder,
    meld_pickle,
    write_sheet,
)

MELD_CSVS = shared_data("meld")


def _rows_of(data, dialogue: str) -> list[int]:
    return [int(i) for i in np.flatnonzero(data.groups["dialogue"] == dialogue)]


def test_order_and_explicit_positions():
    assert order_positions(["a", "b", "a", "a", "b"]).tolist() == [0, 0, 1, 2, 1]
    assert dialogue_positions(["a", "a", "b"], [3, 1, 0]).tolist() == [3, 1, 0]
    # an explicit index repeated inside a dialogue cannot order it: the file order is used
    assert dialogue_positions(["a", "a", "b"], [1, 1, 0]).tolist() == [0, 1, 0]


def test_meld_csvs_dialogue_ids_are_scoped_by_split_and_positions_are_utterance_ids(tmp_path):
    folder = meld_csv_folder(tmp_path / "csv")
    # shuffle the rows of the dev file: positions come from Utterance_ID, not the file order
    dev = pd.read_csv(folder / "dev_sent_emo.csv").sample(frac=1.0, random_state=0)
    dev.to_csv(folder / "dev_sent_emo.csv", index=False)
    data = load("meld", folder)
    # Dialogue_ID 0 exists in every split; each is its own dialogue
    assert {"train:0", "dev:0", "test:0"} <= set(data.groups["dialogue"].tolist())
    for split in ("train", "dev", "test"):
        assert {d.split(":")[0] for d in data.groups["dialogue"][data.splits[split]]} == {split}
    rows = _rows_of(data, "dev:1")
    got = sorted((int(data.positions[i]), data.ids[i]) for i in rows)
    assert got == [(u, f"dev_dia1_utt{u}") for u in range(7)]
    assert data.groups["speaker"][rows].tolist() == [
        ["Ross", "Rachel"][int(p) % 2] for p in data.positions[rows]
    ]
    assert data.validate().positions is not None


def test_meld_sheet_positions_from_file_names_or_file_order(tmp_path):
    frame = iemocap_frame(dialogues_per_session=2, utterances=6).drop(columns=["File Name"])
    frame["Emotion"] = [list(MELD_WORDS)[i % 7] for i in range(len(frame))]
    frame["Split"] = np.where(frame.index < 36, "train", np.where(frame.index < 48, "dev", "test"))
    frame["Dialogue_ID"] = frame.index // 6
    frame["Speaker"] = ["Joey", "Monica", "Ross"] * (len(frame) // 3)
    data = load("meld", write_sheet(frame, tmp_path / "MELD.csv"))
    assert data.positions.tolist() == [i % 6 for i in range(len(frame))]
    assert data.groups["dialogue"][0] == "train:0" and data.groups["speaker"][1] == "Monica"
    # File Name dia{D}_utt{U}: the utterance number is the position, whatever the row order
    named = frame.drop(columns=["Dialogue_ID"]).copy()
    named["File Name"] = [f"dia{i // 6}_utt{5 - i % 6}" for i in range(len(frame))]
    data = load("meld", write_sheet(named, tmp_path / "named.csv"))
    assert data.positions.tolist() == [5 - i % 6 for i in range(len(frame))]
    assert data.groups["dialogue"][7] == "train:1"


def test_meld_pickle_dialogue_speaker_position(tmp_path):
    data = load("meld", meld_pickle(tmp_path / "MELD_features_raw.pkl", n_train=60, n_test=20))
    rows = _rows_of(data, "7")
    assert data.positions[rows].tolist() == [0, 1]
    assert data.groups["speaker"][rows].tolist() == ["7:spk0", "7:spk1"]


def test_iemocap_sheet_positions_follow_the_file_order_within_each_dialogue(tmp_path):
    frame = iemocap_frame(dialogues_per_session=2, utterances=6)
    # interleave two dialogues: the position counts each dialogue's own rows
    frame = pd.concat([frame.iloc[0:6:2], frame.iloc[6:12], frame.iloc[1:6:2], frame.iloc[12:]])
    data = load("iemocap", write_sheet(frame, tmp_path / "IEMOCAP.csv"))
    dialogue = "Ses01F_impro01"
    rows = _rows_of(data, dialogue)
    kept_ids = [data.ids[i] for i in rows]
    order = [u for u in frame["File Name"] if u.startswith(dialogue) and u in kept_ids]
    assert [kept_ids[int(np.argsort(data.positions[rows])[k])] for k in range(len(rows))] == order
    assert set(data.groups["speaker"][rows].tolist()) == {"Ses01F", "Ses01M"}
    assert data.groups["session"][rows[0]] == "Ses01"


def test_iemocap_pickle_positions_are_the_list_order(tmp_path):
    data = load("iemocap", iemocap_pickle(tmp_path / "IEMOCAP_features.pkl"))
    rows = _rows_of(data, "Ses02F_impro01")
    assert [data.ids[i] for i in rows] == [f"Ses02F_impro01_{'FM'[u % 2]}{u:03d}" for u in range(8)]
    assert data.positions[rows].tolist() == list(range(8))
    assert data.groups["speaker"][rows].tolist() == [f"Ses02{'FM'[u % 2]}" for u in range(8)]


def test_dropped_labels_leave_gaps_not_renumbered_positions(tmp_path):
    frame = iemocap_frame(dialogues_per_session=2, utterances=12)
    data = load("iemocap", write_sheet(frame, tmp_path / "IEMOCAP.csv"))
    rows = _rows_of(data, "Ses01F_impro01")
    # u=5 is labelled xxx (dropped), u=3 is sur/fea outside the 6-class set: positions keep gaps
    assert 5 not in data.positions[rows].tolist() and 6 in data.positions[rows].tolist()


@pytest.mark.skipif(MELD_CSVS is None, reason="real MELD CSVs (../shared/data/meld) not present")
def test_real_meld_csvs_positions_match_utterance_ids():
    data = load("meld", MELD_CSVS)
    assert data.split_counts() == {"train": 9989, "dev": 1109, "test": 2610}
    assert len(set(data.groups["dialogue"][data.splits["dev"]])) == 114
    frame = pd.read_csv(MELD_CSVS / "test_sent_emo.csv")
    offset = int(data.splits["test"][0])
    assert data.positions[offset : offset + 5].tolist() == frame["Utterance_ID"][:5].tolist()
    assert data.groups["speaker"][offset] == frame["Speaker"][0]
