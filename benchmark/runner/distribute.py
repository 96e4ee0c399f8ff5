"""A sweep on an executor: the driver hands cells to workers; every guarantee stays in mmbench.

The driver (``mmbench sweep --executor NAME``) checks the request, loads each dataset spec once
to learn its record paths, and submits only the cells without a finished record. Each worker
(:func:`run_cell`) prepares the data itself (once per worker process), claims the cell with the
same lock file a sharded sweep uses, trains it and writes its record atomically into the sweep
folder, which every worker must see (a shared filesystem for SLURM or a multi-node Ray cluster).

* **Claimed once.** The cell lock (``<record stem>.lock``, ``O_CREAT | O_EXCL``) decides which
  worker trains a cell, whatever the engine; two drivers sharing one folder split the grid too.
* **Lost workers.** When the engine reports that a call's worker died (a killed process, a lost
  node, a cancelled job: :class:`~mmbench.runner.executor.WorkerLost`), the driver submits the
  cell again, up to ``max_attempts`` times; the new attempt takes over the dead worker's lock and
  removes its partial files. A record is one file replaced atomically, so no cell is duplicated.
* **Resumable.** A re-run submits nothing that has a finished record.
* **Progress.** One line per finished cell on stderr: cells done, running (claimed by a live
  lock), failed, and the ETA from this run's pace.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmbench.runner.executor import Executor, WorkerLost
from mmbench.runner.sweep import (
    Cell,
    CellResult,
    SweepRequest,
    SweepResult,
    cell_result,
    finished_record,
    lock_path,
    plan_sweep,
    prepare_spec,
    run_cell_locked,
)

#: Attempts of one cell before it is reported failed (a worker that dies every time).
MAX_ATTEMPTS = 3
#: Seconds between progress lines while no cell finishes.
TICK_SECONDS = 30.0


@dataclass(frozen=True)
class CellTask:
    """One cell as sent to a worker (picklable: the request is plain data)."""

    request: SweepRequest
    cell: Cell
    threads: int | None = None
    attempt: int = 1

    @property
    def force(self) -> bool:
        """A rerun after the engine reported the previous attempt's worker dead takes over its lock."""
        return self.attempt > 1


# ---------------------------------------------------------------------------- worker side
_PREPARED: dict[str, Any] = {}


def _prepared(request: SweepRequest, spec: str, registry: Any, device: str) -> tuple[Any, Any]:
    """The spec's prepared data and a lazy tensor builder, kept for the next cell of this worker."""
    import torch

    from mmbench.runner.run import SilentReporter
    from mmbench.training.tensors import split_tensors

    key = repr((spec, replace(request, shard=(1, 1)), device))
    if _PREPARED.get("key") != key:
        _PREPARED.clear()  # one spec at a time: a worker's memory holds one dataset
        cells = [Cell(spec, f, 0) for f in request.fusions]
        _PREPARED.update(key=key, prep=prepare_spec(request, spec, cells, registry, SilentReporter()))

    def tensors() -> dict[str, Any]:
        if "tensors" not in _PREPARED:
            dev_t = torch.device(device)
            data = _PREPARED["prep"].data
            _PREPARED["tensors"] = {s: split_tensors(data, s, dev_t) for s in ("train", "dev", "test")}
        return _PREPARED["tensors"]

    return _PREPARED["prep"], tensors


def run_cell(task: CellTask) -> CellResult:
    """Train one cell in this worker (any engine): prepare once, lock, train, write the record."""
    import torch

    from mmbench.registry import get_registry
    from mmbench.runner.run import SilentReporter, resolve_device, run_record_path
    from mmbench.runner.tracking import tracking

    if task.threads is not None:
        torch.set_num_threads(task.threads)
    registry = get_registry()
    device = resolve_device(task.request.device)
    prep, tensors = _prepared(task.request, task.cell.dataset, registry, device)
    path = run_record_path(prep, task.cell.fusion, task.cell.seed, task.cell.context)
    # --track: the trackers are active in the worker that trains the cell.
    with tracking(task.request.trackers, registry, Path(task.request.out_dir)):
        result = run_cell_locked(
            prep, task.cell, path, task.request, device, tensors, SilentReporter(), force=task.force
        )
    result.worker = f"{socket.gethostname()}:{os.getpid()}"
    return result


