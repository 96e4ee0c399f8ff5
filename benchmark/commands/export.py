"""``mmbench export``: a results bundle (zip) of run records, boards, environment and CITATION.cff."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import cli_errors, split_csv
from mmbench.errors import UsageError

ORDER = 32

EPILOG = """
[bold]Examples[/bold]

  mmbench export --runs runs/ --output results.zip --author "Curie, Marie" --title "Fusion on MELD"
  mmbench leaderboard --runs results.zip        [dim]# elsewhere: the same boards, from the bundle[/dim]

The bundle holds runs/ (records + test predictions, no checkpoints), boards/ (markdown + PNG, LaTeX,
JSON, CSV for one group, the HTML site), environment.json, CITATION.cff, README.md and manifest.json
(sha256 of every file). The boards' footers name `--runs <bundle name>`: run in the bundle's folder,
they regenerate boards/leaderboard.md byte for byte.
"""


def export(
    runs: opts.RunsOrBundle = opts.RUNS_DEFAULT,
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle to write (.zip).")] = Path(
        "results.zip"
    ),
    dataset: opts.DatasetFilter = None,
    fingerprint: opts.Fingerprint = None,
    include_budget_cut: opts.IncludeBudgetCut = False,
    title: Annotated[str | None, typer.Option(help="CITATION.cff title.")] = None,
    author: Annotated[
        list[str] | None,
        typer.Option(help='CITATION.cff author, repeatable: "Family, Given" (a person) or a team name.'),
    ] = None,
    date: Annotated[
        str | None, typer.Option(help="CITATION.cff release date, YYYY-MM-DD (default: today, UTC).")
    ] = None,
    alpha: opts.Alpha = opts.ALPHA_DEFAULT,
    resamples: opts.Resamples = opts.RESAMPLES_DEFAULT,
) -> None:
    """Bundle run records with their boards, environment and CITATION.cff into one citable zip."""
    with cli_errors(), contextlib.ExitStack() as stack:
        from mmbench.commands.leaderboard import regenerate_command
        from mmbench.leaderboard.build import build_leaderboard
        from mmbench.leaderboard.bundle import Citation, export_bundle, open_runs
        from mmbench.records import load_records
        from mmbench.ui.console import err_console

        if output.suffix.lower() != ".zip":
            raise UsageError(f"--output {output}: a results bundle is a .zip file")
        if output.exists() and output.is_dir():
            raise UsageError(f"--output {output}: is a folder")
        if not 0 < alpha < 1:
            raise UsageError(f"--alpha must lie in (0, 1), got {alpha}")
        if resamples < 100:
            raise UsageError(f"--resamples must be at least 100, got {resamples}")
        datasets = split_csv(dataset)
        records_dir = stack.enter_context(open_runs(runs))
        board = build_leaderboard(
            load_records(records_dir),
            records_dir,
            datasets=datasets,
            fingerprint=fingerprint,
            include_budget_cut=include_budget_cut,
            alpha=alpha,
            n_resamples=resamples,
        )
        name = Path(output.name)

        def command_for(fmt: str, path: str) -> str:
            return regenerate_command(
                name, [], None, fmt, Path(path), include_budget_cut, fmt == "md", alpha, resamples
            )

        def rebuild(folder: Path):  # noqa: ANN202 (a Leaderboard)
            rebuilt = build_leaderboard(
                load_records(folder),
                folder,
                include_budget_cut=include_budget_cut,
                alpha=alpha,
                n_resamples=resamples,
            )
            rebuilt.runs_dir = name.as_posix()
            return rebuilt

        info = export_bundle(
            board,
            records_dir,
            output,
            Citation(title=title, authors=author, date=date),
            command_for,
            rebuild,
            " ".join(["mmbench", *sys.argv[1:]]),
        )
        err_console.print(
            f"wrote {output}: {info['records']} record(s), {len(info['groups'])} board(s), "
            f"{len(info['files'])} file(s)"
        )


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(export)
