"""The executor contract: where the cells of a sweep and the workers of a tuning study run.

An executor is a plugin (hook ``mmbench_register_executors``) deriving from :class:`Executor`.
It runs picklable calls ``fn(arg)`` somewhere (this process, a local process pool, a Ray
cluster, SLURM jobs) and hands back one :class:`concurrent.futures.Future` per call. The sweep
driver (:mod:`mmbench.runner.distribute`) owns every guarantee that does not depend on the
engine: which cells are left, the cell locks, retries of lost cells, progress. An executor only
has to say, through :meth:`Executor.outcome`, whether a call returned, raised, or was lost
because its worker (process, node, job) died: :class:`WorkerLost`.

The core never imports an engine; the built-in executors (``local``, ``process``, ``ray``,
``slurm``) live in ``mmbench.plugins.executors`` and import theirs when they are built.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar

from mmbench.errors import UsageError


class WorkerLost(Exception):
    """A call produced no result because its worker died (killed, out of memory, node lost).

    The sweep driver reruns the cell; the call's own exceptions are not ``WorkerLost``.
    """


def parse_option_pairs(values: list[str] | None) -> dict[str, str]:
    """``["address=auto", "partition=gpu"]`` -> ``{"address": "auto", "partition": "gpu"}``."""
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--executor-opt expects KEY=VALUE (e.g. partition=gpu), got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _convert(executor: str, key: str, raw: Any, kind: type) -> Any:
    if not isinstance(raw, str) or kind is str:
        return raw
    try:
        if kind is bool:
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(raw)
            return raw.lower() in {"1", "true", "yes"}
        return kind(raw)
    except ValueError:
        raise UsageError(
            f"--executor-opt {key}={raw}: executor {executor!r} expects a {kind.__name__}"
        ) from None


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class Executor:
    """Base class of executors.

    Subclasses set :attr:`name`, :attr:`options` (option name -> (type, default, help)) and
    implement :meth:`submit`; they may override :meth:`start`, :meth:`outcome`, :meth:`close`.

    ``workers`` is how many calls run at once (for engines that schedule by resources it caps
    the calls in flight); ``gpus`` is the GPUs one call gets (0 on CPU machines); ``threads``
    the CPU threads one call may use (``None``: the machine's cores divided by ``workers``, so
    that workers do not oversubscribe them); ``folder`` where the executor may keep logs.
    """

    name: ClassVar[str] = ""
    #: Option name -> (type, default, one-line help); ``--executor-opt KEY=VALUE`` sets them.
    options: ClassVar[dict[str, tuple[type, Any, str]]] = {}
    #: Calls run in the calling process (the sweep then shares its prepared data with them).
    in_process: ClassVar[bool] = False

    def __init__(
        self,
        workers: int = 1,
        gpus: float = 0.0,
        threads: int | None = None,
        folder: Path | None = None,
        **options: Any,
    ) -> None:
        if workers < 1:
            raise UsageError(f"--workers must be at least 1, got {workers}")
        if gpus < 0:
            raise UsageError(f"--gpus-per-cell must not be negative, got {gpus}")
        if threads is not None and threads < 1:
            raise UsageError(f"--threads must be at least 1, got {threads}")
        self.workers = workers
        self.gpus = gpus
        #: ``--threads`` was given (an in-process executor then sets torch's thread count).
        self.threads_given = threads is not None
        self.threads = threads if threads is not None else max(1, available_cores() // workers)
        self.folder = Path(folder) if folder is not None else Path("runs")
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise UsageError(
                f"--executor-opt {unknown[0]}: executor {self.name!r} has no such option (options: {known})"
            )
        self.settings: dict[str, Any] = {k: default for k, (_, default, _) in self.options.items()}
        for key, raw in options.items():
            self.settings[key] = _convert(self.name, key, raw, self.options[key][0])

    # ----------------------------------------------------------------------- to implement
    @property
    def slots(self) -> int | None:
        """Calls the driver keeps in flight (``None``: submit everything, the engine queues)."""
        return self.workers

    def start(self) -> None:
        """Connect to or start the engine (called once, before the first :meth:`submit`)."""

    def submit(self, fn: Callable[[Any], Any], args: list[Any]) -> list[Future]:
        """Run ``fn(arg)`` for each arg; one future per arg, in order."""
        raise NotImplementedError

    def outcome(self, future: Future) -> Any:
        """The call's return value; its own exception re-raised; :class:`WorkerLost` if its worker died."""
        return future.result()

    def close(self) -> None:
        """Release the engine's resources (pools, a Ray instance this executor started)."""

    def describe(self) -> str:
        """One line for logs: the executor, its workers and its settings."""
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items() if v not in (None, ""))
        gpus = f", {self.gpus:g} GPU per call" if self.gpus else ""
        return f"executor {self.name}: {self.workers} worker(s), {self.threads} thread(s) per call{gpus}" + (
            f" ({settings})" if settings else ""
        )

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def completed(value: Any = None, error: BaseException | None = None) -> Future:
    """A future that is already done (for executors that run calls synchronously)."""
    future: Future = Future()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
    return future


def build_executor(
    registry: Any,
    name: str,
    workers: int = 1,
    gpus: float = 0.0,
    threads: int | None = None,
    folder: Path | None = None,
    options: dict[str, str] | None = None,
) -> Executor:
    """The executor ``name`` from the registry, constructed with its options (usage errors on bad ones)."""
    cls = registry.get("executor", name).load()
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise UsageError(f"executor {name!r} does not derive from mmbench.runner.executor.Executor")
    return cls(workers=workers, gpus=gpus, threads=threads, folder=folder, **(options or {}))
