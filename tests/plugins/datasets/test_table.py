"""``table``: EmoryNLP-style CSVs and plain feature tables run with options only, no code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmbench.errors import DataError, UsageError
from tests.plugins.datasets.test_datasets_iemocap_meld import cli, load

EMORY = ["Joyful", "Peaceful", "Powerful", "Scared", "Mad", "Sad", "Neutral"]
WORDS = dict(zip(EMORY, ["yay", "calm", "strong", "eek", "grr", "sob", "ok"], strict=True))
EMORY_OPTIONS = [
    "data.label_column=Emotion",
    "data.text_columns=[Utterance]",
    "data.dialogue_columns=[Season, Episode, Scene_ID]",
    "data.speaker_column=Speaker",
    "data.position_column=Utterance_ID",
    f"data.labels=[{', '.join(EMORY)}]",
]


def emorynlp_folder(folder: Path, scenes: dict[str, int] | None = None) -> Path:
    """EmoryNLP's layout: emorynlp_{train,dev,test}_final.csv with its columns."""
    folder.mkdir(parents=True, exist_ok=True)
    scenes = scenes or {"train": 8, "dev": 3, "test": 3}
    for split, n in scenes.items():
        rows = []
        for scene in range(n):
            for utt in range(7):
                emo = EMORY[(scene + utt) % 7]
                rows.append(
                    {
                        "Utterance": f"{WORDS[emo]} {split} scene {scene} line {utt}",
                        "Speaker": ["['Monica Geller']", "['Joey Tribbiani']"][utt % 2],
                        "Emotion": emo,
                        "Scene_ID": scene + 1,
                        "Utterance_ID": utt,
                        "Season": 1 + (split == "test"),
                        "Episode": 2,
                        "Start_Time": "00:00:01,000",
                        "End_Time": "00:00:02,000",
                    }
                )
        pd.DataFrame(rows).to_csv(folder / f"emorynlp_{split}_final.csv", index=False)
    return folder


def test_emorynlp_csvs_run_with_options_only(tmp_path):
    folder = emorynlp_folder(tmp_path / "emorynlp")
    data = load("table", folder, *EMORY_OPTIONS)
    assert data.class_names == EMORY and data.split_counts() == {"train": 56, "dev": 21, "test": 21}
    assert data.groups["dialogue"][0] == "train:1_2_1" and data.positions[:3].tolist() == [0, 1, 2]
    assert data.groups["speaker"][1] == "['Joey Tribbiani']"
    out = tmp_path / "runs"
    code, text = cli(
        "run", "--dataset", "table", "--data", str(folder), "--out", str(out), "--fusion", "unimodal",
        "--seeds", "0", "--max-epochs", "2", "--device", "cpu", "--encoder", "text=tfidf",
        "--set", "encoders.text.n_components=8", *[a for o in EMORY_OPTIONS for a in ("--set", o)],
    )  # fmt: skip
    assert code == 0, text
    record = json.loads(next(p for p in out.glob("table__*.json") if "predictions" not in p.name).read_text())
    assert (record["n_train"], record["n_dev"], record["n_test"]) == (56, 21, 21)
    assert record["protocol"]["data"]["label_column"] == "Emotion"


def test_labels_declared_or_taken_from_train(tmp_path):
    folder = emorynlp_folder(tmp_path / "e")
    dev = pd.read_csv(folder / "emorynlp_dev_final.csv")
    dev.loc[4, "Emotion"] = "Bored"
    dev.to_csv(folder / "emorynlp_dev_final.csv", index=False)
    with pytest.raises(DataError, match=r"emorynlp_dev_final\.csv, row 6, column 'Emotion': label 'Bored'"):
        load("table", folder, *EMORY_OPTIONS)
    with pytest.raises(DataError, match="not one of the train split's labels"):
        load("table", folder, "data.label_column=Emotion", "data.text_columns=[Utterance]")
    with pytest.raises(UsageError, match="needs data.label_column"):
        load("table", folder, "data.text_columns=[Utterance]")


def feature_table(path: Path, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    frame = pd.DataFrame(
        {
            "label": [["pos", "neg", "neu"][k] for k in y],
            "f1": rng.normal(size=n) + y,
            "f2": rng.normal(size=n),
            "vec": ["[" + ", ".join(f"{v:.5f}" for v in rng.normal(size=4) + k) + "]" for k in y],
            "split": np.where(np.arange(n) < 36, "train", np.where(np.arange(n) < 48, "validation", "test")),
        }
    )
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".xlsx", ".parquet"])
def test_one_file_with_a_split_column_and_feature_modalities(tmp_path, suffix):
    frame = feature_table(tmp_path)
    path = tmp_path / f"table{suffix}"
    if suffix == ".xlsx":
        frame.to_excel(path, index=False)
    elif suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="pyarrow (parquet) is an optional extra")
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    data = load("table", path, "data.label_column=label", "data.feature_columns={a: [f1, f2], b: [vec]}")
    assert data.class_names == ["neg", "neu", "pos"] and data.split_counts() == {
        "train": 36,
        "dev": 12,
        "test": 12,
    }
    assert {m: data.concatenated(m).shape[1] for m in data.modalities} == {"a": 2, "b": 4}
    np.testing.assert_allclose(data.modalities["a"]["f1"][:, 0], frame["f1"].to_numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    ("value", "fragment"), [("1e30", "beyond"), ("inf", "not finite"), ("abc", "not a number")]
)
def test_extreme_or_bad_values_are_refused_naming_file_row_column(tmp_path, value, fragment):
    frame = feature_table(tmp_path).astype({"f2": object})
    frame.loc[7, "f2"] = value
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"t\.csv, row 9, column 'f2': .*{fragment}"):
        load("table", path, "data.label_column=label", "data.feature_columns=[f1, f2]")
