"""Bad dataset files through `mmbench run`: exit code 2, one message naming the file (and row and
column where there is one), no traceback, nothing written to --out.

One table over every dataset format x the malformations that apply to it and are not already run
end to end elsewhere (tests/test_datasets_iemocap_meld.py covers the iemocap .csv sheet's unknown
and empty label, missing column, ragged vector, NaN, unparsable cell, bad id and empty file). The
catalogue is counted in docs/RELIABILITY.md. A last test covers `mmbench robustness` on checkpoints
that no longer fit their record or data.
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from tests.plugins.datasets.test_datasets_iemocap_meld import (
    MELD_WORDS,
    iemocap_frame,
    meld_csv_folder,
    write_sheet,
)

runner = CliRunner()
RUN = ["--fusion", "concat", "--seeds", "0", "--max-epochs", "1", "--device", "cpu"]


def _squash(text: str) -> str:
    """Output without white space (the console wraps long paths), lower case."""
    return "".join(text.split()).lower()


def _cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    raw = (result.stdout or "") + (getattr(result, "stderr", "") or "")
    return result.exit_code, raw, _squash(raw)


# ------------------------------------------------------------------------------------- sheets
def _sheet(frame_or_none: pd.DataFrame | None, name: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        return write_sheet(frame_or_none, tmp / name)

    return build


def _iem(change: Callable[[pd.DataFrame], pd.DataFrame], name: str = "bad.xlsx", **kw) -> Callable:
    """An iemocap sheet (2 dialogues x 6 utterances per session) changed by ``change``."""

    def build(tmp: Path) -> Path:
        return write_sheet(
            change(iemocap_frame(**{"dialogues_per_session": 2, "utterances": 6, **kw})), tmp / name
        )

    return build


def _cell_at(row: int, column: str, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Spreadsheet row ``row`` (header = row 1) of ``column`` replaced by ``value``."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[row - 2, column] = value
        return frame

    return change


def _only_in_ses05(code_spellings: tuple[str, ...], replacement: str) -> Callable:
    """Rows of the class outside session 5 relabelled: it then occurs in test only."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        outside = ~frame["File Name"].str.startswith("Ses05") & frame["Emotion"].isin(code_spellings)
        frame.loc[outside, "Emotion"] = replacement
        return frame

    return change


FRU = ("Frustration", "fru")


def _no_ses05(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["File Name"].str.startswith("Ses05")].reset_index(drop=True)


def _raw(content: bytes, name: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(content)
        return path

    return build


def _absent(name: str) -> Callable[[Path], Path]:
    return lambda tmp: tmp / name


def _meld_frame() -> pd.DataFrame:
    """A MELD reference sheet with a Split column and dialogue ids."""
    frame = iemocap_frame(dialogues_per_session=3, utterances=8).drop(columns=["File Name"])
    frame["Emotion"] = [list(MELD_WORDS)[i % 7] for i in range(len(frame))]
    frame["Split"] = np.where(frame.index % 10 < 7, "train", np.where(frame.index % 10 < 8, "dev", "test"))
    frame["Dialogue_ID"] = frame.index // 8
    return frame


def _meld(change: Callable[[pd.DataFrame], pd.DataFrame], name: str = "MELD.csv") -> Callable:
    return lambda tmp: write_sheet(change(_meld_frame()), tmp / name)


def _meld_drop_class_from_train(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[(frame["Split"] == "train") & (frame["Emotion"] == "fear"), "Emotion"] = "joy"
    return frame


def _meld_split(old: str, new: str) -> Callable:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[frame["Split"] == old, "Split"] = new
        return frame

    return change


# --------------------------------------------------------------------------------- MELD CSVs
def _csvs(split: str, change: Callable[[pd.DataFrame], pd.DataFrame | None] | bytes | None) -> Callable:
    """MELD's official CSV folder with one CSV changed (a frame, raw bytes, or removed)."""

    def build(tmp: Path) -> Path:
        folder = meld_csv_folder(tmp / "MELD.Raw", {"train": 8, "dev": 3, "test": 3})
        file = folder / f"{split}_sent_emo.csv"
        if change is None:
            file.unlink()
        elif isinstance(change, bytes):
            file.write_bytes(change)
        else:
            changed = change(pd.read_csv(file, dtype=object, keep_default_na=False))
            changed.to_csv(file, index=False)
        return folder

    return build


def _csv_set(row: int, column: str, value: str) -> Callable:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row - 2, column] = value
        return frame

    return change


def _csv_relabel(emotion: str, to: str) -> Callable:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame["Emotion"].str.lower() == emotion, "Emotion"] = to
        return frame

    return change


