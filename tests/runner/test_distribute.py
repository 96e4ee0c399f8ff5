"""Sweeps on executors: the driver's guarantees (claimed once, lost workers rerun, resume) and options."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import Future

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import UsageError
from mmbench.records import is_record_file
from mmbench.registry.manager import build_registry
from mmbench.runner.distribute import CellTask, run_distributed
from mmbench.runner.executor import Executor, WorkerLost, build_executor, completed, parse_option_pairs
from mmbench.runner.sweep import Cell, SweepRequest, lock_path
from mmbench.tuning.storage import storage_target
from mmbench.tuning.study import TuneRequest
from mmbench.tuning.workers import shared_storage, split_trials, worker_tasks

REGISTRY, _ = build_registry()
TINY = ["data.n_samples=200"]


def _request(out, fusions=("concat",), seeds=(0, 1)) -> SweepRequest:
    return SweepRequest(
        fusions=list(fusions),
        seeds=list(seeds),
        overrides=list(TINY),
        max_epochs=1,
        device="cpu",
        out_dir=out,
        save_checkpoints=False,
    )


class DyingOnce(Executor):
    """Runs calls here; the first attempt of ``victim`` 'dies' after claiming the cell elsewhere."""

    name = "dying-once"

    def __init__(self, victim: Cell, paths: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.victim, self.paths, self.calls = victim, paths, []

    def submit(self, fn, args: list) -> list[Future]:
        futures = []
        for task in args:
            self.calls.append((task.cell, task.attempt))
            if task.cell == self.victim and task.attempt == 1:
                # A worker on another host claimed the cell and its node died: the lock looks live.
                lock = lock_path(self.paths[task.cell])
                lock.parent.mkdir(parents=True, exist_ok=True)
                owner = {"host": "node-that-died", "pid": 4242, "process_start": "1", "since": time.time()}
                lock.write_text(json.dumps(owner))
                futures.append(completed(error=WorkerLost("node-that-died lost")))
            else:
                futures.append(completed(fn(task)))
        return futures


def test_lost_worker_cell_is_rerun_taking_over_its_lock(tmp_path):
    from mmbench.runner.distribute import pending_cells
    from mmbench.runner.run import SilentReporter

    request = _request(tmp_path / "runs")
    _, _, paths = pending_cells(request, REGISTRY, SilentReporter())
    victim = Cell("synthetic", "concat", 1)
    executor = DyingOnce(victim, paths, workers=2)
    result = run_distributed(request, REGISTRY, executor, SilentReporter())
    assert [c.status for c in result.cells] == ["trained", "trained"]
    assert {c.cell: c.attempts for c in result.cells} == {Cell("synthetic", "concat", 0): 1, victim: 2}
    assert (victim, 2) in executor.calls
    records = [p for p in (tmp_path / "runs" / "synthetic").glob("*.json") if is_record_file(p)]
    assert len(records) == 2 and not list((tmp_path / "runs").rglob("*.lock"))
    # A re-run submits nothing: every cell has its record.
    again = DyingOnce(victim, paths, workers=2)
    rerun = run_distributed(request, REGISTRY, again, SilentReporter())
    assert again.calls == [] and {c.status for c in rerun.cells} == {"existing"}


def test_a_cell_lost_every_time_is_failed_not_retried_forever(tmp_path):
    from mmbench.runner.run import SilentReporter

    class AlwaysLost(Executor):
        name = "always-lost"

        def submit(self, fn, args):
            return [completed(error=WorkerLost("gone")) for _ in args]

    request = _request(tmp_path / "runs", seeds=(0,))
    result = run_distributed(request, REGISTRY, AlwaysLost(), SilentReporter(), max_attempts=2)
    (cell,) = result.cells
    assert cell.status == "failed" and cell.attempts == 2 and "lost 2 times" in cell.note


def test_cell_tasks_pickle_and_force_only_on_reruns(tmp_path):
    import pickle

    task = CellTask(_request(tmp_path), Cell("synthetic", "concat", 0), threads=1)
    assert pickle.loads(pickle.dumps(task)) == task
    assert not task.force and CellTask(task.request, task.cell, 1, attempt=2).force


def test_executor_options_are_typed_and_checked():
    assert parse_option_pairs(["address=auto", "time=30"]) == {"address": "auto", "time": "30"}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_option_pairs(["partition"])
    slurm = build_executor(REGISTRY, "slurm", 4, 1.0, 2, None, {"time": "30", "partition": "gpu"})
    assert slurm.settings["time"] == 30 and slurm.threads == 2 and slurm.workers == 4
    with pytest.raises(UsageError, match="expects a int"):
        build_executor(REGISTRY, "slurm", options={"time": "soon"})
    with pytest.raises(UsageError, match="no such option.*options: account"):
        build_executor(REGISTRY, "slurm", options={"partiton": "gpu"})
    with pytest.raises(UsageError, match="use --executor process"):
        build_executor(REGISTRY, "local", workers=2)
    with pytest.raises(UsageError, match="at least 1"):
        build_executor(REGISTRY, "process", workers=0)


def test_executor_plugins_import_no_engine():
    code = (
        "import sys; from mmbench.registry import get_registry; r = get_registry();"
        "print(r.names('executor')); [r.get('executor', n).load() for n in r.names('executor')];"
        "print(sorted(m for m in ('ray', 'submitit', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["['local', 'process', 'ray', 'slurm']", "[]"]


def test_cli_refuses_unknown_executor_and_bad_options(tmp_path):
    runner = CliRunner()
    base = ["sweep", "--fusion", "concat", "--seeds", "0", "--out", str(tmp_path)]
    result = runner.invoke(app, [*base, "--executor", "proces"])
    assert result.exit_code == 2 and "Did you mean" in result.output and "process" in result.output
    result = runner.invoke(app, [*base, "--executor", "process", "--executor-opt", "gpu_ids"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = runner.invoke(app, [*base, "--executor", "process", "--address", "auto"])
    assert result.exit_code == 2 and "no such option" in result.output


def test_tuning_workers_split_trials_and_need_a_shared_storage(tmp_path):
    from mmbench.runner.run import RunRequest

    assert split_trials(5, 2) == [3, 2] and split_trials(1, 3) == [1] and sum(split_trials(20, 3)) == 20
    request = TuneRequest(run=RunRequest(), fusion="concat", trials=5, storage=str(tmp_path / "s.db"))
    with pytest.raises(UsageError, match="journal file"):
        shared_storage(request)
    journal = TuneRequest(run=RunRequest(), fusion="concat", trials=5, storage="s.log")
    tasks = worker_tasks(journal, 2, 1)
    assert [t.request.trials for t in tasks] == [3, 2]
    assert storage_target(tasks[0].request.storage)[1].startswith("/")  # absolute for remote workers
    total = TuneRequest(run=RunRequest(), fusion="concat", trials=None, total=9, storage="s.log")
    assert [t.request.total for t in worker_tasks(total, 3, 1)] == [9, 9, 9]


# ------------------------------------------------------------------------- the process executor
def _board(runs) -> list[dict]:
    """The leaderboard rows (metrics, per-class F1, significance), timing and memory left out."""
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
            row["params"] = row.pop("efficiency")["params"]
            rows.append(row)
    return rows


SWEEP = ["sweep", "--fusion", "concat,late", "--seeds", "0-2", "--max-epochs", "2", "--device", "cpu"]
SWEEP += ["--set", "data.n_samples=240", "--no-checkpoints", "--format", "json"]


@pytest.mark.distributed
def test_process_sweep_equals_local_and_resumes(tmp_path):
    runner = CliRunner()
    # Records are bit-identical at equal threads per cell (a thread count changes float reductions;
    # records keep environment.torch_threads): the pool's workers get 1 thread each on 2 cores.
    # A pool task trains one cell, so the local sweep trains its seeds one at a time too (a vectorised
    # cell draws its dropout masks in another order).
    one_at_a_time = ["--set", "train.seed_batching=false"]
    local = runner.invoke(app, [*SWEEP, *one_at_a_time, "--out", str(tmp_path / "local"), "--threads", "1"])
    assert local.exit_code == 0, local.output
    pooled = runner.invoke(
        app,
        [
            *SWEEP,
            "--out",
            str(tmp_path / "pool"),
            "--executor",
            "process",
            "--workers",
            "2",
            "--threads",
            "1",
        ],
    )
    assert pooled.exit_code == 0, pooled.output
    cells = json.loads(pooled.stdout)["cells"]
    assert len(cells) == 6 and {c["status"] for c in cells} == {"trained"}
    assert len({c["worker"] for c in cells}) == 2  # both worker processes trained cells
    assert _board(tmp_path / "pool") == _board(tmp_path / "local")
    again = runner.invoke(
        app, [*SWEEP, "--out", str(tmp_path / "pool"), "--executor", "process", "--workers", "2"]
    )
    assert again.exit_code == 0 and {c["status"] for c in json.loads(again.stdout)["cells"]} == {"existing"}


@pytest.mark.distributed
def test_process_worker_killed_mid_cell_is_rerun(tmp_path):
    from tests.runner.executor_kill import kill_a_worker_mid_cell

    out = tmp_path / "runs"
    args = ["sweep", "--fusion", "concat", "--seeds", "0-1", "--max-epochs", "6", "--device", "cpu"]
    args += ["--set", "data.n_samples=300", "--set", "train.patience=100", "--no-checkpoints"]
    args += ["--out", str(out), "--format", "json", "--executor", "process", "--workers", "2"]
    report = kill_a_worker_mid_cell(args, out / "synthetic")
    assert report["killed_host"] == socket.gethostname()
