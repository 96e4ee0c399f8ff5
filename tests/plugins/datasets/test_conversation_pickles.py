"""The field's dialogue pickles, written here in their exact layouts and read through the
restricted unpickler: COSMIC sentence and RoBERTa pickles (IEMOCAP, MELD), the DialogueRNN /
M3Net / MMGCN feature pickles (audio 1,582-d, visual 342-d), MELD's merged 1,152-dialogue
train+dev layout; plus IEMOCAP's default dev (COSMIC's 12 dialogues), class merges, text-only sheets.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from mmbench.errors import DataError, UsageError
from mmbench.plugins.datasets.emotions import DatasetWarning
from mmbench.plugins.datasets.iemocap import COSMIC_DEV
from tests.plugins.datasets.real_data import shared_data
from tests.plugins.datasets.test_datasets_iemocap_meld import iemocap_frame, load, write_sheet

RNG = np.random.default_rng(5)


def _dump(path: Path, obj: object) -> Path:
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=2)
    return path


def iemocap_dialogues(extra_per_session: int = 2) -> tuple[list[str], list[str], list[str]]:
    """COSMIC's 12 dev dialogues, a few train dialogues per session 1-4, and session 5 test ones."""
    train = [f"Ses0{s}F_impro9{k}" for s in range(1, 5) for k in range(extra_per_session)]
    test = [f"Ses05{'FM'[k % 2]}_impro0{k}" for k in range(3)]
    return train, list(COSMIC_DEV), test


def iemocap_cosmic(path: Path, roberta_dim: int | None = None) -> Path:
    """``speakers, labels, sentences, trainIds, testIds, validIds`` (6) or with roberta1-4 (10)."""
    train, valid, test = iemocap_dialogues()
    speakers, labels, sentences, roberta = {}, {}, {}, [{}, {}, {}, {}]
    for d in [*train, *valid, *test]:
        lab = [int(x) for x in RNG.integers(0, 6, size=5)]
        speakers[d] = ["M", "F", "M", "F", "M"]
        labels[d] = lab
        sentences[d] = [f"word{k} in {d} turn {j}" for j, k in enumerate(lab)]
        for r in roberta:
            r[d] = (np.eye(6)[lab] @ RNG.normal(size=(6, roberta_dim or 6))).astype(np.float32)
    if roberta_dim is None:
        return _dump(path, [speakers, labels, sentences, train, test, valid])
    return _dump(path, [speakers, labels, *roberta, sentences, train, test, valid])


def test_iemocap_cosmic_sentence_pickle_uses_its_lists_as_given(tmp_path):
    data = load("iemocap", iemocap_cosmic(tmp_path / "iemocap.pkl"))
    train, valid, test = iemocap_dialogues()
    got = {s: set(data.groups["dialogue"][data.splits[s]]) for s in ("train", "dev", "test")}
    assert got == {"train": set(train), "dev": set(valid), "test": set(test)}
    assert data.meta["format"] == "COSMIC sentence pickle" and "as given" in data.meta["split_scheme"]
    assert list(data.raw) == ["text"] and not data.modalities  # text only: sentences to encode
    assert data.groups["speaker"][0].startswith("Ses0") and data.positions is not None


def test_iemocap_cosmic_roberta_pickle_averages_the_four_vectors(tmp_path):
    path = iemocap_cosmic(tmp_path / "iemocap_features_roberta.pkl", roberta_dim=16)
    data = load("iemocap", path)
    assert data.meta["format"] == "COSMIC RoBERTa pickle"
    assert list(data.modalities) == ["text"] and data.modalities["text"]["roberta"].shape[1] == 16
    raw = pickle.loads(path.read_bytes())
    first = raw[8][0]  # first train dialogue
    row = int(np.flatnonzero(data.groups["dialogue"] == first)[0])
    mean = np.mean([raw[k][first][0] for k in range(2, 6)], axis=0)
    np.testing.assert_allclose(data.modalities["text"]["roberta"][row], mean, rtol=1e-6)