# ----------------------------------------------------------------------------------- pickles
def _iemocap_fields(n_sessions: int = 5) -> list[dict]:
    """The nine DialogueRNN fields (as dicts; trainVid/testVid as sets) of a tiny IEMOCAP pickle."""
    rng = np.random.default_rng(3)
    fields: list[dict] = [{} for _ in range(7)]
    train, test = set(), set()
    for ses in range(1, n_sessions + 1):
        for d in range(3):
            vid = f"Ses{ses:02d}{'FM'[d % 2]}_impro{d + 1:02d}"
            labels = [(ses + d + u) % 6 for u in range(6)]
            fields[0][vid] = [f"{vid}_{'FM'[u % 2]}{u:03d}" for u in range(6)]
            fields[1][vid] = ["FM"[u % 2] for u in range(6)]
            fields[2][vid] = labels
            fields[3][vid] = [rng.normal(size=6) for _ in labels]
            fields[4][vid] = [rng.normal(size=5) for _ in labels]
            fields[5][vid] = [rng.normal(size=4) for _ in labels]
            fields[6][vid] = [f"word{k} sentence {u}" for u, k in enumerate(labels)]
            (test if ses == 5 else train).add(vid)
    return [*fields, train, test]


IEMOCAP_FIELDS = ("ids", "speakers", "labels", "text", "audio", "visual", "sentences", "train", "test")


def _pkl(
    change: Callable[[list], object] | None = None,
    name: str = "IEMOCAP_features.pkl",
    fields: Callable[[], list] = _iemocap_fields,
) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        obj = fields()
        obj = change(obj) if change else obj
        path = tmp / name
        path.write_bytes(pickle.dumps(tuple(obj) if isinstance(obj, list) else obj, protocol=2))
        return path

    return build


def _set_field(field: str, dialogue: str, utterance: int, value: object, names=IEMOCAP_FIELDS) -> Callable:
    def change(obj: list) -> list:
        obj[names.index(field)][dialogue][utterance] = value
        return obj

    return change


def _iemocap_label_only_in_test(obj: list) -> list:
    labels = obj[2]
    for vid in labels:
        if not vid.startswith("Ses05"):
            labels[vid] = [0 if k == 5 else k for k in labels[vid]]
    return obj


def _meld_fields() -> list:
    """A tiny 9-field MELD pickle: 20 train and 6 test dialogues of 4 utterances, labels 0..6."""
    rng = np.random.default_rng(4)
    ids, spk, lab, text, audio, sent, senti = {}, {}, {}, {}, {}, {}, {}
    for vid in range(26):
        k = [(vid + u) % 7 for u in range(4)]
        ids[vid], spk[vid], lab[vid] = list(range(4)), [[1, 0], [0, 1], [1, 0], [0, 1]], k
        text[vid] = [rng.normal(size=7) for _ in k]
        audio[vid] = [rng.normal(size=3) for _ in k]
        sent[vid], senti[vid] = [f"w{j} {vid}" for j in k], [0] * 4
    return [ids, spk, lab, text, audio, sent, list(range(20)), list(range(20, 26)), senti]


