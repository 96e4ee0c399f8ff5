"""`mmbench extract` on MELD-style and mixed media (issue 19, kind 9).

The printed run line names the dataset whose ids the manifest holds (and runs); ids restart per
split; every clip's sample rate, channels, duration and resampling are recorded; clips of several
rates and stereo files whose channels cancel in the mono mix are reported.
"""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from tests.extraction.test_extraction import tone, write_wav

runner = CliRunner()
EMOTIONS = ["neutral", "joy", "sadness", "anger"]


def _message(result) -> str:
    return " ".join(((result.stdout or "") + (result.stderr or "")).split())


def _meld_like(tmp_path, per_split=(8, 4, 4)):
    """A MELD-style manifest whose ids restart in every split, clips in wav/<split>/<id>.wav."""
    lines = ["File Name,Utterance,Emotion,Split"]
    for split, n in zip(("train", "dev", "test"), per_split, strict=True):
        (tmp_path / "wav" / split).mkdir(parents=True)
        for i in range(n):
            ident = f"dia{i // 2}_utt{i % 2}"
            freq = 150 + 60 * (i % 4) + {"train": 0, "dev": 7, "test": 13}[split]
            write_wav(tmp_path / "wav" / split / f"{ident}.wav", tone(freq, 0.3))
            lines.append(f"{ident},utterance {i} of {split},{EMOTIONS[i % 4]},{split}")
    (tmp_path / "meld.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "meld.csv"


def test_ids_restarting_per_split_extract_and_the_printed_line_names_meld_and_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest = _meld_like(tmp_path)
    args = ["extract", "--manifest", str(manifest), "--audio-dir", "wav", "--encoder", "audio=mfcc@V2"]
    res = runner.invoke(app, [*args, "--output", "feat", "--format", "json"])
    assert res.exit_code == 0, _message(res)
    summary = json.loads(res.stdout)
    assert summary["rows"] == 16 and summary["dataset"] == "meld"
    assert summary["run_command"].startswith("mmbench run --dataset meld --data feat/features.csv")
    meta = json.loads((tmp_path / "feat" / "manifest.json").read_text())
    assert {"train/dia0_utt0", "dev/dia0_utt0", "test/dia0_utt0"} <= set(meta["inputs"])
    assert meta["inputs"]["dev/dia0_utt0"]["audio"]["path"].endswith("wav/dev/dia0_utt0.wav")
    # The printed command runs as printed (plus a small budget).
    line = shlex.split(summary["run_command"])[1:]
    extra = ["--fusion", "unimodal", "--set", "fusion.modality=audio", "--seeds", "0", "--max-epochs", "1"]
    extra += [
        "--encoder",
        "text=tfidf",
        "--device",
        "cpu",
        "--out",
        "runs",
        "--set",
        "data.allow_duplicates=true",
    ]
    ran = runner.invoke(app, [*line, *extra])
    assert ran.exit_code == 0, _message(ran)
    assert len(list((tmp_path / "runs").glob("meld__unimodal__*seed0.json"))) == 1


def test_iemocap_ids_name_iemocap_and_unknown_ids_a_placeholder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wav").mkdir()
    rows = ["File Name,Utterance,Emotion"]
    for i, ident in enumerate(["Ses01F_impro01_F000", "Ses05M_script01_1_M003"]):
        write_wav(tmp_path / "wav" / f"{ident}.wav", tone(200 + 50 * i, 0.3))
        rows.append(f"{ident},hello,hap")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    args = [
        "extract",
        "--manifest",
        "m.csv",
        "--audio-dir",
        "wav",
        "--encoder",
        "audio=mfcc",
        "--format",
        "json",
    ]
    res = runner.invoke(app, [*args, "--output", "a"])
    assert json.loads(res.stdout)["run_command"].startswith("mmbench run --dataset iemocap ")
    res = runner.invoke(app, [*args, "--output", "b", "--dataset", "meld"])
    assert json.loads(res.stdout)["run_command"].startswith("mmbench run --dataset meld "), "--dataset wins"
    (tmp_path / "wav" / "clip_a.wav").write_bytes((tmp_path / "wav" / "Ses01F_impro01_F000.wav").read_bytes())
    (tmp_path / "n.csv").write_text("File Name,Utterance,Emotion\nclip_a,hi,hap\n")
    args[2] = "n.csv"
    res = runner.invoke(app, [*args, "--output", "c"])
    assert json.loads(res.stdout)["run_command"].startswith("mmbench run --dataset DATASET ")
    res = runner.invoke(app, [*args, "--output", "d", "--dataset", "nope"])
    assert res.exit_code == 2 and "unknown dataset 'nope'" in _message(res)


def test_one_file_for_two_splits_is_refused(tmp_path):
    (tmp_path / "wav").mkdir()
    write_wav(tmp_path / "wav" / "dia0_utt0.wav", tone(200, 0.3))
    (tmp_path / "m.csv").write_text(
        "File Name,Utterance,Emotion,Split\ndia0_utt0,a,joy,train\ndia0_utt0,b,joy,dev\n"
    )
    args = ["extract", "--manifest", str(tmp_path / "m.csv"), "--audio-dir", str(tmp_path / "wav")]
    res = runner.invoke(app, [*args, "--encoder", "audio=mfcc", "--output", str(tmp_path / "o")])
    message = _message(res)
    assert res.exit_code == 2, message
    assert "rows 2 (train/dia0_utt0) and 3 (dev/dia0_utt0) both read" in message and "row 3" in message


def test_sample_rate_channels_duration_and_resampling_are_recorded_and_mixtures_reported(tmp_path):
    (tmp_path / "wav").mkdir()
    write_wav(tmp_path / "wav" / "Ses01F_impro01_F000.wav", tone(300, 0.5, sr=16000), sr=16000)
    write_wav(tmp_path / "wav" / "Ses01F_impro01_F001.wav", tone(300, 0.5, sr=8000), sr=8000)
    left = tone(300, 0.5)
    write_wav(tmp_path / "wav" / "Ses01F_impro01_F002.wav", np.stack([left, -left], axis=1))
    lines = ["File Name,Utterance,Emotion"] + [f"Ses01F_impro01_F00{i},x,hap" for i in range(3)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    args = ["extract", "--manifest", str(tmp_path / "m.csv"), "--audio-dir", str(tmp_path / "wav")]
    out = tmp_path / "o"
    res = runner.invoke(app, [*args, "--encoder", "audio=mfcc", "--output", str(out), "--format", "json"])
    assert res.exit_code == 0, _message(res)
    info = {
        k: v["media_info"]["V2"] for k, v in json.loads((out / "manifest.json").read_text())["inputs"].items()
    }
    assert info["Ses01F_impro01_F000"] == {
        "sample_rate": 16000,
        "channels": 1,
        "duration_s": 0.5,
        "resampled_to": None,
    }
    assert (
        info["Ses01F_impro01_F001"]["sample_rate"] == 8000
        and info["Ses01F_impro01_F001"]["resampled_to"] == 16000
    )
    assert (
        info["Ses01F_impro01_F002"]["channels"] == 2
        and "cancel out" in info["Ses01F_impro01_F002"]["warning"]
    )
    warnings = json.loads(res.stdout)["warnings"]
    assert any("different sample rates (8000 Hz: 1 clip(s), 16000 Hz: 2 clip(s))" in w for w in warnings)
    assert any("Ses01F_impro01_F002.wav (row 4)" in w and "antiphase" in w for w in warnings)
    again = runner.invoke(app, [*args, "--encoder", "audio=mfcc", "--output", str(out), "--format", "json"])
    assert json.loads(again.stdout)["reused"] == {"V2": 3}
    assert json.loads(again.stdout)["warnings"] == warnings, "reused clips keep their recorded facts"


@pytest.mark.parametrize("rate", [8000, 44100])
def test_resampling_is_explicit(tmp_path, rate):
    from mmbench.plugins.extractors.media import load_audio, take_audio_info

    path = write_wav(tmp_path / "a.wav", tone(440, 1.0, sr=rate), sr=rate)
    x = load_audio(path, 16000)
    assert len(x) == 16000
    assert take_audio_info() == {"sample_rate": rate, "channels": 1, "duration_s": 1.0, "resampled_to": 16000}
    assert take_audio_info() is None
