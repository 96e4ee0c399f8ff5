"""A sweep SIGKILLed in the middle of training resumes to a complete grid: no duplicate, no corrupt record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.records import is_record_file, load_record

EPOCHS = 6


@pytest.mark.slow
def test_sigkill_during_training_then_rerun(tmp_path):
    out = tmp_path / "runs"
    args = ["sweep", "--fusion", "concat", "--dataset", "synthetic", "--seeds", "0,1"]
    args += ["--set", "data.n_samples=300", "--set", "train.patience=100", "--max-epochs", str(EPOCHS)]
    args += ["--out", str(out), "--device", "cpu"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmbench", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    folder = out / "synthetic"
    try:
        # Wait for a cell's lock, then for its first heartbeat: an epoch has ended, training is on.
        deadline = time.time() + 120
        lock = None
        while time.time() < deadline and lock is None:
            locks = sorted(folder.glob("*.lock")) if folder.exists() else []
            lock = locks[0] if locks else None
            time.sleep(0.02)
        assert lock is not None, "the sweep never claimed a cell"
        first = lock.stat().st_mtime_ns
        while time.time() < deadline and lock.exists() and lock.stat().st_mtime_ns == first:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    killed_record = lock.with_name(lock.name[: -len(".lock")] + ".json")
    assert not killed_record.exists(), "training finished before the kill; the test proves nothing"
    assert lock.exists()  # left behind by the dead worker

    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output

    records = sorted(p for p in folder.glob("*.json") if is_record_file(p))
    assert len(records) == 2  # one per seed: no duplicates
    seeds = []
    for path in records:
        rec = load_record(path)
        assert rec is not None and rec["status"] == "ok"
        assert len(rec["history"]) == EPOCHS
        assert (folder / rec["predictions_file"]).exists() and (folder / rec["checkpoint_file"]).exists()
        seeds.append(rec["seed"])
    assert sorted(seeds) == [0, 1]
    assert load_record(killed_record) is not None
    assert list(folder.glob("*.lock")) == [] and list(folder.glob(".*.tmp")) == []

    # The resumed grid's leaderboard equals an uninterrupted sweep's in everything but timing.
    clean = tmp_path / "clean"
    clean_args = [*args[: args.index("--out")], "--out", str(clean), "--device", "cpu"]
    assert CliRunner().invoke(app, clean_args).exit_code == 0
    assert _board(out) == _board(clean)


def _board(runs) -> list[dict]:
    """The leaderboard's rows (metrics, per-class F1, significance), timing and memory left out."""
    import json

    result = CliRunner().invoke(
        app,
        [
            "leaderboard",
            "--runs",
            str(runs),
            "--dataset",
            "synthetic",
            "--include-budget-cut",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = []
    for group in json.loads(result.stdout)["groups"]:
        for row in group["rows"]:
            efficiency = row.pop("efficiency")
            row["params"] = efficiency["params"]
            rows.append(row)
    return rows
