"""Sweeps: dataset specs, deterministic shards, cell locks, resume, and concurrent workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import UsageError
from mmbench.records import is_record_file, load_record, load_records
from mmbench.registry.manager import build_registry
from mmbench.runner.sweep import (
    Cell,
    CellLock,
    SweepRequest,
    build_grid,
    lock_path,
    parse_dataset_spec,
    parse_shard,
    run_sweep,
    shard_cells,
    spec_overrides,
    spec_slug,
)

REGISTRY, _ = build_registry()
TINY = ["data.n_samples=300"]


def test_dataset_specs():
    assert parse_dataset_spec("synthetic:synergy") == ("synthetic", "synergy")
    assert parse_dataset_spec(" mfeat ") == ("mfeat", None)
    assert spec_slug("synthetic:synergy") == "synthetic-synergy" and spec_slug("mfeat") == "mfeat"
    assert spec_overrides("synthetic:unique", ["train.lr=0.1"]) == ["data.preset=unique", "train.lr=0.1"]
    for bad in ("synthetic:", ":x", "a:b:c"):
        with pytest.raises(UsageError):
            parse_dataset_spec(bad)
    with pytest.raises(UsageError, match="already sets the preset"):
        spec_overrides("synthetic:unique", ["data.preset=synergy"])


def test_shards_partition_the_grid_deterministically():
    seeds = {"synthetic:synergy": [0, 1, 2], "mfeat": [0, 1, 2]}
    grid = build_grid(seeds, ["late", "concat", "tensor"])
    assert grid == build_grid(dict(reversed(list(seeds.items()))), ["tensor", "concat", "late"])
    assert len(grid) == 18 and grid[0] == Cell("mfeat", "concat", 0)
    parts = [shard_cells(grid, i, 4) for i in (1, 2, 3, 4)]
    assert sorted(c for p in parts for c in p) == grid
    assert sum(len(p) for p in parts) == len(grid) and {len(p) for p in parts} == {4, 5}
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) == (1, 1)
    for bad in ("0/4", "5/4", "2", "a/b"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_is_exclusive_among_racing_threads(tmp_path):
    path = tmp_path / "cell.lock"
    wins = []
    barrier = threading.Barrier(8)

    def claim():
        lock = CellLock(path)
        barrier.wait()
        if lock.acquire():
            wins.append(lock)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    owner = json.loads(path.read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    assert not CellLock(path).acquire()  # a live owner (this process) holds it
    wins[0].release()
    assert not path.exists()


def test_stale_locks_are_taken_over(tmp_path):
    record = tmp_path / "synthetic__concat__fp__tag__seed0.json"
    path = lock_path(record)
    assert path.name == "synthetic__concat__fp__tag__seed0.lock"
    # 1) the owner died on this host; its half-written files go too
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "since": time.time()}))
    partial = tmp_path / f".{record.name}.abc123.tmp"
    partial.write_text("{")
    lock = CellLock(path)
    assert lock.acquire() and lock.took_over is not None
    assert not partial.exists() and json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    # 2) another host, but no heartbeat for longer than the limit
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": 0}))
    assert not CellLock(path, stale_after_hours=1).acquire()
    old = time.time() - 2 * 3600
    os.utime(path, (old, old))
    lock = CellLock(path, stale_after_hours=1)
    assert lock.acquire()
    # 3) releasing never removes a lock that another worker has taken over meanwhile
    path.write_text(json.dumps({"host": "elsewhere", "pid": 2, "since": 1}))
    lock.release()
    assert path.exists()


def _sweep(out: Path, **kw) -> object:
    request = SweepRequest(
        datasets=kw.pop("datasets", ["synthetic"]),
        fusions=kw.pop("fusions", ["concat", "late"]),
        seeds=kw.pop("seeds", [0, 1]),
        overrides=list(TINY),
        max_epochs=1,
        device="cpu",
        out_dir=out,
        save_checkpoints=False,
        **kw,
    )
    return run_sweep(request, REGISTRY)


@pytest.mark.slow
def test_resume_shards_and_busy_cells(tmp_path):
    out = tmp_path / "runs"
    first = _sweep(out, shard=(1, 2))
    second = _sweep(out, shard=(2, 2))
    assert first.grid_size == second.grid_size == 4
    assert first.count("trained") == second.count("trained") == 2
    done = {(c.cell.fusion, c.cell.seed) for c in first.cells} | {
        (c.cell.fusion, c.cell.seed) for c in second.cells
    }
    assert len(done) == 4
    folder = out / "synthetic"
    records = sorted(p for p in folder.glob("*.json") if is_record_file(p))
    assert len(records) == 4 and not list(folder.glob("*.safetensors"))
    mtimes = {p: p.stat().st_mtime_ns for p in records}
    # Re-run: everything exists, nothing retrains.
    again = _sweep(out)
    assert again.count("existing") == 4 and again.count("trained") == 0
    assert {p: p.stat().st_mtime_ns for p in records} == mtimes
    # A corrupt (truncated) record is retrained; a cell held by a live worker is left alone.
    records[0].write_text('{"schema_version": 1, "metr')
    held = CellLock(lock_path(records[1]))
    records[1].unlink()
    assert held.acquire()
    result = _sweep(out)
    held.release()
    status = {Path(c.record).name if c.record else None: c.status for c in result.cells}
    assert status.get(records[0].name) == "trained"
    assert result.count("busy") == 1 and result.count("existing") == 2
    assert load_record(records[0]) is not None and not records[1].exists()
    assert list(folder.glob("*.lock")) == [] and list(folder.glob(".*.tmp")) == []


@pytest.mark.slow
def test_cli_sweep_presets_then_leaderboard(tmp_path):
    out = tmp_path / "runs"
    args = ["sweep", "--fusion", "concat,late", "--dataset", "synthetic:synergy,synthetic:redundant"]
    args += ["--seeds", "0", "--set", TINY[0], "--max-epochs", "1", "--out", str(out), "--device", "cpu"]
    res = CliRunner().invoke(app, [*args, "--no-checkpoints", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["grid"] == 4 and data["counts"]["trained"] == 4
    assert sorted(p.name for p in out.iterdir()) == ["synthetic-redundant", "synthetic-synergy"]
    presets = {r["protocol"]["data"]["preset"] for r in load_records(out / "synthetic-synergy")}
    assert presets == {"synergy"}
    board = CliRunner().invoke(
        app, ["leaderboard", "--runs", str(out), "--dataset", "synthetic:synergy", "--format", "json"]
    )
    assert board.exit_code == 2 and "budget-cut" in board.output  # --max-epochs runs are budget cuts
    board = CliRunner().invoke(
        app,
        [
            "leaderboard",
            "--runs",
            str(out),
            "--dataset",
            "synthetic",
            "--format",
            "json",
            "--include-budget-cut",
        ],
    )
    groups = json.loads(board.stdout)["groups"]
    assert sorted(g["title"] for g in groups) == [
        "synthetic · preset=redundant",
        "synthetic · preset=synergy",
    ]
    bad = CliRunner().invoke(app, [*args, "--set", "data.preset=mixed"])
    assert bad.exit_code == 2 and "already sets the preset" in bad.output
