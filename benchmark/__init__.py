"""mmbench: a benchmark framework for multimodal fusion methods.

The import is deliberately light: nothing here imports torch, so ``mmbench --help`` and
``mmbench list`` start fast. Heavy modules are imported where a model is built or trained.

The Python API (``docs/api.md``) is re-exported here lazily: ``mmbench.run``, ``mmbench.sweep``,
``mmbench.tune``, ``mmbench.leaderboard``, ``mmbench.load_records`` (from ``mmbench.api``) and
``mmbench.RunRecord`` (from ``mmbench.records``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "run": "mmbench.api",
    "sweep": "mmbench.api",
    "tune": "mmbench.api",
    "leaderboard": "mmbench",  # the subpackage mmbench.leaderboard, callable as mmbench.api.leaderboard
    "load_records": "mmbench.api",
    "RunResult": "mmbench.api",
    "RunRecord": "mmbench.records",
}

__all__ = ["RunRecord", "RunResult", "__version__", "leaderboard", "load_records", "run", "sweep", "tune"]

if TYPE_CHECKING:
    from mmbench.api import RunResult, leaderboard, load_records, run, sweep, tune
    from mmbench.records import RunRecord


def __getattr__(name: str) -> Any:
    """Import the API on first use (``import mmbench`` stays free of torch and pydantic)."""
    if name in _LAZY:
        import importlib

        if name == "leaderboard":
            return importlib.import_module("mmbench.leaderboard")
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
