"""Helpers shared by the command modules: output formats, error handling, option parsing."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from typing import Any

import typer
from rich.markup import escape

from mmbench.api import unique
from mmbench.commands.options import OutputFormat
from mmbench.errors import EXIT_INTERNAL, MMBenchError, UsageError

__all__ = ["OutputFormat", "cli_errors", "parse_encoders", "parse_seeds", "resolve_fusions", "split_csv"]


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn known errors into one message on stderr and the documented exit code."""
    from mmbench.ui.console import debug_enabled, err_console

    try:
        yield
    except typer.Exit:
        raise
    except MMBenchError as exc:
        if debug_enabled():
            traceback.print_exc()
        # The message is data, not markup (it may hold "[V1, V3]"); soft_wrap keeps it on one line
        # so paths and ids are never split by the console's wrapping.
        err_console.print(
            f"[bold red]error:[/bold red] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
        )
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:
        if debug_enabled():
            traceback.print_exc()
        err_console.print(
            f"[bold red]internal error:[/bold red] {type(exc).__name__}: {escape(str(exc))}\n"
            "Set MMBENCH_DEBUG=1 to see the traceback and please report it.",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERNAL) from None


def split_csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


#: Most seeds one ``--seeds`` may name (``0-4294967295`` would otherwise allocate 4 billion ints).
MAX_SEEDS = 10_000


def parse_seeds(value: str | None) -> list[int] | None:
    """``0,1,2`` or ``0-4``; seeds in ``[0, 2**32 - 1]``; a repeated seed is dropped with a warning."""
    from mmbench.protocol import MAX_SEED

    if value is None:
        return None
    seeds: list[int] = []
    for part in split_csv(value):
        if "-" in part and part.replace("-", "").isdigit() and part.count("-") == 1:
            lo, hi = (int(x) for x in part.split("-", 1))
            if hi < lo or hi - lo + 1 > MAX_SEEDS:
                raise UsageError(f"--seeds {part}: a range must increase and name at most {MAX_SEEDS} seeds")
            seeds.extend(range(lo, hi + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise UsageError(f"--seeds expects comma-separated non-negative integers, got {value!r}")
        if len(seeds) > MAX_SEEDS:
            raise UsageError(f"--seeds names more than {MAX_SEEDS} seeds")
    if not seeds:
        raise UsageError("--seeds is empty")
    too_big = [s for s in seeds if s > MAX_SEED]
    if too_big:
        raise UsageError(f"--seeds {too_big[0]}: seeds must lie in [0, {MAX_SEED}] (the generators' range)")
    return unique("--seeds", seeds)


def parse_encoders(values: list[str] | None) -> dict[str, str]:
    out = {}
    for v in values or []:
        mod, sep, name = v.partition("=")
        if not sep or not mod.strip() or not name.strip():
            raise UsageError(f"--encoder expects MODALITY=NAME (e.g. text=hf-text), got {v!r}")
        out[mod.strip()] = name.strip()
    return out


def resolve_contexts(value: str, registry: Any) -> list[str]:
    """``--context``: context model names, comma-separated, or ``all``."""
    names = split_csv(value)
    if names == ["all"]:
        return registry.names("context")
    if not names:
        raise UsageError("--context is empty")
    for n in names:
        registry.get("context", n)
    return names


def resolve_fusions(value: str, registry: Any) -> list[str]:
    names = split_csv(value)
    if names == ["all"]:
        return registry.names("fusion")
    if not names:
        raise UsageError("--fusion is empty")
    for n in names:
        registry.get("fusion", n)
    return unique("--fusion", names)


def make_executor(
    registry: Any,
    name: str,
    workers: int,
    threads: int | None,
    gpus: float,
    address: str | None,
    options: list[str] | None,
    folder: Any,
) -> Any:
    """The executor for ``--executor NAME`` and its options (``--address`` is the ``address`` option)."""
    from mmbench.runner.executor import build_executor, parse_option_pairs

    opts = parse_option_pairs(options)
    if address is not None:
        if "address" in opts:
            raise UsageError("give the Ray address once: --address or --executor-opt address=...")
        opts["address"] = address
    return build_executor(registry, name, workers, gpus, threads, folder, opts)
