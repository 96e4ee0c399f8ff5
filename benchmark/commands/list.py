"""``mmbench list``: registered datasets, encoders, fusions and plugins."""

from __future__ import annotations

import fnmatch
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import OutputFormat, cli_errors
from mmbench.errors import UsageError

ORDER = 20


class ListWhat(str, Enum):
    all = "all"
    datasets = "datasets"
    encoders = "encoders"
    fusions = "fusions"
    extractors = "extractors"
    trackers = "trackers"
    executors = "executors"
    contexts = "contexts"
    plugins = "plugins"


LIST_EPILOG = """
[bold]Examples[/bold]

  mmbench list                        [dim]# every kind[/dim]
  mmbench list fusions
  mmbench list 'synth*'               [dim]# names matching a shell-style pattern, in every kind[/dim]
  mmbench list fusions '*attention*'  [dim]# one kind, filtered[/dim]
  mmbench list plugins --format json
"""


def split_what(what: str, pattern: str | None, names: set[str] = frozenset()) -> tuple[ListWhat, str | None]:
    """``list WHAT [PATTERN]``: WHAT is a kind (``fusions``, or ``fusion``) or, when it is not one,
    a name pattern over every kind (``list 'synth*'``: wildcards, or a registered name in ``names``).
    Anything else is a usage error (most likely a misspelt kind)."""
    value = what.strip().lower()
    listable = {w.value for w in ListWhat}
    if value not in listable and f"{value}s" in listable:
        value = f"{value}s"
    if value in listable:
        return ListWhat(value), pattern
    kinds = ", ".join(w.value for w in ListWhat)
    if pattern is not None or not (set("*?[") & set(what) or what in names):
        raise UsageError(
            f"{what!r} is not something to list ({kinds}) nor a name pattern such as 'synth*'; "
            "use `mmbench list KIND [PATTERN]` or `mmbench list PATTERN`"
        )
    return ListWhat.all, what


def list_(
    what: Annotated[
        str,
        typer.Argument(
            help="What to list: all, datasets, encoders, fusions, extractors, trackers or plugins; or a "
            "name pattern such as 'synth*' (searched in every kind)."
        ),
    ] = "all",
    pattern: Annotated[
        str | None,
        typer.Argument(help="Shell-style wildcard over the names of that kind, e.g. '*attention*'."),
    ] = None,
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """List registered datasets, encoders, fusions, trackers or plugin distributions (no torch import)."""
    with cli_errors():
        from mmbench.registry import get_registry
        from mmbench.registry.registry import KINDS

        registered = {n for k in KINDS for n in get_registry().names(k)}
        what, pattern = split_what(what, pattern, registered)
        from rich.markup import escape
        from rich.table import Table

        from mmbench.registry import get_registry
        from mmbench.ui.console import err_console, out_console, print_json

        registry = get_registry()
        from mmbench.registry.registry import KINDS

        kinds = {f"{k}s": k for k in KINDS}
        if what == ListWhat.plugins:
            rows = [
                p.as_dict()
                for p in registry.plugins
                if pattern is None or fnmatch.fnmatchcase(p.name, pattern)
            ]
            if fmt == OutputFormat.json:
                print_json({"plugins": rows, "problems": registry.problems})
                return
            table = Table(title="mmbench plugins")
            for col in ("plugin", "distribution", "version", "location", "hooks", "registered", "status"):
                table.add_column(col, overflow="fold")
            for p in rows:
                reg = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items()) or "-"
                hooks = ", ".join(h.removeprefix("mmbench_") for h in p["hooks"]) or "-"
                status = f"[red]{escape(p['error'])}[/red]" if p["error"] else "[green]ok[/green]"
                table.add_row(
                    p["name"],
                    p["distribution"] or "-",
                    p["version"] or "-",
                    _location(p["location"]),
                    hooks,
                    reg,
                    status,
                )
            out_console.print(table)
            _warn(err_console, registry.problems, {p["error"] for p in rows})
            return
        if what != ListWhat.all and what.value not in kinds:
            raise UsageError(f"nothing of kind {what.value!r} in this registry; kinds: {', '.join(kinds)}")
        selected = list(kinds) if what == ListWhat.all else [what.value]
        data = {
            k: [registry.get(kinds[k], n).as_dict() for n in registry.names(kinds[k], pattern)]
            for k in selected
        }
        if pattern is not None:
            if what == ListWhat.all:  # a pattern over every kind: only the kinds it matches
                data = {k: v for k, v in data.items() if v} or data
                selected = list(data)
            if not any(data.values()):
                err_console.print(f"nothing registered matches {pattern!r}", markup=False)
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
        _warn(err_console, registry.problems)


def _location(path: str | None) -> str:
    """The plugin's package folder (its ``__init__.py`` says little), or ``-``."""
    if not path:
        return "-"
    p = Path(path)
    return str(p.parent if p.name == "__init__.py" else p)


def _warn(console: Any, problems: list[str], shown: set[str | None] = frozenset()) -> None:
    """Print the registry's problems (load errors, duplicate names) not already in the table."""
    from rich.markup import escape as _escape

    for problem in problems:
        if problem not in shown:
            console.print(f"[yellow]warning:[/yellow] {_escape(problem)}")


def register(app: typer.Typer) -> None:
    app.command("list", epilog=LIST_EPILOG)(list_)
