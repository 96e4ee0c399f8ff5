"""``iemocap`` and ``meld``: formats, leak-free splits, class sets, malformed input, unsafe pickles.

Every file is written here in the seed formats (reference spreadsheet, DialogueRNN pickle, MELD's
official CSVs), small enough that the whole module runs in seconds.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import DataError, UsageError
from mmbench.plugins.datasets.emotions import (
    IEMOCAP_6,
    MELD_7,
    DatasetWarning,
    canonical_label,
    encode_labels,
    resolve_class_set,
)
from mmbench.protocol import load_protocol
from mmbench.records import load_records
from mmbench.registry.manager import build_registry
from mmbench.testing import DatasetCase, DatasetConformance

REGISTRY, _ = build_registry()
runner = CliRunner()
CODES8 = ["hap", "sad", "neu", "ang", "exc", "fru", "sur", "fea"]
SPELLINGS = {
    "hap": ["Happiness", "happy", "hap", "Joy"],
    "sad": ["Sadness", "sad"],
    "neu": ["Neutral", "neu"],
    "ang": ["Anger", "angry"],
    "exc": ["Excited", "exc"],
    "fru": ["Frustration", "fru"],
    "sur": ["Surprise"],
    "fea": ["Fear"],
    "xxx": ["xxx"],
}
WORDS = {c: f"{c}word {c}ish" for c in CODES8}
FAST = [
    "--fusion",
    "concat",
    "--seeds",
    "0",
    "--max-epochs",
    "2",
    "--device",
    "cpu",
    "--set",
    "encoders.text=tfidf",
    "--set",
    "encoders.text.n_components=8",
]


# ------------------------------------------------------------------------------ file writers
def _cell(vec: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.4f}" for x in vec) + "]"


def iemocap_frame(dialogues_per_session: int = 4, utterances: int = 12, seed: int = 0) -> pd.DataFrame:
    """A reference-format IEMOCAP sheet: 5 sessions, class signal in V1 (8 classes) and A2 (6)."""
    rng = np.random.default_rng(seed)
    rows = []
    for ses in range(1, 6):
        for d in range(dialogues_per_session):
            kind = f"impro{d + 1:02d}" if d % 2 == 0 else f"script{d:02d}_1"
            dialogue = f"Ses{ses:02d}{'FM'[d % 2]}_{kind}"
            for u in range(utterances):
                k = (ses * 7 + d * 5 + u) % 6
                code = CODES8[k]
                if u % 11 == 5:
                    code = "xxx"
                elif u % 7 == 3:
                    code = "sur" if u % 2 else "fea"
                spelling = SPELLINGS[code][(u + d) % len(SPELLINGS[code])]
                idx = CODES8.index(code) if code in CODES8 else None
                v1 = rng.normal(size=8) * 0.5
                a2 = rng.normal(size=6) * 0.5
                if idx is not None:
                    v1[idx] += 3.0
                    a2[idx % 6] += 2.0
                rows.append(
                    {
                        "File Name": f"{dialogue}_{'FM'[u % 2]}{u:03d}",
                        "Utterance": f"{WORDS.get(code, 'hmm')} turn {u} of {dialogue}",
                        "V1": _cell(v1),
                        "V2": _cell(rng.normal(size=3)),
                        "V3": _cell(rng.normal(size=3)),
                        "V4": _cell(rng.normal(size=3)),
                        "A2": _cell(a2),
                        "Emotion": spelling,
                    }
                )
    return pd.DataFrame(rows)


def write_sheet(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def iemocap_pickle(path: Path, payload: object | None = None) -> Path:
    """The DialogueRNN layout written with plain pickle.dump of dicts and numpy arrays."""
    rng = np.random.default_rng(1)
    ids, speakers, labels, text, audio, visual, sentences = {}, {}, {}, {}, {}, {}, {}
    train, test = [], []
    for ses in range(1, 6):
        for d in range(4):
            vid = f"Ses{ses:02d}{'FM'[d % 2]}_impro{d + 1:02d}"
            n = 8
            lab = [(ses + d + u) % 6 for u in range(n)]
            ids[vid] = [f"{vid}_{'FM'[u % 2]}{u:03d}" for u in range(n)]
            speakers[vid] = ["FM"[u % 2] for u in range(n)]
            labels[vid] = lab
            text[vid] = [np.eye(6)[k] * 2 + rng.normal(size=6) * 0.3 for k in lab]
            audio[vid] = [rng.normal(size=5) for _ in lab]
            visual[vid] = [rng.normal(size=4) for _ in lab]
            sentences[vid] = [f"word{k} sentence {u}" for u, k in enumerate(lab)]
            (test if ses == 5 else train).append(vid)
    obj = (ids, speakers, labels, text, audio, visual, sentences, set(train), set(test))
    if payload is not None:
        obj = (*obj[:-1], payload)
    with path.open("wb") as fh:
        pickle.dump(obj, fh)
    return path


MELD_WORDS = {
    "neutral": "ok",
    "joy": "yay",
    "surprise": "whoa",
    "anger": "grr",
    "sadness": "sob",
    "disgust": "eww",
    "fear": "eek",
}


def meld_csv_folder(folder: Path, dialogues: dict[str, int] | None = None) -> Path:
    """MELD's three official CSVs with their real columns (a few dialogues each)."""
    folder.mkdir(parents=True, exist_ok=True)
    dialogues = dialogues or {"train": 14, "dev": 4, "test": 5}
    names = list(MELD_WORDS)
    sr = 1
    for split, n_dia in dialogues.items():
        rows = []
        for dia in range(n_dia):
            for utt in range(7):
                emo = names[(dia + utt) % 7]
                rows.append(
                    {
                        "Sr No.": sr,
                        "Utterance": f"{MELD_WORDS[emo]} {split} {dia} line {utt}",
                        "Speaker": ["Ross", "Rachel"][utt % 2],
                        "Emotion": emo.capitalize() if utt % 3 == 0 else emo,
                        "Sentiment": "neutral",
                        "Dialogue_ID": dia,
                        "Utterance_ID": utt,
                        "Season": 1,
                        "Episode": 1,
                        "StartTime": "00:00:01,000",
                        "EndTime": "00:00:02,000",
                    }
                )
                sr += 1
        pd.DataFrame(rows).to_csv(folder / f"{split}_sent_emo.csv", index=False)
    return folder


