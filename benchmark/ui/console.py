"""Terminal output: logs and progress bars on stderr, results on stdout.

* Width: ``COLUMNS`` wins whenever it is set (also when the output is piped); otherwise the terminal's
  width, and 160 columns for piped stdout so tables are not squeezed into 80.
* Off a terminal, stderr lines are never hard-wrapped (a log line stays one line in a batch job's log)
  and progress bars turn into one log line per epoch (epoch, train loss, dev metric, lr, elapsed, ETA),
  at most one every ``MMBENCH_LOG_SECONDS`` seconds (default 1; the first and last epochs always).
* On a terminal, multi-run commands show one bar per run plus an overall bar with its ETA.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: Width of piped stdout when ``COLUMNS`` is not set.
PIPED_WIDTH = 160


def env_columns() -> int | None:
    """``COLUMNS`` as an int, or None when unset or not a positive number."""
    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


class HouseConsole(Console):
    """A rich console whose width follows ``COLUMNS`` at print time (not only at import) and whose
    lines are soft-wrapped (never split by the console) when it does not write to a terminal."""

    def __init__(self, *args: Any, piped_width: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.piped_width = piped_width

    def _size(self) -> ConsoleDimensions:
        base = Console.size.fget(self)  # type: ignore[attr-defined]
        columns = env_columns()
        if columns is not None:
            return ConsoleDimensions(columns, base.height)
        if not self.is_terminal and self.piped_width is not None:
            return ConsoleDimensions(self.piped_width, base.height)
        return base

    size = property(_size, Console.size.fset)  # type: ignore[attr-defined,assignment]

    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:  # noqa: A003
        if soft_wrap is None and not self.is_terminal and self.stderr:
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)


err_console = HouseConsole(stderr=True, highlight=False)
out_console = HouseConsole(highlight=False, piped_width=PIPED_WIDTH)


def debug_enabled() -> bool:
    return os.environ.get("MMBENCH_DEBUG", "").strip().lower() in {"1", "true", "yes"}


def log_interval() -> float:
    """Minimum seconds between two per-epoch log lines off a terminal (``MMBENCH_LOG_SECONDS``)."""
    try:
        return max(0.0, float(os.environ.get("MMBENCH_LOG_SECONDS", "1")))
    except ValueError:
        return 1.0


def fmt_seconds(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def epoch_line(label: str, epoch: int, max_epochs: int, logs: dict[str, float], elapsed: float) -> str:
    """One log line for an epoch: ``concat seed 0 epoch 3/50 train_loss=… dev_weighted_f1=… lr=…
    elapsed 4s eta<=1m02s`` (the ETA is an upper bound: early stopping may end the run sooner)."""
    parts = [f"{label} epoch {epoch}/{max_epochs}"]
    parts += [f"{k}={logs[k]:.4f}" for k in ("train_loss", "dev_loss") if k in logs]
    parts += [f"{k}={v:.4f}" for k, v in logs.items() if k.startswith("dev_") and k != "dev_loss"]
    if "lr" in logs:
        parts.append(f"lr={logs['lr']:.2e}")
    eta = elapsed / max(epoch, 1) * max(max_epochs - epoch, 0)
    parts.append(f"elapsed {fmt_seconds(elapsed)} eta<={fmt_seconds(eta)}")
    return " ".join(parts)


class RichReporter:
    """Progress of training runs on stderr.

    On a terminal: a bar per run (epochs, loss, dev metric) and, once ``expect_runs(n)`` announced
    several runs, an overall bar with its ETA. Off a terminal: per-epoch log lines (rate-limited by
    ``MMBENCH_LOG_SECONDS``) and one line per finished run with the overall ETA.
    """

    def __init__(self, console: Console = err_console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: Any = None
        self.overall: Any = None
        self.metric_key: str | None = None
        self.total_runs = 0
        self.done_runs = 0
        self.started = time.perf_counter()
        self.label = ""
        self.max_epochs = 0
        self.run_t0 = 0.0
        self.last_line = 0.0

    @property
    def live(self) -> bool:
        return self.console.is_terminal

    def log(self, message: str) -> None:
        self.console.print(f"[dim]mmbench:[/dim] {message}")

    def expect_runs(self, n: int) -> None:
        """Announce how many runs follow (an overall bar with ETA when there are several)."""
        self.total_runs, self.done_runs, self.started = n, 0, time.perf_counter()

    def _ensure_progress(self) -> Progress:
        if self.progress is None:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
                disable=not self.live,
            )
            self.progress.start()
            if self.total_runs > 1:
                self.overall = self.progress.add_task(
                    "all runs", total=self.total_runs, completed=self.done_runs, status=""
                )
        return self.progress

    def run_started(self, label: str, max_epochs: int) -> None:
        self.label, self.max_epochs = label, max_epochs
        self.run_t0 = time.perf_counter()
        self.last_line = 0.0
        progress = self._ensure_progress()
        if self.task is not None and self.task in progress.task_ids:  # a retried run replaces its bar
            progress.remove_task(self.task)
        self.task = progress.add_task(label, total=max_epochs, status="")

    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None:
        if self.progress is None:
            return
        dev = next((f"{k}={v:.4f}" for k, v in logs.items() if k.startswith("dev_") and k != "dev_loss"), "")
        self.progress.update(self.task, completed=epoch, status=f"loss={logs['train_loss']:.4f} {dev}")
        if self.live:
            return
        now = time.perf_counter()
        first, last = epoch == 1, epoch >= self.max_epochs
        if first or last or now - self.last_line >= log_interval():
            self.last_line = now
            line = epoch_line(self.label, epoch, self.max_epochs, logs, now - self.run_t0)
            self.console.print(f"mmbench: {line}", markup=False)

    def run_ended(self, label: str, record: dict[str, Any]) -> None:
        self.done_runs += 1
        if self.progress is not None:
            if self.task is not None:
                self.progress.update(self.task, completed=record.get("epochs_run") or 0)
                self.task = None
            if self.overall is not None:
                self.progress.update(self.overall, completed=self.done_runs)
            if self.total_runs <= 1 or self.done_runs >= self.total_runs:
                self.stop()
        if record.get("status") != "ok":
            self.log(f"{label}: [red]failed[/red] ({record.get('failure', {}).get('reason')})")
        else:
            self.log(
                f"{label}: best dev epoch {record['best_epoch']}, test {test_scores(record)} "
                f"({record['efficiency']['train_seconds']:.1f}s)"
            )
        if not self.live and self.total_runs > 1:
            elapsed = time.perf_counter() - self.started
            left = elapsed / self.done_runs * (self.total_runs - self.done_runs)
            self.log(
                f"runs {self.done_runs}/{self.total_runs} done, elapsed {fmt_seconds(elapsed)}, "
                f"eta {fmt_seconds(left)}"
            )

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.progress = self.task = self.overall = None


def test_scores(record: dict[str, Any]) -> str:
    """Two headline test scores of a finished record: ``weighted F1 0.6123, accuracy 0.6340`` for a
    classification task, ``MAE 0.8123, Corr 0.6012`` for a regression task (undefined: ``-``)."""
    from mmbench.tasks import metric_label, task_from_record

    task = task_from_record(record)
    test = record["metrics"]["test"]
    first = task.default_metric
    names = (first, next(m for m in task.headline_metrics if m != first))
    return ", ".join(
        f"{metric_label(m)} {'-' if test.get(m) is None else format(test[m], '.4f')}" for m in names
    )


def announce_runs(reporter: Any, n: int) -> None:
    """Tell a reporter how many runs follow, when it wants to know (``expect_runs``)."""
    expect = getattr(reporter, "expect_runs", None)
    if callable(expect):
        expect(n)


def finish_runs(reporter: Any) -> None:
    """Close a reporter's bars after the last run (some runs may have been skipped)."""
    stop = getattr(reporter, "stop", None)
    if callable(stop):
        stop()


def print_json(obj: Any) -> None:
    import json

    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()
