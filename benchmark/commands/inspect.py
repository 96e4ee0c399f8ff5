"""``mmbench inspect``: look at a dataset (classes, features, splits, leaks, linear signal)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import OutputFormat, cli_errors, parse_encoders

ORDER = 15

INSPECT_EPILOG = """
[bold]Examples[/bold]

  mmbench inspect                                   [dim]# the embedded synthetic data[/dim]
  mmbench inspect --dataset iemocap --data Filtered_IMOCAP.xlsx --output report/
  mmbench inspect --set data.preset=synergy --tsne
  mmbench inspect --dataset meld --data meld/ --format json > meld.json
"""


def inspect_command(
    dataset: opts.Dataset = "synthetic",
    data: opts.DataPath = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Report folder (default: inspect-<dataset>/)."),
    ] = None,
    set_: opts.Overrides = None,
    protocol: opts.ProtocolFile = None,
    encoder: opts.Encoders = None,
    tsne: Annotated[bool, typer.Option("--tsne", help="Also draw t-SNE projections (slower).")] = False,
    max_points: Annotated[
        int, typer.Option("--max-points", help="Rows sampled for the projection plots.")
    ] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the plotting sample and of t-SNE.")] = 0,
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """Summarise a dataset before benchmarking on it: classes, features, splits, leaks, linear probes."""
    with cli_errors():
        from mmbench.inspection.checks import inspect_request
        from mmbench.inspection.report import rich_summary, write_report
        from mmbench.registry import get_registry
        from mmbench.runner.run import RunRequest
        from mmbench.ui.console import RichReporter, out_console, print_json

        registry = get_registry()
        registry.get("dataset", dataset)
        request = RunRequest(
            dataset=dataset,
            fusions=[],
            data_path=data,
            protocol_file=protocol,
            overrides=list(set_ or []),
            encoders=parse_encoders(encoder),
        )
        from mmbench.runner.output_paths import check_writable_dir

        out_dir = output if output is not None else Path(f"inspect-{dataset}")
        check_writable_dir(out_dir, "--output")
        reporter = RichReporter()
        result = inspect_request(request, registry, reporter, tsne=tsne, max_points=max_points, seed=seed)
        files = write_report(result, out_dir)
        reporter.log(f"report written to {out_dir / files['markdown']}")
        if fmt == OutputFormat.json:
            print_json({**result.summary, "report": {k: str(out_dir / v) for k, v in files.items()}})
            return
        for part in rich_summary(result.summary, include_warnings=False):
            out_console.print(part)
        from rich.markup import escape

        for warning in result.summary["warnings"]:  # logs on stderr, results on stdout
            reporter.log(f"[yellow]warning:[/yellow] {escape(warning)}")


def register(app: typer.Typer) -> None:
    app.command("inspect", epilog=INSPECT_EPILOG)(inspect_command)
