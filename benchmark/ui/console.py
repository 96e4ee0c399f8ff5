"""Terminal output: logs and progress bars on stderr, results on stdout."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)
if not out_console.is_terminal:  # piped output: do not squeeze tables into 80 columns
    out_console = Console(highlight=False, width=160)


def debug_enabled() -> bool:
    return os.environ.get("MMBENCH_DEBUG", "").strip().lower() in {"1", "true", "yes"}


class RichReporter:
    """Progress bars per run (epochs) on stderr; quiet when stderr is not a terminal."""

    def __init__(self, console: Console = err_console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: Any = None
        self.metric_key: str | None = None

    def log(self, message: str) -> None:
        self.console.print(f"[dim]mmbench:[/dim] {message}")

    def run_started(self, label: str, max_epochs: int) -> None:
        if self.progress is not None:  # a retried run (e.g. after out-of-memory)
            self.progress.stop()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            disable=not self.console.is_terminal,
        )
        self.progress.start()
        self.task = self.progress.add_task(label, total=max_epochs, status="")

    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None:
        if self.progress is None:
            return
        dev = next((f"{k}={v:.4f}" for k, v in logs.items() if k.startswith("dev_")), "")
        self.progress.update(self.task, completed=epoch, status=f"loss={logs['train_loss']:.4f} {dev}")

    def run_ended(self, label: str, record: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if record.get("status") != "ok":
            self.log(f"{label}: [red]failed[/red] ({record.get('failure', {}).get('reason')})")
            return
        test = record["metrics"]["test"]
        self.log(
            f"{label}: best dev epoch {record['best_epoch']}, test weighted F1 "
            f"{test['weighted_f1']:.4f}, accuracy {test['accuracy']:.4f} "
            f"({record['efficiency']['train_seconds']:.1f}s)"
        )


def print_json(obj: Any) -> None:
    import json

    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()
