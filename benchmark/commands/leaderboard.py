"""``mmbench leaderboard``: rank fusions from run records (markdown, CSV, JSON or a terminal table)."""

from __future__ import annotations

import shlex
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mmbench.commands._common import cli_errors, split_csv
from mmbench.errors import UsageError

ORDER = 30

EPILOG = """
[bold]Examples[/bold]

  mmbench leaderboard                          [dim]# every record under runs/, terminal tables[/dim]
  mmbench leaderboard --runs runs/ --dataset iemocap --format md --output leaderboards/iemocap.md
  mmbench leaderboard --dataset synthetic:synergy --format csv > synergy.csv
  mmbench leaderboard --runs runs/ --output board.md --plots   [dim]# + PNG charts beside board.md[/dim]

Tables never mix protocol or dataset fingerprints: each group of comparable records gets its own
table (CSV refuses several groups and names what differs). Budget-cut runs (--max-epochs below
the protocol) are left out unless --include-budget-cut; failed runs are listed, never averaged.
"""

SUFFIX_FORMATS = {".md": "md", ".markdown": "md", ".csv": "csv", ".json": "json"}


class BoardFormat(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    json = "json"


def regenerate_command(
    runs: Path,
    datasets: list[str],
    fingerprint: str | None,
    fmt: str,
    output: Path | None,
    include_budget_cut: bool,
    plots: bool,
    alpha: float,
    resamples: int,
) -> str:
    """The canonical command line that reproduces a table (printed in its footer)."""
    parts = ["mmbench", "leaderboard", "--runs", Path(runs).as_posix()]
    if datasets:
        parts += ["--dataset", ",".join(datasets)]
    if fingerprint:
        parts += ["--fingerprint", fingerprint]
    parts += ["--format", fmt]
    if output is not None:
        parts += ["--output", Path(output).as_posix()]
    if include_budget_cut:
        parts.append("--include-budget-cut")
    if plots:
        parts.append("--plots")
    if alpha != 0.05:
        parts += ["--alpha", repr(alpha)]
    if resamples != 1000:
        parts += ["--resamples", str(resamples)]
    return shlex.join(parts)


def leaderboard(
    runs: Annotated[
        Path, typer.Option("--runs", "-r", help="Folder of run records (searched recursively).")
    ] = Path("runs"),
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", "-d", help="Dataset spec(s) NAME or NAME:PRESET, comma-separated."),
    ] = None,
    fingerprint: Annotated[
        str | None,
        typer.Option("--fingerprint", help="Only records whose protocol/dataset fingerprint starts so."),
    ] = None,
    fmt: Annotated[
        BoardFormat | None,
        typer.Option(
            "--format", help="table (terminal), md, csv or json (default: from --output, else table)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    include_budget_cut: Annotated[
        bool,
        typer.Option("--include-budget-cut", help="Also show runs trained below the protocol's budget (†)."),
    ] = False,
    plots: Annotated[
        bool, typer.Option("--plots", help="Write PNG charts beside the markdown --output and link them.")
    ] = False,
    run_plots: Annotated[
        bool,
        typer.Option("--run-plots", help="Also write per-run PNGs beside each record (as `mmbench plot`)."),
    ] = False,
    export_runs: Annotated[
        Path | None,
        typer.Option(
            "--export-runs",
            help="Copy the table's records, with slim predictions, to this folder (for publishing).",
        ),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the tie test.")] = 0.05,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of the tie test.")] = 1000,
) -> None:
    """Rank fusion methods from run records: mean ± std over seeds, ties with the best, efficiency."""
    with cli_errors():
        from mmbench.leaderboard.build import build_leaderboard
        from mmbench.leaderboard.render import (
            export_runs as do_export,
        )
        from mmbench.leaderboard.render import (
            plot_names,
            render_csv,
            render_json,
            render_markdown,
            rich_renderables,
        )
        from mmbench.records import atomic_write_text, load_records
        from mmbench.ui.console import err_console, out_console

        if not runs.is_dir():
            raise UsageError(f"--runs {runs}: no such folder")
        if not 0 < alpha < 1:
            raise UsageError(f"--alpha must lie in (0, 1), got {alpha}")
        if resamples < 100:
            raise UsageError(f"--resamples must be at least 100, got {resamples}")
        if fmt is None and output is None:
            fmt = BoardFormat.table
        elif fmt is None:
            if output.suffix.lower() not in SUFFIX_FORMATS:
                raise UsageError(f"--output {output}: unknown suffix; give --format md, csv or json")
            fmt = BoardFormat(SUFFIX_FORMATS[output.suffix.lower()])
        if fmt == BoardFormat.table and output is not None:
            raise UsageError("--format table prints to the terminal; use md, csv or json with --output")
        if plots and (fmt != BoardFormat.md or output is None):
            raise UsageError("--plots needs markdown written to a file: --format md --output FILE.md")
        datasets = split_csv(dataset)
        board = build_leaderboard(
            load_records(runs),
            runs,
            datasets=datasets,
            fingerprint=fingerprint,
            include_budget_cut=include_budget_cut,
            alpha=alpha,
            n_resamples=resamples,
        )
        command = regenerate_command(
            runs, datasets, fingerprint, fmt.value, output, include_budget_cut, plots, alpha, resamples
        )
        if export_runs is not None:
            written = do_export(board, export_runs)
            err_console.print(f"exported {len(written)} record(s) to {export_runs}")
        if run_plots:
            from mmbench.leaderboard.plots import plot_run

            made = [p for g in board.groups for row in g.rows for r in row.records for p in plot_run(r)]
            err_console.print(f"wrote {len(made)} per-run plot(s) beside the records")
        links: dict[int, dict[str, str]] = {}
        if plots:
            from mmbench.leaderboard.plots import plot_group

            for i, group in enumerate(board.groups):
                if group.rows:
                    links[i] = plot_names(board, group, output)
                    plot_group(group, output.parent / links[i]["bars"], output.parent / links[i]["per_class"])
                    if "noise" in links[i]:
                        from mmbench.robustness.plots import plot_contributions, plot_noise_curves

                        analysed = [r for row in group.rows for r in row.records if r.get("robustness")]
                        plot_noise_curves(analysed, output.parent / links[i]["noise"])
                        plot_contributions(analysed, output.parent / links[i]["contributions"])
        if fmt == BoardFormat.table:
            for item in rich_renderables(board, command):
                out_console.print(item)
            return
        if fmt == BoardFormat.md:
            text = render_markdown(board, command, links)
        elif fmt == BoardFormat.csv:
            text = render_csv(board)
        else:
            text = render_json(board, command)
        if output is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(output, text)
            rows = sum(len(g.rows) for g in board.groups)
            err_console.print(f"wrote {output} ({len(board.groups)} table(s), {rows} row(s))")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(leaderboard)
