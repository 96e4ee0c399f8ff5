"""``local``: every call in this process, one after the other (the sweep shares its prepared data)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from mmbench.errors import UsageError
from mmbench.runner.executor import Executor, completed


class LocalExecutor(Executor):
    """Runs calls synchronously in the calling process; ``workers`` must be 1."""

    name = "local"
    in_process = True

    def __init__(self, workers: int = 1, **kwargs: Any) -> None:
        if workers != 1:
            raise UsageError(
                f"executor local runs one cell at a time (--workers {workers}); "
                "use --executor process for several local workers"
            )
        super().__init__(workers=workers, **kwargs)

    def submit(self, fn: Callable[[Any], Any], args: list[Any]) -> list[Future]:
        futures = []
        for arg in args:
            try:
                futures.append(completed(fn(arg)))
            except Exception as exc:  # handed to the caller through the future, like other engines
                futures.append(completed(error=exc))
        return futures
