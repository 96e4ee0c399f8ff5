"""``mmbench cache``: list, clear or prune the on-disk cache of encoder outputs and parsed tables."""

from __future__ import annotations

from typing import Annotated

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import cli_errors

ORDER = 80

EPILOG = """
[bold]Examples[/bold]

  mmbench cache list                    [dim]# entries, sizes, last use; totals per section[/dim]
  mmbench cache prune --max-size 2G     [dim]# drop least-recently-used entries down to 2 GiB[/dim]
  mmbench cache clear --section tables  [dim]# everything in one section (or all without --section)[/dim]

The cache lives in $MMBENCH_CACHE (default ~/.cache/mmbench); every entry is rebuilt on demand.
"""

app = typer.Typer(no_args_is_help=True, help="See, prune or clear the on-disk cache.", epilog=EPILOG)


def _root():  # noqa: ANN202 - a Path; imported lazily
    from mmbench.runner.encoding_cache import cache_dir

    return cache_dir()


@app.command("list")
def list_cache(
    fmt: opts.Format = opts.OutputFormat.table,
) -> None:
    """Every cache entry with its size, last use and what it holds (oldest use first)."""
    with cli_errors():
        from rich.markup import escape
        from rich.table import Table

        from mmbench.tools.cache import fmt_size, scan
        from mmbench.ui.console import out_console, print_json

        root = _root()
        entries = scan(root)
        total = sum(e.size for e in entries)
        if fmt == opts.OutputFormat.json:
            print_json({"root": str(root), "bytes": total, "entries": [e.as_dict() for e in entries]})
            return
        table = Table(title=escape(f"mmbench cache: {root} ({fmt_size(total)}, {len(entries)} entries)"))
        for col, justify in (("section", "left"), ("key", "left"), ("size", "right"), ("last used", "left")):
            table.add_column(col, justify=justify, no_wrap=True)
        table.add_column("what")
        for e in entries:
            d = e.as_dict()
            table.add_row(e.section, escape(e.key[:12]), fmt_size(e.size), d["last_used"], escape(e.what))
        out_console.print(table)


@app.command("clear")
def clear_cache(
    section: Annotated[
        str | None, typer.Option("--section", help="Only this section: features, tables or other.")
    ] = None,
) -> None:
    """Remove every entry (of one section); runs rebuild what they need."""
    with cli_errors():
        from mmbench.tools.cache import clear, fmt_size
        from mmbench.ui.console import err_console

        n, freed = clear(_root(), section)
        err_console.print(f"removed {n} cache entr{'y' if n == 1 else 'ies'} ({fmt_size(freed)})")


@app.command("prune")
def prune_cache(
    max_size: Annotated[str, typer.Option("--max-size", help="Keep at most this much: 500M, 2G, ...")],
) -> None:
    """Remove least-recently-used entries until the cache fits --max-size."""
    with cli_errors():
        from mmbench.tools.cache import fmt_size, parse_size, prune
        from mmbench.ui.console import err_console

        removed, left = prune(_root(), parse_size(max_size))
        err_console.print(
            f"removed {len(removed)} least-recently-used entr{'y' if len(removed) == 1 else 'ies'}; "
            f"{fmt_size(left)} left"
        )


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="cache")