MELD_FIELDS = ("ids", "speakers", "labels", "text", "audio", "sentences", "train", "test", "sentiment")


def _meld_pkl(change: Callable[[list], object] | None = None) -> Callable[[Path], Path]:
    return _pkl(change, "MELD_features_raw.pkl", _meld_fields)


def _meld_label_only_in_test(obj: list) -> list:
    for vid in range(20):
        obj[2][vid] = [0 if k == 2 else k for k in obj[2][vid]]
    return obj


def _meld_no_test(obj: list) -> list:
    obj[6], obj[7] = list(range(26)), []
    return obj


# ------------------------------------------------------------------------------------- table
@dataclass(frozen=True)
class Case:
    """``mmbench run --dataset dataset --data <build(tmp)>`` must exit 2 with every fragment."""

    id: str
    dataset: str
    build: Callable[[Path], Path] | None
    fragments: tuple[str, ...]
    extra: tuple[str, ...] = ()


X, C = "bad.xlsx", "bad.csv"
CASES = [
    # iemocap, .xlsx sheet
    Case("iemocap-xlsx/missing file", "iemocap", _absent("absent.xlsx"), ("absent.xlsx", "does not exist")),
    Case("iemocap-xlsx/empty file", "iemocap", _raw(b"", X), (X, "empty file")),
    Case(
        "iemocap-xlsx/csv renamed .xlsx",
        "iemocap",
        _raw(b"Utterance,Emotion\nhi,neu\n", X),
        (X, "not an .xlsx"),
    ),
    Case(
        "iemocap-xlsx/header only",
        "iemocap",
        _iem(lambda f: f.iloc[:0]),
        (X, "no data rows"),
    ),
    Case(
        "iemocap-xlsx/missing column",
        "iemocap",
        _iem(lambda f: f.drop(columns=["A2"])),
        (X, "missing column 'A2'"),
    ),
    Case(
        "iemocap-xlsx/ragged vector",
        "iemocap",
        _iem(_cell_at(9, "V3", "[0.1, 0.2]")),
        (X, "row 9", "'V3'", "2 values"),
    ),
    Case(
        "iemocap-xlsx/unparsable cell",
        "iemocap",
        _iem(_cell_at(5, "V1", "[0.1, 0,2.5, x, 1, 2, 3, 4]")),
        (X, "row 5", "'V1'", "'x'"),
    ),
    Case(
        "iemocap-xlsx/nan",
        "iemocap",
        _iem(_cell_at(7, "A2", "[NaN, 0, 0, 0, 0, 0]")),
        (X, "row 7", "'A2'", "NaN"),
    ),
    Case(
        "iemocap-xlsx/inf",
        "iemocap",
        _iem(_cell_at(3, "V4", "[1, -inf, 0]")),
        (X, "row 3", "'V4'", "infinite"),
    ),
    Case(
        "iemocap-xlsx/unknown label",
        "iemocap",
        _iem(_cell_at(6, "Emotion", "Hapy")),
        (X, "row 6", "'Emotion'", "'Hapy'"),
    ),
    Case(
        "iemocap-xlsx/empty label",
        "iemocap",
        _iem(_cell_at(4, "Emotion", "")),
        (X, "row 4", "'Emotion'", "empty"),
    ),
    Case(
        "iemocap-xlsx/class in test only",
        "iemocap",
        _iem(_only_in_ses05(FRU, "Sadness")),
        (X, "['fru']", "test split", "never in train"),
    ),
    Case("iemocap-xlsx/no test rows", "iemocap", _iem(_no_ses05), (X, "no session 5")),
    # iemocap, .csv sheet (the rest of its column is in test_datasets_iemocap_meld.py)
    Case("iemocap-csv/missing file", "iemocap", _absent("absent.csv"), ("absent.csv", "does not exist")),
    Case(
        "iemocap-csv/not UTF-8 under data.encoding=strict",
        "iemocap",
        _raw("Utterance,Emotion\ncaf\xe9,neu\n".encode("latin-1"), C),
        (C, "line 2 is not valid UTF-8"),
        ("--set", "data.encoding=strict"),
    ),
    Case("iemocap-csv/header only", "iemocap", _iem(lambda f: f.iloc[:0], C), (C, "no data rows")),
    Case(
        "iemocap-csv/inf",
        "iemocap",
        _iem(_cell_at(8, "V1", "[inf, 0, 0, 0, 0, 0, 0, 0]"), C),
        (C, "row 8", "'V1'"),
    ),
    Case(
        "iemocap-csv/float32 overflow",
        "iemocap",
        _iem(_cell_at(8, "A2", "[1e40, 0, 0, 0, 0, 0]"), C),
        (C, "row 8", "float32"),
    ),
    Case(
        "iemocap-csv/class in test only",
        "iemocap",
        _iem(_only_in_ses05(FRU, "neu"), C),
        (C, "['fru']", "test split"),
    ),
    Case(
        "iemocap-csv/no dev rows",  # one dialogue per session: no dialogue can be held out for dev
        "iemocap",
        _iem(lambda f: f, C, dialogues_per_session=1, utterances=12),
        (C, "dev split has no rows"),
    ),
    Case("iemocap-csv/no test rows", "iemocap", _iem(_no_ses05, C), (C, "no session 5")),
    # --data with a wrong extension or a wrong kind of path
    Case(
        "iemocap/.txt file",
        "iemocap",
        _raw(b"a,b\n1,2\n", "features.txt"),
        ("features.txt", "unsupported file type"),
    ),
    Case(
        "iemocap/.xls file",
        "iemocap",
        _raw(b"\xd0\xcf\x11\xe0", "old.xls"),
        ("old.xls", "unsupported file type"),
    ),
    Case("meld/.json file", "meld", _raw(b"{}", "MELD.json"), ("MELD.json", "unsupported file type")),
    # iemocap, DialogueRNN pickle
    Case(
        "iemocap-pkl/missing file",
        "iemocap",
        _absent("IEMOCAP_features.pkl"),
        ("IEMOCAP_features.pkl", "does not exist"),
    ),
    Case("iemocap-pkl/empty file", "iemocap", _raw(b"", "IEMOCAP_features.pkl"), ("IEMOCAP_features.pkl",)),
    Case(
        "iemocap-pkl/csv renamed .pkl",
        "iemocap",
        _raw(b"Utterance,Emotion\nhi,neu\n", "IEMOCAP_features.pkl"),
        ("IEMOCAP_features.pkl",),
    ),
    Case(
        "iemocap-pkl/not the layout",
        "iemocap",
        _pkl(lambda obj: dict(zip(IEMOCAP_FIELDS, obj, strict=True))),
        ("IEMOCAP_features.pkl", "expected a dialogue pickle layout", "got dict"),
    ),
    Case(
        "iemocap-pkl/missing field",
        "iemocap",
        _pkl(lambda obj: obj[:5] + obj[6:]),
        ("IEMOCAP_features.pkl", "tuple of 9 items", "got a tuple of 8"),
    ),
    Case(
        "iemocap-pkl/ragged vector",
        "iemocap",
        _pkl(_set_field("audio", "Ses02F_impro01", 3, np.zeros(2))),
        ("IEMOCAP_features.pkl", "'Ses02F_impro01'", "videoAudio", "ragged"),
    ),
    Case(
        "iemocap-pkl/non-numeric value",
        "iemocap",
        _pkl(_set_field("visual", "Ses01F_impro01", 1, ["a", "b", "c", "d"])),
        ("IEMOCAP_features.pkl", "'Ses01F_impro01'", "videoVisual", "not numeric"),
    ),
    Case(
        "iemocap-pkl/nan",
        "iemocap",
        _pkl(_set_field("text", "Ses03M_impro02", 4, np.full(6, np.nan))),
        ("IEMOCAP_features.pkl", "'Ses03M_impro02', utterance 4", "videoText", "NaN"),
    ),
    Case(
        "iemocap-pkl/inf",
        "iemocap",
        _pkl(_set_field("audio", "Ses04F_impro03", 0, np.array([0, 0, np.inf, 0, 0]))),
        ("IEMOCAP_features.pkl", "'Ses04F_impro03', utterance 0", "videoAudio", "inf"),
    ),
    Case(
        "iemocap-pkl/unknown label",
        "iemocap",
        _pkl(_set_field("labels", "Ses01F_impro01", 2, 9)),
        ("IEMOCAP_features.pkl", "'Ses01F_impro01', utterance 2", "label 9", "0..5"),
    ),
    Case(
        "iemocap-pkl/empty label",
        "iemocap",
        _pkl(_set_field("labels", "Ses01F_impro01", 2, None)),
        ("IEMOCAP_features.pkl", "'Ses01F_impro01', utterance 2", "label None"),
    ),
    Case(
        "iemocap-pkl/class in test only",
        "iemocap",
        _pkl(_iemocap_label_only_in_test),
        ("IEMOCAP_features.pkl", "['fru']", "test split", "never in train"),
    ),
    Case(
        "iemocap-pkl/no test rows",
        "iemocap",
        _pkl(fields=lambda: _iemocap_fields(n_sessions=4)),
        ("IEMOCAP_features.pkl", "no session 5"),
    ),
    # meld, official CSV folder (text only: no vectors, so no ragged vector and no NaN cell)
    Case("meld-csvs/missing file", "meld", _csvs("dev", None), ("dev_sent_emo.csv", "missing")),
    Case("meld-csvs/empty file", "meld", _csvs("test", b""), ("test_sent_emo.csv", "empty")),
    Case(
        "meld-csvs/binary file",
        "meld",
        _csvs("train", bytes(range(256)) * 4),
        ("train_sent_emo.csv",),
    ),
    Case(
        "meld-csvs/missing column",
        "meld",
        _csvs("train", lambda f: f.drop(columns=["Utterance_ID"])),
        ("train_sent_emo.csv", "'Utterance_ID'", "missing column"),
    ),
    Case(
        "meld-csvs/unparsable cell",
        "meld",
        _csvs("dev", _csv_set(5, "Dialogue_ID", "two")),
        ("dev_sent_emo.csv", "row 5", "'Dialogue_ID'", "'two'"),
    ),
    Case(
        "meld-csvs/unknown label",
        "meld",
        _csvs("test", _csv_set(3, "Emotion", "joyful-ish")),
        ("test_sent_emo.csv", "row 3", "'Emotion'", "unknown label"),
    ),
    Case(
        "meld-csvs/empty label",
        "meld",
        _csvs("train", _csv_set(6, "Emotion", "")),
        ("train_sent_emo.csv", "row 6", "'Emotion'"),
    ),
    Case(
        "meld-csvs/empty utterance",
        "meld",
        _csvs("train", _csv_set(4, "Utterance", "")),
        ("train_sent_emo.csv", "row 4", "'Utterance'"),
    ),
    Case(
        "meld-csvs/class absent from train",
        "meld",
        _csvs("train", _csv_relabel("disgust", "joy")),
        ("MELD.Raw", "['disgust']", "never in train"),
    ),
    Case(
        "meld-csvs/no rows in a split",
        "meld",
        _csvs("dev", lambda f: f.iloc[:0]),
        ("dev_sent_emo.csv", "no rows"),
    ),
    # meld, reference sheet
    Case(
        "meld-sheet/missing column",
        "meld",
        _meld(lambda f: f.drop(columns=["V4"])),
        ("MELD.csv", "missing column 'V4'"),
    ),
    Case(
        "meld-sheet/ragged vector", "meld", _meld(_cell_at(6, "V1", "[1, 2]")), ("MELD.csv", "row 6", "'V1'")
    ),
    Case(
        "meld-sheet/unparsable cell",
        "meld",
        _meld(_cell_at(4, "V3", "[1; 2; 3]")),
        ("MELD.csv", "row 4", "'V3'"),
    ),
    Case(
        "meld-sheet/nan",
        "meld",
        _meld(_cell_at(10, "V1", "[nan, 1, 2, 3, 4, 5, 6, 7]")),
        ("MELD.csv", "row 10", "'V1'"),
    ),
    Case(
        "meld-sheet/unknown label",
        "meld",
        _meld(_cell_at(2, "Emotion", "meh")),
        ("MELD.csv", "row 2", "'Emotion'", "'meh'"),
    ),
    Case(
        "meld-sheet/unknown split",
        "meld",
        _meld(_cell_at(12, "Split", "holdout")),
        ("MELD.csv", "row 12", "'Split'", "'holdout'"),
    ),
    Case(
        "meld-sheet/class absent from train",
        "meld",
        _meld(_meld_drop_class_from_train),
        ("MELD.csv", "['fear']", "never in train"),
    ),
    Case(
        "meld-sheet/no dev rows",
        "meld",
        _meld(_meld_split("dev", "train")),
        ("MELD.csv", "dev split has no rows"),
    ),
    Case("meld-xlsx/empty file", "meld", _raw(b"", "MELD.xlsx"), ("MELD.xlsx", "empty file")),
    # meld, DialogueRNN pickle
    Case("meld-pkl/empty file", "meld", _raw(b"", "MELD_features_raw.pkl"), ("MELD_features_raw.pkl",)),
    Case(
        "meld-pkl/missing field",
        "meld",
        _meld_pkl(lambda obj: obj[:8]),
        ("MELD_features_raw.pkl", "tuple of 9 items", "or of 10 items", "got a tuple of 8"),
    ),
    Case(
        "meld-pkl/ragged vector",
        "meld",
        _meld_pkl(_set_field("text", 3, 1, np.zeros(5), MELD_FIELDS)),
        ("MELD_features_raw.pkl", "'3'", "videoText", "ragged"),
    ),
    Case(
        "meld-pkl/inf",
        "meld",
        _meld_pkl(_set_field("audio", 7, 2, np.array([0, np.inf, 0]), MELD_FIELDS)),
        ("MELD_features_raw.pkl", "'7', utterance 2", "videoAudio"),
    ),
    Case(
        "meld-pkl/unknown label",
        "meld",
        _meld_pkl(_set_field("labels", 5, 0, 7, MELD_FIELDS)),
        ("MELD_features_raw.pkl", "'5', utterance 0", "label 7", "0..6"),
    ),
    Case(
        "meld-pkl/class absent from train",
        "meld",
        _meld_pkl(_meld_label_only_in_test),
        ("MELD_features_raw.pkl", "['fear']", "never in train"),
    ),
    Case(
        "meld-pkl/no test rows",
        "meld",
        _meld_pkl(_meld_no_test),
        ("MELD_features_raw.pkl", "test split has no rows"),
    ),
    # shipped and generated datasets: no user file, only --data and options can be wrong
    Case("mfeat/--data given", "mfeat", _raw(b"x", "mfeat.csv"), ("dataset 'mfeat' is built in",)),
    Case("mfeat/bad option", "mfeat", None, ("data.scale", "standardize"), ("--set", "data.scale=1")),
    Case(
        "synthetic/too few samples",
        "synthetic",
        None,
        ("data.n_samples", "at least 200"),
        ("--set", "data.n_samples=50"),
    ),
    Case(
        "synthetic/bad alignment option",
        "synthetic",
        None,
        ("data.seq_len", "[3, 1000]"),
        ("--set", "data.preset=alignment", "--set", "data.seq_len=1"),
    ),
]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_dataset_file_exits_2(case: Case, tmp_path: Path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    out = tmp_path / "out"
    data = ["--data", str(case.build(inputs))] if case.build else []
    code, raw, text = _cli("run", "--dataset", case.dataset, *data, *case.extra, "--out", str(out), *RUN)
    assert code == 2, raw
    assert "traceback" not in text and "internalerror" not in text, raw
    assert [line.startswith("error:") for line in raw.splitlines()].count(True) == 1, raw  # one message
    for fragment in case.fragments:
        assert _squash(fragment) in text, (fragment, raw)
    assert not out.exists(), "nothing may be written on bad input"


# ------------------------------------------------------------------- checkpoints vs. data
def _records(runs: Path) -> dict[str, Path]:
    return {json.loads(p.read_text())["fusion"]: p for p in runs.glob("*seed0.json")}


def _snapshot(runs: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in runs.iterdir()}


def test_robustness_on_checkpoints_that_no_longer_fit(tmp_path: Path):
    """`mmbench robustness` on a checkpoint that does not fit its record's model or data: exit 2,
    the checkpoint named, no record rewritten."""
    runs = tmp_path / "runs"
    code, raw, _ = _cli(
        "run", "--fusion", "concat,late", "--seeds", "0", "--max-epochs", "1", "--device", "cpu",
        "--set", "data.n_samples=300", "--out", str(runs),
    )  # fmt: skip
    assert code == 0, raw
    records = _records(runs)
    concat = json.loads(records["concat"].read_text())
    ckpt = runs / concat["checkpoint_file"]
    original = ckpt.read_bytes()
    late_ckpt = runs / json.loads(records["late"].read_text())["checkpoint_file"]

    def check(*fragments: str) -> None:
        before = _snapshot(runs)
        code, raw, text = _cli("robustness", "--runs", str(runs), "--fusion", "concat")
        assert code == 2, raw
        assert "traceback" not in text and "internalerror" not in text, raw
        for fragment in (ckpt.name, *fragments):
            assert _squash(fragment) in text, (fragment, raw)
        assert _snapshot(runs) == before, "no record may be rewritten"

    shutil.copy(late_ckpt, ckpt)  # another fusion's weights
    check("does not fit the concat model", "missing tensor(s)", "unexpected tensor(s)")
    ckpt.write_bytes(b"\0" * 16)  # damaged
    check("not a readable safetensors checkpoint")
    ckpt.write_bytes(original)
    edited = {**concat, "fusion_params": {**concat["fusion_params"], "hidden": 8}}
    records["concat"].write_text(json.dumps(edited))  # the record no longer matches its weights
    check("tensor(s) of another shape")
    records["concat"].write_text(json.dumps(concat))
    code, raw, _ = _cli("robustness", "--runs", str(runs), "--fusion", "concat")
    assert code == 0, raw
    assert "robustness" in json.loads(records["concat"].read_text())


def test_robustness_after_the_data_changed(tmp_path: Path):
    """The data file of a run rewritten with wider vectors: its checkpoint is not used (exit 2)."""
    path = write_sheet(iemocap_frame(dialogues_per_session=2, utterances=6), tmp_path / "sheet.csv")
    runs = tmp_path / "runs"
    code, raw, _ = _cli("run", "--dataset", "iemocap", "--data", str(path), "--out", str(runs), *RUN)
    assert code == 0, raw
    frame = iemocap_frame(dialogues_per_session=2, utterances=6)
    frame["V1"] = frame["V1"].str.replace("]", ", 0.5]")  # 9 values instead of 8
    write_sheet(frame, path)
    before = _snapshot(runs)
    code, raw, text = _cli("robustness", "--runs", str(runs))
    assert code == 2, raw
    assert "traceback" not in text and _squash("the data changed since they ran") in text, raw
    assert _snapshot(runs) == before
