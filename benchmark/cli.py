"""The ``mmbench`` command line (typer + rich).

Data (tables, JSON) goes to stdout, logs and progress bars to stderr. Exit codes: 0 ok, 1 a run
failed, 2 usage or input error, 3 internal error. Known errors print one line, no traceback,
unless ``MMBENCH_DEBUG=1``. Heavy imports (torch) happen inside the commands that train, so
``mmbench --help`` and ``mmbench list`` stay fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(
    name="mmbench",
    help="Benchmark multimodal fusion methods under a fixed, fingerprinted protocol.",
    no_args_is_help=False,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "[bold]Examples[/bold]: mmbench run | mmbench run --fusion all --seeds 0,1,2 | "
        "mmbench list fusions | mmbench leaderboard --runs runs/\n\n"
        "Exit codes: 0 ok, 1 a run failed, 2 usage or input error, 3 internal error. "
        "MMBENCH_DEBUG=1 shows tracebacks."
    ),
)


def _print_version(value: bool) -> None:
    if value:
        import platform
        from pathlib import Path

        from mmbench import __version__

        typer.echo(f"mmbench {__version__} (Python {platform.python_version()}, {Path(__file__).parent})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print mmbench's version and exit.",
        ),
    ] = False,
) -> None:
    pass


def _register_commands() -> None:
    """Add every command module of ``mmbench.commands`` (each that has ``register(app)``).

    Command modules import only typer at import time; their heavy imports live inside the
    command functions, so ``--help`` never imports torch.
    """
    import importlib
    import pkgutil

    import mmbench.commands as commands

    modules = [
        importlib.import_module(f"{commands.__name__}.{m.name}")
        for m in pkgutil.iter_modules(commands.__path__)
        if not m.name.startswith("_")
    ]
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        if hasattr(module, "register"):  # mmbench.commands.options declares options, no command
            module.register(app)


_register_commands()


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(Abort, ClickException, Exit) classes: click's, plus typer's own copy (typer >= 0.29 vendors click)."""
    import importlib

    modules = []
    for name in ("click.exceptions", "typer._click.exceptions"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    return tuple(
        tuple({getattr(m, cls) for m in modules if hasattr(m, cls)})
        for cls in ("Abort", "ClickException", "Exit")
    )  # type: ignore[return-value]


def main() -> None:
    """Console-script entry point."""
    abort, click_exception, exit_ = _click_exceptions()
    try:
        code = app(standalone_mode=False)
    except abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except click_exception as exc:
        exc.show()
        sys.exit(2)
    except exit_ as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
