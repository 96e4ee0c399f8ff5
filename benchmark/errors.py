"""Error types that map onto the CLI's documented exit codes.

Known errors carry a message meant for a researcher: it names the file, row and column or the
option at fault. The CLI prints that message alone (no traceback unless ``MMBENCH_DEBUG=1``).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class MMBenchError(Exception):
    """Base class for errors mmbench reports without a traceback."""

    exit_code = EXIT_INTERNAL


class UsageError(MMBenchError):
    """Bad option, unknown plugin name or invalid input data (exit code 2)."""

    exit_code = EXIT_USAGE


class DataError(UsageError):
    """Malformed or missing input data; the message names file, row and column."""

    def __init__(
        self,
        message: str,
        *,
        path: object = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        self.path, self.row, self.column = path, row, column
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class UnknownNameError(UsageError):
    """A plugin name that is not registered; the message lists close matches and what exists."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        import difflib

        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        available = ", ".join(sorted(known)) or "(none)"
        super().__init__(f"unknown {kind} {name!r}.{hint} Available {kind}s: {available}")
        self.kind, self.name, self.known, self.close = kind, name, known, close


class RunFailed(MMBenchError):
    """A run started but could not produce a valid result (exit code 1)."""

    exit_code = EXIT_RUN_FAILED


class PluginError(MMBenchError):
    """A plugin failed to load or raised inside a hook."""

    exit_code = EXIT_USAGE
