"""Parallel tuning: N workers of one Optuna study on an executor (process pool, Ray, SLURM).

Every worker runs :func:`mmbench.tuning.study.tune` on the same study in a storage they all
reach: a journal file (workers on one machine, or on a shared folder for SLURM) or a database
URL such as PostgreSQL (workers on several machines). Optuna's storage is the bookkeeping: the
study is created by exactly one worker, which alone enqueues the default-parameter trial; TPE's
constant liar keeps workers from proposing the same point. ``--trials N`` is split between the
workers so the study gains exactly N trials; ``--total N`` lets each run until the study has N.

A worker that dies leaves its trial RUNNING: the next ``mmbench tune`` marks it failed (dead
process on the same host) or the RDB heartbeat does (other hosts), and the study resumes.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmbench.errors import RunFailed, UsageError
from mmbench.runner.executor import Executor, WorkerLost
from mmbench.tuning.storage import fail_orphans, open_storage, storage_label, storage_target
from mmbench.tuning.study import TuneRequest, finished_count, load_study, study_name_for

TICK_SECONDS = 30.0


@dataclass(frozen=True)
class TuneWorkerTask:
    """One worker's share of a study (picklable)."""

    request: TuneRequest
    index: int
    threads: int | None = None


@dataclass
class WorkerReport:
    index: int
    worker: str
    ran: int = 0
    created: bool = False
    interrupted: bool = False
    failed: list[str] | None = None
    error: str | None = None


def split_trials(trials: int, workers: int) -> list[int]:
    """``trials`` split into ``workers`` shares differing by at most one (zeros dropped)."""
    shares = [trials // workers + (i < trials % workers) for i in range(workers)]
    return [n for n in shares if n > 0]


def shared_storage(request: TuneRequest) -> TuneRequest:
    """The request with a storage every worker reaches: a URL or an absolute journal path.

    SQLite files are refused: SQLite does not take concurrent writers from several processes.
    """
    kind, target = storage_target(request.storage)
    if kind == "sqlite":
        raise UsageError(
            f"--storage {storage_label(request.storage)}: several tuning workers need a storage "
            "they can share: a journal file (e.g. --storage runs/tuning/study.log; on a folder every "
            "node sees for SLURM) or a database URL (postgresql://USER@HOST/DB)"
        )
    if kind == "journal":
        return replace(request, storage=str(Path(target).resolve()))
    return request


def tune_worker(task: TuneWorkerTask) -> WorkerReport:
    """Run one worker's trials of the study (in whatever process the executor chose)."""
    import optuna
    import torch

    from mmbench.registry import get_registry
    from mmbench.tuning.study import tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the driver reports progress
    if task.threads is not None:
        torch.set_num_threads(task.threads)
    report = WorkerReport(task.index, f"{socket.gethostname()}:{os.getpid()}")
    try:
        result = tune(task.request, get_registry())
    except RunFailed as exc:  # every trial of this worker failed: the summary shows why
        report.error = str(exc)
        return report
    report.ran, report.created, report.interrupted = result.ran, result.created, result.interrupted
    report.failed = list(result.failed_here)
    return report


def _absolute(request: TuneRequest) -> TuneRequest:
    run = request.run
    run = replace(
        run,
        data_path=Path(run.data_path).resolve() if run.data_path else None,
        protocol_file=Path(run.protocol_file).resolve() if run.protocol_file else None,
    )
    space = Path(request.space_file).resolve() if request.space_file else None
    return replace(request, run=run, space_file=space)


def worker_tasks(request: TuneRequest, workers: int, threads: int | None) -> list[TuneWorkerTask]:
    """One task per worker; ``--trials`` split between them, ``--total`` and ``--timeout`` shared."""
    request = _absolute(shared_storage(request))
    if request.trials is not None and request.total is None:
        shares = split_trials(request.trials, workers)
        return [TuneWorkerTask(replace(request, trials=n), i, threads) for i, n in enumerate(shares)]
    return [TuneWorkerTask(request, i, threads) for i in range(workers)]


def study_of(request: TuneRequest, registry: Any, reporter: Any) -> str:
    """The study's name (``--study-name``, or dataset-fusion-fingerprint), from the data prepared here.

    Preparing in the driver also refuses bad input (exit 2) before any worker starts.
    """
    from mmbench.runner.run import prepare

    for name, value in (("--trials", request.trials), ("--total", request.total)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    registry.get("fusion", request.fusion)
    prep = prepare(request.run, registry, reporter)
    return request.study_name or study_name_for(
        request.run.dataset, request.fusion, prep.protocol_fingerprint
    )


def tune_on(
    request: TuneRequest,
    registry: Any,
    executor: Executor,
    reporter: Any,
    tick_seconds: float = TICK_SECONDS,
) -> tuple[Any, list[WorkerReport]]:
    """Run ``executor.workers`` tuning workers of one study; return the study and their reports."""
    request = replace(shared_storage(request), study_name=study_of(request, registry, reporter))
    tasks = worker_tasks(request, executor.workers, executor.threads)
    _end_orphans(request, reporter)
    reporter.log(f"study {request.study_name}: {len(tasks)} worker(s); {executor.describe()}")
    reports: list[WorkerReport] = []
    with executor:
        futures: dict[Future, TuneWorkerTask] = {}
        queue = list(tasks)
        while queue or futures:
            room = len(queue) if executor.slots is None else executor.slots - len(futures)
            batch, queue = queue[: max(0, room)], queue[max(0, room) :]
            if batch:
                futures.update(zip(executor.submit(tune_worker, batch), batch, strict=True))
            done, _ = wait(list(futures), timeout=tick_seconds, return_when=FIRST_COMPLETED)
            if not done:
                _log_study(request, reporter)
            for future in done:
                task = futures.pop(future)
                try:
                    report = executor.outcome(future)
                except WorkerLost as exc:
                    report = WorkerReport(task.index, "?", error=f"worker lost: {exc}")
                except Exception as exc:
                    report = WorkerReport(task.index, "?", error=f"{type(exc).__name__}: {exc}")
                reports.append(report)
                note = f", error: {report.error}" if report.error else ""
                reporter.log(f"tuning worker {report.index} ({report.worker}): {report.ran} trial(s){note}")
    if not any(r.ran for r in reports) and all(r.error for r in reports):
        raise RunFailed("no tuning worker finished a trial: " + "; ".join(str(r.error) for r in reports[:3]))
    study = load_study(open_storage(request.storage), request.study_name)
    return study, sorted(reports, key=lambda r: r.index)


def _end_orphans(request: TuneRequest, reporter: Any) -> None:
    """Mark trials of dead workers on this host as failed before the new workers start."""
    import optuna

    storage = open_storage(request.storage)
    try:
        study = optuna.load_study(study_name=request.study_name, storage=storage)
    except KeyError:  # a new study
        return
    orphans = fail_orphans(study)
    if orphans:
        reporter.log(f"marked trials {orphans} as failed: their worker process on this machine died")


def _log_study(request: TuneRequest, reporter: Any) -> None:
    """A progress line from the storage: trials finished so far by all workers."""
    try:
        study = load_study(open_storage(request.storage), request.study_name)
        reporter.log(f"tuning: {finished_count(study)} trial(s) finished in study {request.study_name}")
    except Exception as exc:  # progress only: never fail the study over a status line
        reporter.log(f"tuning: progress unavailable ({type(exc).__name__}: {exc})")
