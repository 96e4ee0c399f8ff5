"""The duplicate guard: leaks (same id, same feature vector even after rounding) stop a run;
identical short texts across splits (natural repeats) are reported in the record, never refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmbench.errors import DataError
from mmbench.registry.manager import build_registry
from mmbench.runner.leakage import find_duplicates
from mmbench.runner.run import RunRequest, prepare
from mmbench.testing import example_data
from tests.plugins.datasets.real_data import shared_data
from tests.plugins.datasets.test_datasets_iemocap_meld import iemocap_frame, load, meld_csv_folder

REGISTRY = build_registry()[0]
TFIDF8 = ["encoders.text=tfidf", "encoders.text.n_components=8"]
VECTORS = ("V1", "V2", "V3", "V4", "A2")


def _digits(cell: str, fmt: str, scale: float = 1.0) -> str:
    values = [float(v) * scale for v in cell.strip("[]").split(",")]
    return "[" + ", ".join(format(v, fmt) for v in values) + "]"


def rounded_oversampled_sheet(tmp_path: Path, n_copies: int = 12) -> tuple[Path, dict[str, str]]:
    """Rows of sessions 1-4 copied under new session-5 ids and written with 5 significant digits
    (the originals keep 9): no copy is byte-identical to its source."""
    frame = iemocap_frame(dialogues_per_session=4, utterances=12)
    for col in VECTORS:
        frame[col] = [_digits(c, ".9g", 1.2345678) for c in frame[col]]
    sources = frame[frame["File Name"].str.startswith("Ses02")].head(n_copies).copy()
    copies = sources.copy()
    copies["File Name"] = [f"Ses05F_impro09_F{100 + i:03d}" for i in range(n_copies)]
    for col in VECTORS:
        copies[col] = [_digits(c, ".5g") for c in copies[col]]
    path = tmp_path / "over.csv"
    pd.concat([frame, copies], ignore_index=True).to_csv(path, index=False)
    return path, dict(zip(copies["File Name"], sources["File Name"], strict=True))


def test_rounded_oversampled_sheet_is_refused_naming_the_copies(tmp_path):
    path, copied = rounded_oversampled_sheet(tmp_path)
    req = RunRequest(dataset="iemocap", data_path=path, fusions=[], overrides=TFIDF8)
    with pytest.raises(DataError) as err:
        prepare(req, REGISTRY)
    message = str(err.value)
    pairs = re.findall(r"(?:train|dev) (\S+) = test (\S+?)[,)]", message)
    assert pairs and all(copied[copy] == src for src, copy in pairs), message
    assert "by features" in message and "allow_duplicates" in message
    # accepting the leak is possible, and recorded
    ok = prepare(
        RunRequest(
            dataset="iemocap", data_path=path, fusions=[], overrides=[*TFIDF8, "data.allow_duplicates=true"]
        ),
        REGISTRY,
    )
    dup = ok.duplicates
    assert dup["accepted"] is True
    kept = [c for c in copied if c in set(ok.data.ids)]  # rows labelled xxx/sur/fea are dropped
    assert kept
    assert dup["across_splits"]["train/test"] + dup["across_splits"]["dev/test"] == len(kept)


def test_different_recordings_of_the_same_text_are_not_leaks(tmp_path):
    frame = iemocap_frame(dialogues_per_session=4, utterances=12)
    frame["Utterance"] = ["Okay." if i % 3 == 0 else t for i, t in enumerate(frame["Utterance"])]
    path = tmp_path / "IEMOCAP.csv"
    frame.to_csv(path, index=False)
    prep = prepare(RunRequest(dataset="iemocap", data_path=path, fusions=[], overrides=TFIDF8), REGISTRY)
    dup = prep.duplicates
    assert dup["across_splits"] == {"train/dev": 0, "train/test": 0, "dev/test": 0}
    assert dup["evidence"] == ["audio", "visual"] and dup["accepted"] is False
    repeats = dup["natural_repeats"]
    assert repeats["examples"][0][0] == "Okay." and repeats["rows"] > 0
    json.dumps(dup)  # the record keeps it as JSON


def test_meld_csvs_with_repeated_short_texts_pass_and_report_the_repeats(tmp_path):
    folder = meld_csv_folder(tmp_path / "csv")
    for split in ("train", "dev", "test"):
        f = pd.read_csv(folder / f"{split}_sent_emo.csv")
        f.loc[f.index % 4 == 0, "Utterance"] = "Hey!"
        f.to_csv(folder / f"{split}_sent_emo.csv", index=False)
    prep = prepare(RunRequest(dataset="meld", data_path=folder, fusions=[], overrides=TFIDF8), REGISTRY)
    repeats = prep.duplicates["natural_repeats"]
    n_hey = {
        s: int((pd.read_csv(folder / f"{s}_sent_emo.csv")["Utterance"] == "Hey!").sum())
        for s in ("train", "dev", "test")
    }
    assert repeats["examples"][0] == ["Hey!", n_hey]
    assert repeats["rows"] == n_hey["dev"] + n_hey["test"]
    assert prep.duplicates["across_splits"]["train/test"] == 0 and prep.duplicates["evidence"] == []


def test_same_id_in_two_splits_is_a_leak_and_narrow_features_need_exact_equality():
    data = example_data(30)
    data.ids = [f"u{i}" for i in range(30)]
    data.ids[25] = "u3"
    rep = find_duplicates(data)
    assert rep.pairs["train/test"] == 1 and rep.by["train/test"] == {"id": 1, "features": 0}
    # audio is 6 numbers wide: a 0.5 % difference may be chance, only exact copies count
    data = example_data(30)
    audio = data.modalities["audio"]["A"]
    audio[26] = audio[2] * 1.005
    audio[27] = audio[4]
    rep = find_duplicates(data)
    assert rep.pairs["train/test"] == 1 and rep.examples["train/test"] == [(4, 27)]


def test_missing_features_are_no_evidence():
    data = example_data(30)
    audio = data.modalities["audio"]["A"]
    audio[[1, 2, 25]] = 0.0
    rep = find_duplicates(data)
    assert rep.total == 0 and rep.within["train"] == 0


@pytest.mark.skipif(shared_data("meld") is None, reason="real MELD CSVs (../shared/data/meld) not present")
def test_real_meld_official_split_passes_with_repeats_reported():
    data = load("meld", shared_data("meld"))
    rep = find_duplicates(data)
    assert rep.total == 0
    assert rep.repeats["rows"] > 100
    texts = [t for t, _ in rep.repeats["examples"]]
    assert any(t.rstrip(".!?").lower() in {"okay", "hey", "yeah", "oh", "what"} for t in texts), texts
    assert np.isfinite(rep.repeats["distinct"])
