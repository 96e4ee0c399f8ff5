"""``mmbench run --no-checkpoints`` and ``--track NAME`` end to end (tiny runs)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mmbench.cli import app

TINY = ["--fusion", "concat", "--seeds", "0", "--max-epochs", "2", "--set", "data.n_samples=300"]


def test_no_checkpoints_writes_no_weights_and_robustness_says_it_needs_them(tmp_path):
    out = tmp_path / "runs"
    res = CliRunner().invoke(app, ["run", *TINY, "--no-checkpoints", "--out", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    (record_file,) = [p for p in out.glob("*.json") if not p.name.endswith(".predictions.json")]
    record = json.loads(record_file.read_text())
    assert record["status"] == "ok" and "checkpoint_file" not in record
    assert not list(out.glob("*.safetensors"))

    later = CliRunner().invoke(app, ["robustness", "--runs", str(out)])
    message = " ".join(later.output.split())
    assert later.exit_code == 2 and "no successful run with a checkpoint" in message
    assert "written without a checkpoint (--no-checkpoints)" in message

    both = CliRunner().invoke(app, ["run", *TINY, "--no-checkpoints", "--robustness", "--out", str(out)])
    assert both.exit_code == 2 and "--robustness needs the trained models" in " ".join(both.output.split())


def test_track_tensorboard_from_the_command_line(tmp_path):
    pytest.importorskip(
        "tensorboard", reason="tensorboard not installed (pip install 'mmbench[tensorboard]')"
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "runs"
    args = ["run", *TINY, "--no-checkpoints", "--track", "tensorboard", "--out", str(out), "--format", "json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    (folder,) = (out / "tensorboard").iterdir()
    events = EventAccumulator(str(folder))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    unknown = CliRunner().invoke(app, ["run", *TINY, "--track", "tensorbord", "--out", str(out)])
    assert unknown.exit_code == 2 and "tensorboard" in unknown.output  # did you mean


def test_sweep_takes_track_too(tmp_path):
    pytest.importorskip(
        "tensorboard", reason="tensorboard not installed (pip install 'mmbench[tensorboard]')"
    )
    out = tmp_path / "sweep"
    args = [
        "sweep",
        "--fusion",
        "concat",
        "--dataset",
        "synthetic:synergy",
        "--seeds",
        "0",
        "--max-epochs",
        "2",
    ]
    args += ["--set", "data.n_samples=300", "--no-checkpoints", "--track", "tensorboard", "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    (folder,) = (out / "tensorboard").iterdir()
    assert folder.name.startswith("synthetic_synergy-concat-seed0-") and list(folder.glob("events.out.*"))
