"""``ray``: each call a Ray task, ``num_cpus`` = threads and ``num_gpus`` = GPUs per cell.

``address`` names the cluster: ``auto`` (the cluster ``ray start`` runs on this machine),
``ray://HOST:10001`` (Ray Client) or ``HOST:6379``; empty starts a private Ray instance on this
machine (on the loopback address) and stops it at the end. Ray's own task retries are off: a
task whose worker or node died comes back as :class:`~mmbench.runner.executor.WorkerLost` and
the sweep driver reruns the cell, taking over its lock, so the retry follows mmbench's rules.
Every node must have mmbench (and the plugins the sweep uses) installed and see the sweep folder.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from mmbench.errors import UsageError
from mmbench.runner.executor import Executor, WorkerLost

#: Ray errors meaning "the worker, its node or the object store is gone", not "the call raised".
_LOST = (
    "WorkerCrashedError",
    "NodeDiedError",
    "LocalRayletDiedError",
    "ObjectLostError",
    "OwnerDiedError",
    "ObjectReconstructionFailedError",
    "OutOfMemoryError",
    "TaskCancelledError",
)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("executor ray needs Ray: pip install 'mmbench[ray]'") from None
    return ray


class RayExecutor(Executor):
    """Cells as Ray tasks; ``workers`` caps the tasks in flight."""

    name = "ray"
    options = {
        "address": (str, "", "auto, ray://HOST:10001 or HOST:PORT; empty: a private local instance"),
        "namespace": (str, "mmbench", "Ray namespace of the driver"),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._started = False
        self._remote: Any = None
        self._stdout: Any = None

    def start(self) -> None:
        ray = _ray()
        if ray.is_initialized():
            return
        address = self.settings["address"] or None
        kwargs: dict[str, Any] = {
            "namespace": self.settings["namespace"],
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address is None:
            # A private instance: this machine's workers only, on the loopback address.
            kwargs.update(num_cpus=self.workers * self.threads, num_gpus=None, _node_ip_address="127.0.0.1")
        # Ray's driver prints worker deaths to stdout; stdout carries mmbench's results only.
        self._stdout, sys.stdout = sys.stdout, sys.stderr
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            sys.stdout = self._stdout
            raise UsageError(f"--address {address}: cannot connect to a Ray cluster: {exc}") from None
        self._started = True

    def submit(self, fn: Callable[[Any], Any], args: list[Any]) -> list[Future]:
        ray = _ray()
        if self._remote is None or self._remote[0] is not fn:
            task = ray.remote(fn).options(
                num_cpus=self.threads, num_gpus=self.gpus, max_retries=0, retry_exceptions=False
            )
            self._remote = (fn, task)
        return [self._remote[1].remote(arg).future() for arg in args]

    def outcome(self, future: Future) -> Any:
        ray = _ray()
        lost = tuple(getattr(ray.exceptions, n) for n in _LOST if hasattr(ray.exceptions, n))
        try:
            return future.result()
        except lost as exc:
            raise WorkerLost(f"Ray: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else None
            raise (cause or exc) from None

    def close(self) -> None:
        if self._started:
            _ray().shutdown()
            self._started = False
        if self._stdout is not None:
            sys.stdout, self._stdout = self._stdout, None