def meld_pickle(path: Path, n_train: int = 1153, n_test: int = 280) -> Path:
    """MELD_features_raw.pkl layout: one utterance per dialogue keeps 1,433 dialogues small."""
    rng = np.random.default_rng(2)
    ids, spk, lab, text, audio, sent, senti = {}, {}, {}, {}, {}, {}, {}
    for vid in range(n_train + n_test):
        k = [vid % 7, (vid + 3) % 7]
        ids[vid] = [0, 1]
        spk[vid] = [[1, 0, 0], [0, 1, 0]]
        lab[vid] = k
        text[vid] = [np.eye(7)[j] + rng.normal(size=7) * 0.1 for j in k]
        audio[vid] = [rng.normal(size=3) for _ in k]
        sent[vid] = [f"w{j} {vid}" for j in k]
        senti[vid] = [0, 0]
    obj = (
        ids,
        spk,
        lab,
        text,
        audio,
        sent,
        list(range(n_train)),
        list(range(n_train, n_train + n_test)),
        senti,
    )
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=2)
    return path


def load(name: str, path: Path | None, *overrides: str):
    """Load like `mmbench run` does: the dataset protocol's data options, then validate."""
    plugin = REGISTRY.create("dataset", name)
    protocol = load_protocol(name, None, None, list(overrides))
    options = dict(protocol["data"])
    options.pop("allow_duplicates", None)
    if protocol.get("classes") is not None:
        options["classes"] = protocol["classes"]
    return plugin.load(path, options).validate()