# ---------------------------------------------------------------------------- driver side
def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class SweepProgress:
    """Counts across workers and one status line: done, running, failed, ETA."""

    def __init__(self, total: int, reporter: Any) -> None:
        self.total, self.reporter = total, reporter
        self.done = self.failed = self.lost = 0
        self.start = time.monotonic()

    def eta(self) -> str:
        if self.done == 0:
            return "?"
        elapsed = time.monotonic() - self.start
        return _clock(elapsed / self.done * (self.total - self.done))

    def line(self, running: int) -> str:
        lost = f", {self.lost} worker(s) lost" if self.lost else ""
        return (
            f"{self.done}/{self.total} done, {running} running, {self.failed} failed{lost}, ETA {self.eta()}"
        )

    def finished(self, result: CellResult, running: int) -> None:
        self.done += 1
        self.failed += result.status == "failed"
        score = ""
        if result.score is not None and result.metric is not None:
            from mmbench.ui.tables import short_name

            score = f" test {short_name(result.metric, arrow=False)} {result.score:.4f}"
        note = f" ({result.note})" if result.note else ""
        where = f" on {result.worker}" if result.worker else ""
        self.reporter.log(
            f"{result.cell.label()}: {result.status}{score}{note}{where} — {self.line(running)}"
        )


def _running(inflight: dict[Future, CellTask], paths: dict[Cell, Path]) -> int:
    """In-flight cells a worker has claimed (their lock file exists)."""
    return sum(lock_path(paths[t.cell]).exists() for t in inflight.values())


def pending_cells(
    request: SweepRequest, registry: Any, reporter: Any
) -> tuple[int, list[CellResult], dict[Cell, Path]]:
    """The grid size, the cells finished before, and the record path of each cell left to run."""
    from mmbench.records import load_record
    from mmbench.runner.run import run_record_path

    grid, mine = plan_sweep(request, registry, reporter)
    existing: list[CellResult] = []
    todo: dict[Cell, Path] = {}
    for spec in sorted({c.dataset for c in mine}):
        cells = [c for c in mine if c.dataset == spec]
        prep = prepare_spec(request, spec, cells, registry, reporter)
        for cell in cells:
            path = run_record_path(prep, cell.fusion, cell.seed, cell.context)
            done = finished_record(load_record(path), request.retry_failed, prep.data.fingerprint)
            if done is not None:
                existing.append(cell_result(cell, "existing", done))
            else:
                todo[cell] = path
    return len(grid), existing, todo


def absolute_paths(request: SweepRequest) -> SweepRequest:
    """The request with its folder and files absolute: workers may start in another directory."""

    def absolute(path: Path | None) -> Path | None:
        return None if path is None else Path(path).expanduser().resolve()

    params = request.params
    if params and params != "tuned" and Path(params).expanduser().exists():
        params = str(Path(params).expanduser().resolve())
    return replace(
        request,
        out_dir=absolute(request.out_dir),
        data_path=absolute(request.data_path),
        protocol_file=absolute(request.protocol_file),
        params=params,
    )


def run_distributed(
    request: SweepRequest,
    registry: Any,
    executor: Executor,
    reporter: Any,
    max_attempts: int = MAX_ATTEMPTS,
    tick_seconds: float = TICK_SECONDS,
) -> SweepResult:
    """Run the request's unfinished cells on ``executor``; rerun cells whose worker was lost."""
    request = absolute_paths(request)
    grid_size, results, paths = pending_cells(request, registry, reporter)
    reporter.log(f"{len(paths)} cell(s) to run, {len(results)} finished before; {executor.describe()}")
    if paths:
        with executor:
            results += _drive(request, executor, paths, reporter, max_attempts, tick_seconds)
    results.sort(key=lambda r: r.cell)
    return SweepResult(grid_size, request.shard, results)


def _drive(
    request: SweepRequest,
    executor: Executor,
    paths: dict[Cell, Path],
    reporter: Any,
    max_attempts: int,
    tick_seconds: float,
) -> list[CellResult]:
    queue = deque(CellTask(request, cell, executor.threads) for cell in paths)
    inflight: dict[Future, CellTask] = {}
    progress = SweepProgress(len(paths), reporter)
    results: list[CellResult] = []
    while queue or inflight:
        room = len(queue) if executor.slots is None else executor.slots - len(inflight)
        batch = [queue.popleft() for _ in range(max(0, min(room, len(queue))))]
        if batch:
            inflight.update(zip(executor.submit(run_cell, batch), batch, strict=True))
        done, _ = wait(list(inflight), timeout=tick_seconds, return_when=FIRST_COMPLETED)
        if not done:
            reporter.log(f"sweep: {progress.line(_running(inflight, paths))}")
        for future in done:
            task = inflight.pop(future)
            try:
                result = executor.outcome(future)
            except WorkerLost as exc:
                if task.attempt < max_attempts:
                    progress.lost += 1
                    reporter.log(
                        f"{task.cell.label()}: worker lost ({exc}); rerunning it "
                        f"(attempt {task.attempt + 1} of {max_attempts})"
                    )
                    queue.appendleft(replace(task, attempt=task.attempt + 1))
                    continue
                result = CellResult(task.cell, "failed", note=f"worker lost {task.attempt} times: {exc}")
            except Exception as exc:  # the call itself raised on the worker
                result = CellResult(task.cell, "failed", note=f"{type(exc).__name__}: {exc}")
            result.attempts = task.attempt
            results.append(result)
            progress.finished(result, _running(inflight, paths))
    return results
