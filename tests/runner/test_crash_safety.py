"""A run killed with SIGKILL at any moment leaves only complete files that readers accept."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mmbench.records import is_record_file, load_records

ARGS = [
    "run",
    "--fusion",
    "concat,late",
    "--seeds",
    "0,1",
    "--set",
    "data.n_samples=600",
    "--max-epochs",
    "3",
    "--format",
    "json",
]


def _spawn(out, cache):
    env = dict(os.environ, MMBENCH_CACHE=str(cache))
    return subprocess.Popen(
        [sys.executable, "-m", "mmbench", *ARGS, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def _check_folder(out):
    """Every visible .json file is complete JSON; every record's predictions and checkpoint exist."""
    for path in out.glob("*.json"):
        json.loads(path.read_text())  # raises on a truncated file
    for rec in load_records(out):
        folder = out
        assert (folder / rec["predictions_file"]).exists()
        assert (folder / rec["checkpoint_file"]).exists()
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert all(name.endswith(".tmp") for name in leftovers), leftovers
    assert not any(is_record_file(out / name) for name in leftovers)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [2.0, 5.0])
def test_sigkill_leaves_no_partial_file(tmp_path, delay):
    out = tmp_path / "runs"
    proc = _spawn(out, tmp_path / "cache")
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if out.exists():
        _check_folder(out)
    # A complete re-run into the same folder ends with exactly one record per (fusion, seed).
    proc = _spawn(out, tmp_path / "cache")
    assert proc.wait(timeout=300) == 0
    _check_folder(out)
    cells = sorted((r["fusion"], r["seed"]) for r in load_records(out))
    assert cells == [("concat", 0), ("concat", 1), ("late", 0), ("late", 1)]


@pytest.mark.slow
def test_concurrent_runs_share_a_folder(tmp_path):
    out = tmp_path / "runs"
    procs = [_spawn(out, tmp_path / f"cache{i}") for i in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    _check_folder(out)
    assert len(load_records(out)) == 4