def cli(*args: str):
    """Exit code and output with all white space removed (the console wraps long paths)."""
    result = runner.invoke(app, list(args))
    text = "".join(((result.stdout or "") + (getattr(result, "stderr", "") or "")).split())
    return result.exit_code, text


def has(text: str, fragment: str) -> bool:
    return "".join(fragment.split()).lower() in text.lower()


def split_groups(data, kind: str) -> dict[str, set]:
    return {s: set(data.groups[kind][data.splits[s]].tolist()) for s in ("train", "dev", "test")}


# -------------------------------------------------------------------------------- labels
def test_label_spellings_and_class_sets():
    for spelling, code in [
        ("Happiness", "hap"),
        ("happy", "hap"),
        ("HAP ", "hap"),
        ("Joy", "hap"),
        ("Frustrated", "fru"),
        ("neutral", "neu"),
        ("Anger", "ang"),
        ("xxx", "xxx"),
    ]:
        assert canonical_label(spelling) == code
    assert canonical_label("xyz") is None and canonical_label("") is None
    assert resolve_class_set("iemocap", None) == IEMOCAP_6
    assert resolve_class_set("iemocap", 8).names == tuple(CODES8)
    assert resolve_class_set("meld", None) == MELD_7
    assert MELD_7.names == ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
    assert resolve_class_set("iemocap", ["happy", "Sadness"]).codes == ("hap", "sad")
    with pytest.raises(UsageError, match="classes=7"):
        resolve_class_set("iemocap", 7)
    labels, dropped = encode_labels(
        ["Joy", "xxx", "Surprise", "Sad"], IEMOCAP_6, path="f.csv", rows=[2, 3, 4, 5]
    )
    assert labels.tolist() == [0, -1, -1, 1] and dropped == {"sur": 1, "xxx": 1}
    with pytest.raises(DataError, match=r"f\.csv, row 3, column 'Emotion': unknown label 'Hapy'.*happiness"):
        encode_labels(["hap", "Hapy"], IEMOCAP_6, path="f.csv", rows=[2, 3])
    with pytest.raises(DataError, match=r"row 2, column 'Emotion': empty label"):
        encode_labels([" "], IEMOCAP_6, path="f.csv", rows=[2])
    meld, meld_dropped = encode_labels(["JOY", "Happiness", "frustration"], MELD_7, path="m", rows=[2, 3, 4])
    assert meld.tolist() == [1, 1, -1] and meld_dropped == {"fru": 1}


# ------------------------------------------------------------------------------- iemocap
def test_iemocap_sheet_split_is_session5_and_dialogue_grouped(tmp_path):
    frame = iemocap_frame()
    path = write_sheet(frame, tmp_path / "Filtered_IMOCAP.csv")
    with pytest.warns(DatasetWarning, match="dropped"):
        data = load("iemocap", path)
    assert data.class_names == ["hap", "sad", "neu", "ang", "exc", "fru"]
    sessions = split_groups(data, "session")
    assert sessions["test"] == {"Ses05"}
    assert "Ses05" not in sessions["train"] | sessions["dev"]
    assert all(data.ids[i].startswith("Ses05") for i in data.splits["test"])
    assert sum(i.startswith("Ses05") for i in data.ids) == len(data.splits["test"])
    dialogues = split_groups(data, "dialogue")
    assert not (dialogues["train"] & dialogues["dev"]) and not (dialogues["dev"] & dialogues["test"])
    assert len(dialogues["dev"]) >= 4  # one held-out dialogue in each of sessions 1-4
    expected = frame["Emotion"].map(canonical_label).value_counts()
    assert data.meta["dropped_labels"] == {c: int(expected[c]) for c in ("fea", "sur", "xxx")}
    assert data.n == len(frame) - data.meta["dropped_rows"]
    assert set(data.modalities) == {"audio", "visual"} and list(data.modalities["audio"]) == [
        "V1",
        "V2",
        "V3",
        "V4",
    ]
    assert data.raw["text"][0].startswith(WORDS[data.class_names[data.labels[0]]])
    assert "Ses05" in data.meta["split_scheme"]
    # Same file, same split: the held-out dialogues depend on their ids only.
    again = load("iemocap", path)
    assert all(np.array_equal(data.splits[s], again.splits[s]) for s in data.splits)


