"""``mmbench reproduce RECORD.json``: re-run one record and check the metrics match."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import OutputFormat, cli_errors

ORDER = 80

EPILOG = """
[bold]Examples[/bold]

  mmbench reproduce runs/synthetic__concat__<fingerprint>__<tag>__seed0.json
  mmbench reproduce RECORD.json --format json

--device auto re-runs a CPU record on the CPU (where the metrics match exactly) and a CUDA
record on CUDA when present. Exit code 0 when every metric matches exactly, 1 when one differs.
"""


def reproduce(
    record: Annotated[Path, typer.Argument(help="A run record (JSON) written by `mmbench run`.")],
    device: opts.Device = opts.DEVICE_DEFAULT,
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """Re-run one record from its stored protocol, parameters and seed; compare the metrics."""
    with cli_errors():
        from rich.table import Table

        from mmbench.registry import get_registry
        from mmbench.runner.reproduce import reproduce as run_again
        from mmbench.ui.console import RichReporter, out_console, print_json

        result = run_again(record, get_registry(), device=device, reporter=RichReporter())
        if fmt == OutputFormat.json:
            print_json(result)
        else:
            table = Table(title=f"reproduce {result['fusion']} seed {result['seed']} on {result['dataset']}")
            for col in ("split", "metric", "original", "reproduced", "match"):
                table.add_column(col)
            for row in result["metrics"]:
                if row["metric"] == "confusion_matrix":
                    orig, again = "(matrix)", "(matrix)"
                else:
                    orig, again = (
                        "-" if v is None else f"{v:.6f}" for v in (row["original"], row["reproduced"])
                    )
                table.add_row(
                    row["split"],
                    row["metric"],
                    orig,
                    again,
                    "[green]yes[/green]" if row["match"] else "[red]no[/red]",
                )
            out_console.print(table)
            out_console.print(f"threads: {result['threads']['note']}")
            restored = result["restored"]
            out_console.print(
                f"restored: precision {restored['precision']}, compile {restored['compile']}, "
                f"torch threads {restored['torch_threads'] or 'as now'}, "
                f"tuned values {restored['train_overrides'] or 'none'}",
                markup=False,
            )
            fp = result["dataset_fingerprint"]
            out_console.print(
                f"dataset fingerprint {fp['original']} -> {fp['reproduced']}; "
                f"{'all metrics match' if result['match'] else 'MISMATCH'}"
            )
            if not result["match"]:
                for diff in result["differences"]:
                    out_console.print(
                        f"recorded setting differs: {diff['setting']} {diff['original']!r} -> "
                        f"{diff['reproduced']!r}",
                        markup=False,
                    )
                if not result["differences"]:
                    out_console.print("no recorded setting differs", markup=False)
        if not result["match"]:
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(reproduce)