def m3net_iemocap(path: Path, dialogues: list[str]) -> Path:
    """DialogueRNN names with M3Net/MMGCN widths: text 1,024, audio 1,582, visual 342."""
    ids, spk, lab, text, audio, visual, sent = {}, {}, {}, {}, {}, {}, {}
    for d in dialogues:
        n = 3
        ids[d] = [f"{d}_{'FM'[j % 2]}{j:03d}" for j in range(n)]
        spk[d] = ["F", "M", "F"]
        lab[d] = [int(x) for x in RNG.integers(0, 6, size=n)]
        text[d] = list(RNG.normal(size=(n, 1024)).astype(np.float32))
        audio[d] = list(RNG.normal(size=(n, 1582)).astype(np.float32))
        visual[d] = list(RNG.normal(size=(n, 342)).astype(np.float32))
        sent[d] = [f"s{j}" for j in range(n)]
    train = [d for d in dialogues if not d.startswith("Ses05")]
    test = [d for d in dialogues if d.startswith("Ses05")]
    return _dump(path, (ids, spk, lab, text, audio, visual, sent, train, test))


def test_m3net_feature_pickle_default_dev_is_cosmics_twelve_dialogues(tmp_path):
    train, valid, test = iemocap_dialogues()
    data = load("iemocap", m3net_iemocap(tmp_path / "IEMOCAP_features.pkl", [*train, *valid, *test]))
    assert {m: data.concatenated(m).shape[1] for m in data.modalities} == {
        "text": 1024,
        "audio": 1582,
        "visual": 342,
    }
    assert set(data.groups["dialogue"][data.splits["dev"]]) == set(COSMIC_DEV)
    assert "12 COSMIC validation dialogues" in data.meta["split_scheme"]
    hashed = load("iemocap", tmp_path / "IEMOCAP_features.pkl", "data.dev=hash")
    assert "blake2b" in hashed.meta["split_scheme"]
    assert set(hashed.groups["dialogue"][hashed.splits["dev"]]) != set(COSMIC_DEV)
    # without all twelve dialogues the hash-ranked dev is used, with a warning
    path = m3net_iemocap(tmp_path / "partial.pkl", [*train, *valid[:5], *test])
    with pytest.warns(DatasetWarning, match="7 of COSMIC's 12 validation dialogues are not in the file"):
        partial = load("iemocap", path)
    assert "blake2b" in partial.meta["split_scheme"]
    with pytest.raises(UsageError, match="data.dev must be cosmic"):
        load("iemocap", path, "data.dev=random")


def meld_cosmic(path: Path, roberta: bool = False) -> Path:
    """``speakers, emotion, sentiment, sentences, trainIds, testIds, validIds`` (7) / with roberta1-4 (11)."""
    train, valid, test = [0, 1, 2, 3, 4, 6], [5, 9], [7, 8]
    spk, emo, senti, sent, rob = {}, {}, {}, {}, [{}, {}, {}, {}]
    for d in [*train, *valid, *test]:
        spk[d] = [[1, 0, 0], [0, 1, 0]]
        emo[d] = [d % 7, (d + 2) % 7]
        senti[d] = [0, 1]
        sent[d] = [f"it\x92s line {d}", "ok"]
        for r in rob:
            r[d] = RNG.normal(size=(2, 8)).astype(np.float32)
    if roberta:
        return _dump(path, [spk, emo, senti, *rob, sent, train, test, valid])
    return _dump(path, [spk, emo, senti, sent, train, test, valid])


def test_meld_cosmic_pickles_use_their_lists_and_repair_cp1252_quotes(tmp_path):
    data = load(
        "meld",
        meld_cosmic(tmp_path / "meld.pkl"),
        "classes=[neutral, surprise, fear, sadness, joy, disgust, anger]",
    )
    assert {s: sorted(set(data.groups["dialogue"][data.splits[s]])) for s in ("train", "dev", "test")} == {
        "train": ["0", "1", "2", "3", "4", "6"],
        "dev": ["5", "9"],
        "test": ["7", "8"],
    }
    assert "it\u2019s line 0" in data.raw["text"]
    roberta = load(
        "meld",
        meld_cosmic(tmp_path / "meld_features_roberta.pkl", roberta=True),
        "classes=[neutral, surprise, fear, sadness, joy, disgust, anger]",
    )
    assert roberta.meta["format"] == "COSMIC RoBERTa pickle" and roberta.modalities["text"][
        "roberta"
    ].shape == (20, 8)
    assert roberta.groups["speaker"][1] == "0:spk1"


