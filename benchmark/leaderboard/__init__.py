"""Leaderboards: build (group, summarise, rank), significance, render, plots.

The package is also the API function of the same name: ``mmbench.leaderboard("runs")`` calls
``mmbench.api.leaderboard`` (``import mmbench.leaderboard.build`` binds this package to the name
``leaderboard`` of ``mmbench``, so the package forwards calls instead of hiding the function).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from mmbench.api import leaderboard

        return leaderboard(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
