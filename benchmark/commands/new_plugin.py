"""``mmbench new-plugin``: scaffold a pip-installable fusion, dataset or encoder plugin package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import OutputFormat, cli_errors

ORDER = 90

EPILOG = """
[bold]Examples[/bold]

  mmbench new-plugin my-fusion --kind fusion
  pip install -e ./my-fusion && mmbench list fusions
  mmbench run --fusion my-fusion --seeds 0 --max-epochs 2
  cd my-fusion && python -m pytest -q            [dim]# the generated conformance tests[/dim]
  mmbench new-plugin my-data --kind dataset --output plugins/my-data
  mmbench new-plugin my-texts --kind dataset --text  [dim]# with a raw-text modality[/dim]
  mmbench new-plugin my-encoder --kind encoder

NAME is the registered name (lowercase letters, digits, '-' or '_'). The package is the
distribution mmbench-NAME with the import package mmbench_NAME (dashes become underscores)
under src/, registered through the `mmbench` entry point. It holds a working minimal
implementation to edit, a README and tests subclassing mmbench.testing's conformance kit.
An existing non-empty folder is refused unless --force (which overwrites the generated files
only). Exit codes: 0 ok, 2 bad name, name already registered or folder not empty.
"""


def new_plugin(
    name: Annotated[str, typer.Argument(help="Plugin name, e.g. my-fusion (the name `mmbench run` uses).")],
    # A plain string, validated by the scaffold, so a bad value is one message and exit code 2.
    kind: Annotated[
        str, typer.Option("--kind", "-k", help="What the plugin provides: fusion, dataset or encoder.")
    ] = "fusion",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder to write (default: ./NAME).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into an existing non-empty folder, overwriting.")
    ] = False,
    text: Annotated[
        bool,
        typer.Option("--text", help="Datasets: include a raw-text modality (utterance strings, TF-IDF)."),
    ] = False,
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """Write a new plugin package: pyproject with the entry point, implementation, README, tests."""
    with cli_errors():
        from mmbench.registry import get_registry
        from mmbench.tools.scaffold import generate
        from mmbench.ui.console import out_console, print_json

        target, names, files = generate(name, kind, output, force, registry=get_registry(), text=text)
        if fmt == OutputFormat.json:
            print_json(
                {
                    "name": names.name,
                    "kind": names.kind,
                    "distribution": names.distribution,
                    "module": names.module,
                    "folder": str(target),
                    "files": [str(f.relative_to(target)) for f in files],
                }
            )
            return
        out_console.print(f"wrote {names.kind} plugin [bold]{names.name}[/bold] to {target}:")
        for f in files:
            out_console.print(f"  {f.relative_to(target)}")
        out_console.print(
            "\nnext:\n"
            f"  pip install -e {target}\n"
            f"  mmbench list plugins            [dim]# {names.distribution}[/dim]\n"
            f"  cd {target} && python -m pytest -q"
        )


def register(app: typer.Typer) -> None:
    app.command("new-plugin", epilog=EPILOG)(new_plugin)