def test_iemocap_eight_classes(tmp_path):
    path = write_sheet(iemocap_frame(), tmp_path / "s.csv")
    for option in ("data.classes=8", "classes=8"):
        data = load("iemocap", path, option)
        assert data.class_names == CODES8
        assert data.meta["dropped_labels"] == {"xxx": data.meta["dropped_rows"]}
        assert set(np.unique(data.labels[data.splits["train"]])) == set(range(8))


def test_iemocap_without_ids_is_refused_unless_a_random_split_is_accepted(tmp_path):
    from mmbench.runner.run import RunRequest, prepare

    frame = iemocap_frame()
    with_ids = write_sheet(frame, tmp_path / "ids.csv")
    without = write_sheet(frame.drop(columns=["File Name"]), tmp_path / "noids.csv")
    with pytest.raises(DataError, match=r"column 'File Name'.*Add a 'File Name' column.*data\.split=random"):
        load("iemocap", without)
    with pytest.warns(DatasetWarning, match="data.split=random"):
        data = load("iemocap", without, "data.split=random")
    assert "random" in data.meta["split_scheme"] and not data.groups
    overrides = ["encoders.text=tfidf", "encoders.text.n_components=8"]
    a = prepare(RunRequest(dataset="iemocap", data_path=with_ids, overrides=overrides), REGISTRY)
    b = prepare(
        RunRequest(dataset="iemocap", data_path=without, overrides=[*overrides, "data.split=random"]),
        REGISTRY,
    )
    assert a.protocol["split"] != b.protocol["split"]
    assert a.protocol_fingerprint != b.protocol_fingerprint


def test_iemocap_xlsx_end_to_end(tmp_path):
    frame = iemocap_frame().rename(columns={"File Name": "File_name"})
    path = write_sheet(frame, tmp_path / "Filtered_IMOCAP.xlsx")
    out = tmp_path / "runs"
    code, text = cli("run", "--dataset", "iemocap", "--data", str(path), "--out", str(out), *FAST)
    assert code == 0, text
    (record,) = load_records(out)
    assert record["status"] == "ok"
    assert record["class_names"] == list(IEMOCAP_6.names)
    n_ses5 = sum(
        frame["File_name"].str.startswith("Ses05")
        & frame["Emotion"].map(canonical_label).isin(IEMOCAP_6.codes)
    )
    assert record["n_test"] == n_ses5
    assert "Ses05" in record["protocol"]["split"]
    assert record["encoders"]["text"]["name"] == "tfidf"
    assert set(record["metrics"]["test"]) >= {"accuracy", "weighted_f1"}


def test_iemocap_pickle(tmp_path):
    path = iemocap_pickle(tmp_path / "IEMOCAP_features.pkl")
    data = load("iemocap", tmp_path)  # a folder: the known file name is found inside
    assert data.meta["format"] == "DialogueRNN pickle"
    order = list(dict.fromkeys(data.groups["dialogue"]))
    assert order == sorted(order)  # trainVid/testVid are sets: rows in sorted dialogue order
    assert split_groups(data, "session")["test"] == {"Ses05"}
    dialogues = split_groups(data, "dialogue")
    assert not (dialogues["train"] & dialogues["dev"]) and dialogues["dev"]
    assert {m: list(s) for m, s in data.modalities.items()} == {
        "text": ["videoText"],
        "audio": ["videoAudio"],
        "visual": ["videoVisual"],
    }
    assert data.raw["text"][0].startswith("word")
    assert data.groups["speaker"][0] in {"Ses01F", "Ses01M"}
    with pytest.raises(UsageError, match="only the labels"):
        load("iemocap", path, "data.classes=8")
    out = tmp_path / "runs"
    code, text = cli(
        "run",
        "--dataset",
        "iemocap",
        "--data",
        str(path),
        "--out",
        str(out),
        "--encoder",
        "text=precomputed",
        *FAST[:-2],
    )
    assert code == 0, text
    assert [r["status"] for r in load_records(out)] == ["ok"]


