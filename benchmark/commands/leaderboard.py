"""``mmbench leaderboard``: rank fusions from run records (markdown, CSV, JSON, LaTeX, an HTML site or a
terminal table)."""

from __future__ import annotations

import contextlib
import shlex
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import cli_errors, split_csv
from mmbench.errors import UsageError

ORDER = 30

EPILOG = """
[bold]Examples[/bold]

  mmbench leaderboard                          [dim]# every record under runs/, terminal tables[/dim]
  mmbench leaderboard --runs runs/ --dataset iemocap --format md --output leaderboards/iemocap.md
  mmbench leaderboard --dataset synthetic:synergy --format csv > synergy.csv
  mmbench leaderboard --runs runs/ --output board.md --plots   [dim]# + PNG charts beside board.md[/dim]
  mmbench leaderboard --runs runs/ --format latex --standalone --output table.tex   [dim]# booktabs[/dim]
  mmbench leaderboard --runs runs/ --format html --output site/   [dim]# static site, opens offline[/dim]
  mmbench leaderboard --runs results.zip     [dim]# the records of a bundle from `mmbench export`[/dim]

Tables never mix protocol or dataset fingerprints: each group of comparable records gets its own
table (CSV refuses several groups and names what differs). Budget-cut runs (--max-epochs below
the protocol) are left out unless --include-budget-cut; failed runs are listed, never averaged.
"""

SUFFIX_FORMATS = {".md": "md", ".markdown": "md", ".csv": "csv", ".json": "json", ".tex": "latex"}


class BoardFormat(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    json = "json"
    latex = "latex"
    html = "html"


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
    extra: tuple[str, ...] = (),
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
    return shlex.join([*parts, *extra])


def leaderboard(
    runs: opts.RunsOrBundle = opts.RUNS_DEFAULT,
    dataset: opts.DatasetFilter = None,
    fingerprint: opts.Fingerprint = None,
    fmt: Annotated[
        BoardFormat | None,
        typer.Option(
            "--format",
            help="table (terminal), md, csv, json, latex or html (a site folder; default: from --output, "
            "else table).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    include_budget_cut: opts.IncludeBudgetCut = False,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Exit 2 on a damaged or invalid record instead of skipping it."),
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
    alpha: opts.Alpha = opts.ALPHA_DEFAULT,
    resamples: opts.Resamples = opts.RESAMPLES_DEFAULT,
    mix_numerics: Annotated[
        bool,
        typer.Option(
            "--mix-numerics",
            help="Put runs that differ only in numerics (precision, compile, device, torch version) "
            "in one table, a row per numerics; the footer lists each.",
        ),
    ] = False,
    caption: Annotated[
        str | None, typer.Option(help="--format latex: the tables' caption (LaTeX source).")
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="--format latex: the tables' \\label (default tab:<board>).")
    ] = None,
    per_class: Annotated[
        bool, typer.Option("--per-class", help="--format latex: add the per-class F1 table.")
    ] = False,
    standalone: Annotated[
        bool, typer.Option("--standalone", help="--format latex: a complete document that compiles alone.")
    ] = False,
) -> None:
    """Rank fusion methods from run records: mean ± std over seeds, ties with the best, efficiency."""
    with cli_errors(), contextlib.ExitStack() as stack:
        from mmbench import api
        from mmbench.leaderboard.bundle import open_runs
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
        from mmbench.records import atomic_write_text
        from mmbench.ui.console import err_console, out_console

        if not 0 < alpha < 1:
            raise UsageError(f"--alpha must lie in (0, 1), got {alpha}")
        if resamples < 100:
            raise UsageError(f"--resamples must be at least 100, got {resamples}")
        if output is not None:
            from mmbench.runner.output_paths import check_writable_dir, check_writable_file

            if fmt == BoardFormat.html:  # a site: a folder
                check_writable_dir(output, "--output")
            elif fmt is not None or output.suffix or output.is_dir():
                check_writable_file(output, "--output")
        if fmt is None and output is None:
            fmt = BoardFormat.table
        elif fmt is None:
            if output.suffix.lower() not in SUFFIX_FORMATS:
                raise UsageError(
                    f"--output {output}: unknown suffix; give --format md, csv, json, latex or html"
                )
            fmt = BoardFormat(SUFFIX_FORMATS[output.suffix.lower()])
        if fmt == BoardFormat.table and output is not None:
            raise UsageError("--format table prints to the terminal; use md, csv or json with --output")
        if plots and (fmt != BoardFormat.md or output is None):
            raise UsageError("--plots needs markdown written to a file: --format md --output FILE.md")
        if fmt == BoardFormat.html and (output is None or output.is_file()):
            raise UsageError("--format html writes a site: give its folder with --output DIR")
        latex_only = {
            "--caption": caption,
            "--label": label,
            "--per-class": per_class,
            "--standalone": standalone,
        }
        extra = latex_options(caption, label, per_class, standalone)
        if extra and fmt != BoardFormat.latex:
            used = ", ".join(k for k, v in latex_only.items() if v)
            raise UsageError(f"{used}: only with --format latex")
        records_dir = stack.enter_context(open_runs(runs))  # a zip's records: unpacked safely, temporarily
        if run_plots and records_dir != runs:
            raise UsageError("--run-plots writes beside the records: give a folder, not a zip, with --runs")
        if export_runs is not None:
            from mmbench.runner.output_paths import check_writable_dir

            check_writable_dir(export_runs, "--export-runs")
        datasets = split_csv(dataset)
        board = api.leaderboard(
            records_dir,
            dataset=datasets,
            fingerprint=fingerprint,
            include_budget_cut=include_budget_cut,
            alpha=alpha,
            resamples=resamples,
            strict=strict,
            mix_numerics=mix_numerics,
        )
        if mix_numerics:
            extra = ("--mix-numerics", *extra)
        command = regenerate_command(
            runs, datasets, fingerprint, fmt.value, output, include_budget_cut, plots, alpha, resamples, extra
        )
        board.runs_dir = runs.as_posix()
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
                    plot_group(
                        group,
                        output.parent / links[i]["bars"],
                        output.parent / links[i]["per_class"] if "per_class" in links[i] else None,
                    )
                    if "noise" in links[i]:
                        from mmbench.robustness.plots import plot_contributions, plot_noise_curves

                        analysed = [r for row in group.rows for r in row.records if r.get("robustness")]
                        plot_noise_curves(analysed, output.parent / links[i]["noise"])
                        plot_contributions(analysed, output.parent / links[i]["contributions"])
        if fmt == BoardFormat.table:
            for item in rich_renderables(board, command, width=out_console.width):
                out_console.print(item)
            return
        if fmt == BoardFormat.html:
            from mmbench.leaderboard.site import render_site

            written = render_site(board, output, records_dir, command)
            err_console.print(f"wrote {output}/ ({len(board.groups)} board page(s), {len(written)} file(s))")
            return
        if fmt == BoardFormat.md:
            text = render_markdown(board, command, links)
        elif fmt == BoardFormat.latex:
            from mmbench.leaderboard.latex import render_latex

            text = render_latex(board, command, caption, label, per_class, standalone)
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


def latex_options(
    caption: str | None, label: str | None, per_class: bool, standalone: bool
) -> tuple[str, ...]:
    """The LaTeX options as command-line words (for the footer's command)."""
    words: list[str] = []
    if caption is not None:
        words += ["--caption", caption]
    if label is not None:
        words += ["--label", label]
    if per_class:
        words.append("--per-class")
    if standalone:
        words.append("--standalone")
    return tuple(words)


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(leaderboard)
