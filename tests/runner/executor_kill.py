"""Kill one worker in the middle of a cell of a distributed sweep, then check the grid (shared by engines)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mmbench.records import is_record_file, load_record


def _first_heartbeat(folder: Path, deadline: float, proc: subprocess.Popen) -> Path:
    """A cell's lock once an epoch of it has ended (its mtime moved): training is under way."""
    seen: dict[Path, int] = {}
    while time.time() < deadline:
        assert proc.poll() is None, f"the sweep ended before a cell was killed:\n{proc.communicate()[1]}"
        for lock in folder.glob("*.lock") if folder.exists() else []:
            try:
                mtime = lock.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            if lock in seen and mtime != seen[lock]:
                return lock
            seen.setdefault(lock, mtime)
        time.sleep(0.005)
    raise AssertionError("no cell of the sweep reached its first epoch in time")


def kill_a_worker_mid_cell(args: list[str], folder: Path, timeout: float = 300) -> dict[str, Any]:
    """Run ``mmbench ARGS`` (a JSON sweep), SIGKILL the worker training a cell, check the outcome.

    Checks: the driver exits 0, every cell is trained exactly once with a complete record, the
    killed cell was run twice (attempts 2), no lock or partial file is left behind.
    """
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmbench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        lock = _first_heartbeat(folder, time.time() + timeout, proc)
        owner = json.loads(lock.read_text())
        os.kill(owner["pid"], signal.SIGKILL)
        killed_record = lock.with_name(lock.name[: -len(".lock")] + ".json")
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err
    cells = json.loads(out)["cells"]
    assert {c["status"] for c in cells} == {"trained"}, cells
    killed = [c for c in cells if Path(c["record"]) == killed_record]
    assert len(killed) == 1 and killed[0]["attempts"] == 2, (killed, err)
    assert killed[0]["worker"] != f"{owner['host']}:{owner['pid']}"  # rerun by a live worker
    assert "worker lost" in err
    records = sorted(p for p in folder.glob("*.json") if is_record_file(p))
    assert len(records) == len(cells)  # one record per cell: no duplicates
    max_epochs = int(args[args.index("--max-epochs") + 1])
    for path in records:
        record = load_record(path)
        assert record["status"] == "ok" and len(record["history"]) == max_epochs
    assert not list(folder.glob("*.lock")) and not list(folder.glob(".*.tmp"))
    return {"killed_host": owner["host"], "killed_pid": owner["pid"], "cells": cells, "log": err}