def test_pickle_with_code_payload_is_refused(tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = iemocap_pickle(tmp_path / "IEMOCAP_features.pkl", payload=Payload())
    code, text = cli("run", "--dataset", "iemocap", "--data", str(path), "--out", str(tmp_path / "o"), *FAST)
    assert code == 2, text
    assert "Traceback" not in text and has(text, "IEMOCAP_features.pkl")
    assert not marker.exists()


# ------------------------------------------------------------------------ malformed input
def _malformed(kind: str, frame: pd.DataFrame) -> tuple[pd.DataFrame | None, list[str]]:
    """A broken copy of the sheet and fragments its error message must contain."""
    frame = frame.copy()
    if kind == "unknown label":
        frame.loc[7, "Emotion"] = "Hapy"
        return frame, ["row 9", "'Emotion'", "Hapy", "happiness"]
    if kind == "empty label":
        frame.loc[3, "Emotion"] = ""
        return frame, ["row 5", "'Emotion'"]
    if kind == "missing column":
        return frame.drop(columns=["V3"]), ["V3"]
    if kind == "ragged vector":
        frame.loc[10, "V1"] = "[0.1, 0.2]"
        return frame, ["row 12", "V1"]
    if kind == "nan":
        frame.loc[20, "A2"] = "[nan, 0.1, 0.2, 0.3, 0.4, 0.5]"
        return frame, ["row 22", "A2"]
    if kind == "unparsable cell":
        frame.loc[4, "V4"] = "[0.1, abc, 0.3]"
        return frame, ["row 6", "V4"]
    if kind == "bad id":
        frame.loc[6, "File Name"] = "Session1_dialogue"
        return frame, ["row 8", "File Name", "Ses01F_impro01_F000"]
    return None, ["empty"]


@pytest.mark.parametrize(
    "kind",
    [
        "unknown label",
        "empty label",
        "missing column",
        "ragged vector",
        "nan",
        "unparsable cell",
        "bad id",
        "empty",
    ],
)
def test_malformed_sheet_exits_2_naming_row_and_column(tmp_path, kind):
    frame, fragments = _malformed(kind, iemocap_frame(dialogues_per_session=2, utterances=6))
    path = tmp_path / "bad.csv"
    if frame is None:
        path.write_text("")
    else:
        write_sheet(frame, path)
    code, text = cli("run", "--dataset", "iemocap", "--data", str(path), "--out", str(tmp_path / "o"), *FAST)
    assert code == 2, text
    assert "Traceback" not in text and has(text, "bad.csv")
    for fragment in fragments:
        assert has(text, fragment), (fragment, text)
    assert not (tmp_path / "o").exists()


def test_oversampled_sheet_is_stopped(tmp_path):
    """Copies of sessions 1-4 rows filed under session 5 ids: the duplicate guard stops the run."""
    frame = iemocap_frame()
    copies = frame[frame["File Name"].str.startswith("Ses01")].head(15).copy()
    copies["File Name"] = [f"Ses05F_impro09_F{100 + i:03d}" for i in range(len(copies))]
    path = write_sheet(pd.concat([frame, copies], ignore_index=True), tmp_path / "over.csv")
    code, text = cli("run", "--dataset", "iemocap", "--data", str(path), "--out", str(tmp_path / "o"), *FAST)
    assert code == 2, text
    assert has(text, "duplicate") and has(text, "over-sampled") and "Traceback" not in text
    # The same utterance id on several rows (over-sampling that copied the ids) is refused too.
    repeated = pd.concat([frame, frame.iloc[[3, 3, 40]]], ignore_index=True)
    path2 = write_sheet(repeated, tmp_path / "repeated.csv")
    code, text = cli("run", "--dataset", "iemocap", "--data", str(path2), "--out", str(tmp_path / "o"), *FAST)
    assert code == 2 and has(text, "3 rows repeat an earlier id") and has(text, "File Name"), text
    kept = load("iemocap", path2, "data.duplicate_ids=keep")
    assert kept.meta["repeated_ids"] == 3


def test_missing_dataset_explains_files_and_sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, text = cli("run", "--dataset", "iemocap", "--out", str(tmp_path / "o"), *FAST)
    assert code == 2
    for fragment in (
        "IEMOCAP_features.pkl",
        "File Name",
        ".xlsx",
        "https://sail.usc.edu/iemocap/",
        "licence",
    ):
        assert has(text, fragment), fragment
    code, text = cli("run", "--dataset", "meld", "--out", str(tmp_path / "o"), *FAST)
    assert code == 2
    for fragment in ("train_sent_emo.csv", "MELD_features_raw.pkl", "https://affective-meld.github.io/"):
        assert has(text, fragment), fragment
    empty = tmp_path / "empty"
    empty.mkdir()
    code, text = cli("run", "--dataset", "iemocap", "--data", str(empty), "--out", str(tmp_path / "o"), *FAST)
    assert code == 2 and has(text, "folder without iemocap data") and has(text, "sail.usc.edu")
    # MMBENCH_DATA pointing at a data root with an iemocap/ subfolder.
    iemocap_pickle(
        (tmp_path / "root" / "iemocap").mkdir(parents=True)
        or tmp_path / "root" / "iemocap" / "IEMOCAP_features.pkl"
    )
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path / "root"))
    from mmbench.runner.run import RunRequest, data_path_for

    assert (
        load("iemocap", data_path_for(RunRequest(dataset="iemocap"))).meta["format"] == "DialogueRNN pickle"
    )