def meld_merged(path: Path, train_ids: list[int]) -> Path:
    """DialogueRNN MELD layout whose trainVid merges train and dev, one utterance each."""
    test_ids = list(range(1153, 1160))
    ids, spk, lab, text, audio, sent, senti = {}, {}, {}, {}, {}, {}, {}
    for d in [*train_ids, *test_ids]:
        ids[d], spk[d], lab[d], senti[d] = [0], [[1, 0]], [d % 7], [0]
        text[d], audio[d], sent[d] = [RNG.normal(size=4)], [RNG.normal(size=3)], [f"u{d}"]
    return _dump(path, (ids, spk, lab, text, audio, sent, train_ids, test_ids, senti))


def test_meld_1152_dialogue_layout_recovers_the_official_dev(tmp_path):
    merged = [d for d in range(1153) if d != 60]  # MELD's train has no dialogue 60
    data = load("meld", meld_merged(tmp_path / "MELD_features_raw.pkl", merged))
    assert sorted(int(d) for d in set(data.groups["dialogue"][data.splits["dev"]])) == list(range(1039, 1153))
    assert data.meta["split_scheme"].startswith("meld official")
    lost = [d for d in merged if d not in (1040, 1041)]
    with pytest.warns(DatasetWarning, match="it holds 112 of the 114 official dev ids 1039-1152"):
        load("meld", meld_merged(tmp_path / "lost.pkl", lost))


def test_iemocap_four_classes_merge_happy_and_excited(tmp_path):
    frame = iemocap_frame(dialogues_per_session=2, utterances=12)
    path = write_sheet(frame, tmp_path / "IEMOCAP.csv")
    data = load("iemocap", path, "classes=4")
    assert data.class_names == ["hap+exc", "sad", "neu", "ang"]
    six = load("iemocap", path)
    merged = {six.ids[i]: six.class_names[k] for i, k in enumerate(six.labels)}
    for uid, k in zip(data.ids, data.labels, strict=True):
        assert data.class_names[k] == ("hap+exc" if merged[uid] in ("hap", "exc") else merged[uid])
    assert "fru" not in data.class_names
    same = load("iemocap", path, "classes=[Happiness+Excited, Sad, Neutral, Angry]")
    assert same.class_names == data.class_names and (same.labels == data.labels).all()
    with pytest.raises(UsageError, match="'hap' is listed twice"):
        load("iemocap", path, "classes=[hap+exc, hap, sad]")


def test_text_only_iemocap_sheet(tmp_path):
    frame = iemocap_frame(dialogues_per_session=2, utterances=12)[["File Name", "Utterance", "Emotion"]]
    path = write_sheet(frame, tmp_path / "IEMOCAP.csv")
    data = load("iemocap", path)
    assert not data.modalities and list(data.raw) == ["text"]
    explicit = load("iemocap", path, "data.audio_columns=[]", "data.visual_columns=[]")
    assert explicit.fingerprint == data.fingerprint
    # a sheet with some feature columns but not the required ones is still an error
    with pytest.raises(DataError, match="missing column 'V3'"):
        load("iemocap", write_sheet(iemocap_frame(1, 12).drop(columns=["V3"]), tmp_path / "partial.csv"))


COSMIC = shared_data("cosmic")


@pytest.mark.skipif(COSMIC is None, reason="COSMIC's pickles (../shared/data/cosmic) not present")
def test_real_cosmic_iemocap_and_meld_pickles():
    iemocap = load("iemocap", COSMIC / "iemocap.pkl")
    dialogues = {s: len(set(iemocap.groups["dialogue"][iemocap.splits[s]])) for s in ("train", "dev", "test")}
    assert dialogues == {"train": 108, "dev": 12, "test": 31} and len(iemocap.splits["test"]) == 1623
    meld = load("meld", COSMIC / "meld.pkl")
    assert meld.split_counts() == {"train": 9989, "dev": 1109, "test": 2610}
