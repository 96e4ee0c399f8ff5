"""``mmbench plot``: PNG plots of each run, beside its record."""

from __future__ import annotations

from typing import Annotated

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import OutputFormat, cli_errors, split_csv

ORDER = 35

EPILOG = """
[bold]Examples[/bold]

  mmbench plot --runs runs/                       [dim]# every record; up-to-date PNGs are kept[/dim]
  mmbench plot --runs runs/ --dataset synthetic:synergy --force

For each successful run, beside <stem>.json: <stem>.curves.png (train loss and dev metric per
epoch, selected epoch marked) and, for a classification run, <stem>.confusion.png (test confusion
matrix) and <stem>.per_class.png (per-class F1 on dev and test); for a regression run a
predicted-vs-target scatter of the test split instead of those two.
"""


def plot(
    runs: opts.Runs = opts.RUNS_DEFAULT,
    dataset: opts.DatasetFilter = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redraw PNGs that are newer than their record.")
    ] = False,
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """Draw training curves and test plots (confusion matrix and per-class F1, or a regression
    scatter) for every run record."""
    with cli_errors():
        from mmbench.errors import UsageError
        from mmbench.leaderboard.build import matches_spec
        from mmbench.leaderboard.plots import plot_run
        from mmbench.records import load_records
        from mmbench.ui.console import err_console, out_console, print_json

        if not runs.is_dir():
            raise UsageError(f"--runs {runs}: no such folder")
        specs = split_csv(dataset)
        records = [r for r in load_records(runs) if not specs or any(matches_spec(r, s) for s in specs)]
        if not records:
            raise UsageError(f"no run records under {runs}" + (f" for {', '.join(specs)}" if specs else ""))
        written = []
        skipped_failed = 0
        for rec in records:
            if rec.get("status") != "ok":
                skipped_failed += 1
                continue
            written += plot_run(rec, force=force)
        if fmt == OutputFormat.json:
            print_json(
                {"written": [str(p) for p in written], "records": len(records), "failed": skipped_failed}
            )
        else:
            out_console.print(
                f"{len(written)} PNG(s) written for {len(records) - skipped_failed} run(s) under {runs}"
                + (f"; {skipped_failed} failed run(s) have nothing to plot" if skipped_failed else "")
            )
        if not written and len(records) > skipped_failed:
            err_console.print("(all plots were up to date; --force redraws them)")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(plot)