# ---------------------------------------------------------------------------------- meld
def test_meld_official_csvs(tmp_path):
    folder = meld_csv_folder(tmp_path / "MELD.Raw")
    data = load("meld", folder)
    assert data.class_names == list(MELD_7.names)
    assert data.split_counts() == {"train": 14 * 7, "dev": 4 * 7, "test": 5 * 7}
    dialogues = split_groups(data, "dialogue")
    assert not (dialogues["train"] & dialogues["dev"]) and not (dialogues["train"] & dialogues["test"])
    assert data.meta["split_scheme"].startswith("meld official")
    assert set(data.groups["speaker"]) == {"Ross", "Rachel"}
    out = tmp_path / "runs"
    code, text = cli("run", "--dataset", "meld", "--data", str(folder), "--out", str(out), *FAST)
    assert code == 0, text
    # An unknown label in the dev CSV names that file, its row and the column.
    dev = pd.read_csv(folder / "dev_sent_emo.csv")
    dev.loc[2, "Emotion"] = "happyish"
    dev.to_csv(folder / "dev_sent_emo.csv", index=False)
    with pytest.raises(DataError, match=r"dev_sent_emo\.csv, row 4, column 'Emotion': unknown label"):
        load("meld", folder)
    dev.drop(columns=["Dialogue_ID"]).to_csv(folder / "dev_sent_emo.csv", index=False)
    with pytest.raises(DataError, match=r"dev_sent_emo\.csv, column 'Dialogue_ID': missing column"):
        load("meld", folder)
    dev.loc[2, "Emotion"] = "joy"
    dev.to_csv(folder / "dev_sent_emo.csv", index=False)
    (folder / "test_sent_emo.csv").write_text("")
    with pytest.raises(DataError, match="test_sent_emo.csv"):
        load("meld", folder)


