"""``process``: a pool of local worker processes, each with its own threads and (when there are GPUs) GPU.

Each worker slot is its own single-process pool, so a worker that dies (killed, out of memory)
loses only its own call: the driver reruns that cell and the slot gets a fresh process. Workers
are started with ``spawn`` (a clean interpreter: no forked torch or CUDA state); before anything
imports torch, a worker sets ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` to its thread share and
``CUDA_VISIBLE_DEVICES`` to its GPU (slot ``i`` gets the ``i``-th visible GPU, round robin).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mmbench.errors import UsageError
from mmbench.runner.executor import Executor, WorkerLost

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _init_worker(threads: int, cuda_devices: str | None) -> None:
    """Runs first in each worker process, before torch is imported."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    if cuda_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = cuda_devices


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` or all that torch sees."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


class ProcessExecutor(Executor):
    """``workers`` local processes; ``threads`` CPU threads each (default: cores / workers)."""

    name = "process"
    options = {
        "gpu_ids": (str, "", "comma-separated GPU ids to spread workers over (default: all visible)"),
        "start_method": (str, "spawn", "multiprocessing start method: spawn, forkserver or fork"),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.settings["start_method"] not in multiprocessing.get_all_start_methods():
            methods = ", ".join(multiprocessing.get_all_start_methods())
            raise UsageError(f"--executor-opt start_method={self.settings['start_method']}: one of {methods}")
        self._pools: list[ProcessPoolExecutor | None] = [None] * self.workers
        self._slot_of: dict[Future, int] = {}
        self._gpus: list[str] = []

    def start(self) -> None:
        chosen = [g.strip() for g in self.settings["gpu_ids"].split(",") if g.strip()]
        self._gpus = chosen or visible_gpus()

    def _devices(self, slot: int) -> str | None:
        if not self._gpus:
            return None
        return self._gpus[slot % len(self._gpus)]

    def _pool(self, slot: int) -> ProcessPoolExecutor:
        pool = self._pools[slot]
        if pool is None:
            pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context(self.settings["start_method"]),
                initializer=_init_worker,
                initargs=(self.threads, self._devices(slot)),
            )
            self._pools[slot] = pool
        return pool

    def _replace(self, slot: int) -> None:
        pool, self._pools[slot] = self._pools[slot], None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, fn: Callable[[Any], Any], args: list[Any]) -> list[Future]:
        busy = {s for f, s in self._slot_of.items() if not f.done()}
        free = [s for s in range(self.workers) if s not in busy]
        if len(args) > len(free):
            raise RuntimeError(f"{len(args)} calls for {len(free)} free worker slot(s)")
        futures = []
        for slot, arg in zip(free, args, strict=False):
            try:
                future = self._pool(slot).submit(fn, arg)
            except BrokenProcessPool:  # its last worker died after the driver looked
                self._replace(slot)
                future = self._pool(slot).submit(fn, arg)
            self._slot_of[future] = slot
            futures.append(future)
        return futures

    def outcome(self, future: Future) -> Any:
        slot = self._slot_of.pop(future, None)
        try:
            return future.result()
        except BrokenProcessPool as exc:
            if slot is not None:
                self._replace(slot)
            raise WorkerLost(f"worker process {slot} died") from exc

    def close(self) -> None:
        for slot in range(self.workers):
            pool, self._pools[slot] = self._pools[slot], None
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
