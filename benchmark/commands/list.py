"""``mmbench list``: registered datasets, encoders, fusions and plugins."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer
from mmbench.commands._common import OutputFormat, cli_errors

ORDER = 20


class ListWhat(str, Enum):
    all = "all"
    datasets = "datasets"
    encoders = "encoders"
    fusions = "fusions"
    plugins = "plugins"


def list_(
    what: Annotated[ListWhat, typer.Argument(help="What to list.")] = ListWhat.all,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.table,
) -> None:
    """List registered datasets, encoders, fusions, or plugin distributions (no torch import)."""
    with cli_errors():
        from mmbench.console import err_console, out_console, print_json
        from mmbench.registry import get_registry
        from rich.table import Table

        registry = get_registry()
        kinds = {"datasets": "dataset", "encoders": "encoder", "fusions": "fusion"}
        if what == ListWhat.plugins:
            rows = [p.as_dict() for p in registry.plugins]
            if fmt == OutputFormat.json:
                print_json({"plugins": rows, "problems": registry.problems})
                return
            table = Table(title="mmbench plugins")
            for col in ("plugin", "distribution", "version", "hooks", "registered", "status"):
                table.add_column(col)
            for p in rows:
                reg = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items())
                hooks = ", ".join(h.removeprefix("mmbench_") for h in p["hooks"])
                status = f"[red]{p['error']}[/red]" if p["error"] else "[green]ok[/green]"
                table.add_row(p["name"], p["distribution"] or "-", p["version"] or "-", hooks, reg, status)
            out_console.print(table)
            return
        selected = list(kinds) if what == ListWhat.all else [what.value]
        data = {k: [e.as_dict() for e in registry.entries(kinds[k])] for k in selected}
        if fmt == OutputFormat.json:
            print_json({**data, "problems": registry.problems})
            return
        for k in selected:
            table = Table(title=k)
            table.add_column("name", style="bold")
            table.add_column("summary")
            table.add_column("plugin", style="dim")
            for e in data[k]:
                table.add_row(e["name"], e["summary"], e["plugin"] or "-")
            out_console.print(table)
        for problem in registry.problems:
            err_console.print(f"[yellow]warning:[/yellow] {problem}")


def register(app: typer.Typer) -> None:
    app.command("list")(list_)