def test_meld_pickle_official_dev_and_fallback(tmp_path):
    data = load("meld", meld_pickle(tmp_path / "MELD_features_raw.pkl"))
    dev_dialogues = {int(d) for d in split_groups(data, "dialogue")["dev"]}
    assert dev_dialogues == set(range(1039, 1153))
    assert {int(d) for d in split_groups(data, "dialogue")["test"]} == set(range(1153, 1433))
    assert data.class_names == list(MELD_7.names) and "visual" not in data.modalities
    # label ints follow the pickle's order (neutral, surprise, fear, sadness, joy, disgust, anger)
    first = int(np.flatnonzero(np.array(data.ids) == "0_0")[0])
    assert data.class_names[data.labels[first]] == "neutral"
    small = meld_pickle(tmp_path / "small.pkl", n_train=60, n_test=20)
    with pytest.warns(DatasetWarning, match="official dev split cannot be recovered"):
        fallback = load("meld", small)
    assert "hash-ranked" in fallback.meta["split_scheme"]
    groups = split_groups(fallback, "dialogue")
    assert groups["dev"] and not (groups["dev"] & groups["train"])


def test_meld_sheet_split_column_and_fallback(tmp_path):
    frame = iemocap_frame(dialogues_per_session=3, utterances=8)
    frame["Emotion"] = [list(MELD_WORDS)[i % 7] for i in range(len(frame))]
    frame["Split"] = np.where(frame.index % 10 < 7, "train", np.where(frame.index % 10 < 8, "dev", "test"))
    frame["Dialogue_ID"] = frame.index // 8
    frame = frame.drop(columns=["File Name"])
    data = load("meld", write_sheet(frame, tmp_path / "MELD.csv"))
    assert data.split_counts() == {s: int((frame["Split"] == s).sum()) for s in ("train", "dev", "test")}
    assert set(data.modalities) == {"audio", "visual"}
    with pytest.warns(DatasetWarning, match="no Split column"):
        fallback = load("meld", write_sheet(frame.drop(columns=["Split"]), tmp_path / "nosplit.csv"))
    groups = split_groups(fallback, "dialogue")
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["dev"])
    assert "grouped by dialogue" in fallback.meta["split_scheme"]


def test_custom_feature_columns(tmp_path):
    """A table without V4 (as `mmbench extract` may write one): refused by default, read when named."""
    frame = iemocap_frame(dialogues_per_session=2, utterances=8).drop(columns=["V4"])
    path = write_sheet(frame, tmp_path / "features.csv")
    with pytest.raises(DataError, match="missing column 'V4'"):
        load("iemocap", path)
    data = load("iemocap", tmp_path, "data.audio_columns=[V3, V1]", "data.visual_columns=[A2, V2]")
    assert {m: list(s) for m, s in data.modalities.items()} == {"audio": ["V3", "V1"], "visual": ["A2", "V2"]}
    with pytest.raises(UsageError, match="both data.audio_columns and data.visual_columns"):
        load("iemocap", path, "data.audio_columns=[V1]", "data.visual_columns=[V1]")


# --------------------------------------------------------------- the plugin conformance kit
_FORMATS = ["iemocap:sheet", "iemocap:pickle", "meld:csvs", "meld:pickle"]


class TestConformance(DatasetConformance):
    """Both plugins, in every format, through the same kit every dataset plugin must pass."""

    @pytest.fixture(scope="class", params=_FORMATS)
    def dataset_case(self, request: pytest.FixtureRequest, tmp_path_factory) -> DatasetCase:
        tmp = tmp_path_factory.mktemp("conformance")
        name, fmt = request.param.split(":")
        if fmt == "sheet":
            path = write_sheet(iemocap_frame(), tmp / "sheet.csv")
        elif fmt == "csvs":
            path = meld_csv_folder(tmp / "csvs")
        elif name == "iemocap":
            path = iemocap_pickle(tmp / "IEMOCAP_features.pkl")
        else:
            path = meld_pickle(tmp / "MELD_features_raw.pkl", n_train=60, n_test=20)
        return DatasetCase(name, path)
