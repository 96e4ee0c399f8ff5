"""``slurm``: each call a SLURM job through submitit; the calls of one submission form one array job.

The jobs' pickles and logs go to ``<sweep folder>/slurm/`` (``%A_%a`` array job and task ids),
which, like the records, must be on a filesystem every node sees. ``cluster=local`` runs the
same code path with submitit's local executor (one subprocess per job, for tests and
workstations); ``cluster=slurm`` (the default where ``srun`` exists) submits with ``sbatch``.

A job that ends without a result (cancelled, timed out, preempted, its node failed) comes back
as :class:`~mmbench.runner.executor.WorkerLost`: the sweep driver submits the cell again and the
new job takes over its lock. A job whose call raised is a failed cell.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mmbench.errors import UsageError
from mmbench.runner.executor import Executor, WorkerLost

POLL_SECONDS = 1.0


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise UsageError("executor slurm needs submitit: pip install 'mmbench[slurm]'") from None
    return submitit


class SlurmExecutor(Executor):
    """Cells as SLURM jobs (array jobs of up to ``workers`` tasks at once)."""

    name = "slurm"
    options = {
        "cluster": (
            str,
            "",
            "slurm, or local (same code path, local subprocesses); default: slurm if srun exists",
        ),
        "partition": (str, "", "SLURM partition (sbatch --partition)"),
        "time": (int, 240, "time limit of one cell's job in minutes (sbatch --time)"),
        "mem_gb": (float, 0.0, "memory per job in GB (sbatch --mem); 0: the partition's default"),
        "account": (str, "", "sbatch --account"),
        "qos": (str, "", "sbatch --qos"),
        "constraint": (str, "", "sbatch --constraint (e.g. a GPU type)"),
        "setup": (str, "", "shell lines run before each job, separated by ';' (e.g. module load cuda)"),
        "job_name": (str, "mmbench", "sbatch --job-name"),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.settings["time"] < 1:
            raise UsageError(f"--executor-opt time={self.settings['time']}: minutes, at least 1")
        if self.settings["cluster"] not in ("", "slurm", "local"):
            raise UsageError(f"--executor-opt cluster={self.settings['cluster']}: slurm or local")
        self._executor: Any = None
        self._jobs: dict[Future, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # --------------------------------------------------------------------------- parameters
    @property
    def log_folder(self) -> Path:
        """Where submitit keeps job pickles and logs: ``<sweep folder>/slurm/<job id>``."""
        return Path(self.folder) / "slurm" / "%j"

    def sbatch_parameters(self) -> dict[str, Any]:
        """submitit's SLURM parameters (the names of ``sbatch`` options) for one cell's job."""
        s = self.settings
        params: dict[str, Any] = {
            "job_name": s["job_name"],
            "time": s["time"],
            "nodes": 1,
            "ntasks_per_node": 1,
            "cpus_per_task": self.threads,
            "array_parallelism": self.workers,
        }
        if self.gpus:
            params["gpus_per_node"] = math.ceil(self.gpus)
        if s["mem_gb"]:
            params["mem"] = f"{s['mem_gb']:g}GB"
        for key in ("partition", "account", "qos", "constraint"):
            if s[key]:
                params[key] = s[key]
        setup = [line.strip() for line in s["setup"].split(";") if line.strip()]
        if setup:
            params["setup"] = setup
        return params

    def sbatch_script(self, n_cells: int) -> str:
        """The sbatch file submitit writes for an array of ``n_cells`` cells (what SLURM receives)."""
        from submitit.slurm.slurm import _make_sbatch_string  # submitit's own renderer

        _submitit()
        command = "python -u -m submitit.core._submit " + str(self.log_folder)
        return _make_sbatch_string(
            command=command, folder=self.log_folder, map_count=n_cells, **self.sbatch_parameters()
        )

    # ------------------------------------------------------------------------------ engine
    @property
    def cluster(self) -> str:
        if self.settings["cluster"]:
            return self.settings["cluster"]
        import shutil

        return "slurm" if shutil.which("srun") else "local"

    @property
    def slots(self) -> int | None:
        # SLURM queues an array job itself (array_parallelism caps it); local jobs are processes.
        return None if self.cluster == "slurm" else self.workers

    def start(self) -> None:
        submitit = _submitit()
        if self.cluster == "slurm":
            try:
                self._executor = submitit.SlurmExecutor(folder=self.log_folder)
            except RuntimeError as exc:
                raise UsageError(f"executor slurm: {exc} (or use --executor-opt cluster=local)") from None
            self._executor.update_parameters(**self.sbatch_parameters())
        else:
            self._executor = submitit.LocalExecutor(folder=self.log_folder)
            self._executor.update_parameters(
                timeout_min=self.settings["time"], gpus_per_node=math.ceil(self.gpus)
            )
        self._watcher = threading.Thread(target=self._watch, name="mmbench-slurm-watch", daemon=True)
        self._watcher.start()

    def submit(self, fn: Callable[[Any], Any], args: list[Any]) -> list[Future]:
        with self._executor.batch():
            jobs = [self._executor.submit(fn, arg) for arg in args]
        futures = [Future() for _ in jobs]
        with self._lock:
            self._jobs.update(zip(futures, jobs, strict=True))
        return futures

    def _watch(self) -> None:
        """Resolve each job's future when submitit says the job is done."""
        while not self._stop.wait(POLL_SECONDS):
            with self._lock:
                items = list(self._jobs.items())
            for future, job in items:
                if not job.done():
                    continue
                with self._lock:
                    self._jobs.pop(future, None)
                try:
                    future.set_result(job.result())
                except Exception as exc:
                    future.set_exception(exc)

    def outcome(self, future: Future) -> Any:
        from submitit.core.utils import FailedJobError, UncompletedJobError

        try:
            return future.result()
        except FailedJobError as exc:  # the call raised inside the job
            raise RuntimeError(str(exc).strip().splitlines()[-1]) from exc
        except UncompletedJobError as exc:  # killed, cancelled, timed out, node failure
            raise WorkerLost(f"SLURM job ended without a result: {str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        with self._lock:
            pending = list(self._jobs.values())
            self._jobs.clear()
        for job in pending:  # interrupted driver: do not leave jobs training for nobody
            with contextlib.suppress(Exception):
                job.cancel(check=False)
