"""What a compared method is: a fusion, optionally with a dialogue context model.

A record of a run with a context model holds ``context: {"name", "params", "causal"}`` beside
``fusion``; records of utterance-level runs (context ``none`` on data without dialogues) hold no
``context`` key at all, exactly as before context models existed. Torch-free (leaderboards use it).
"""

from __future__ import annotations

from typing import Any

NO_CONTEXT = "none"


def method_label(fusion: str, context: str | None, sep: str = " + ") -> str:
    """``concat`` or ``concat + dialoguernn`` (``sep="+"`` for file names)."""
    return fusion if not context or context == NO_CONTEXT else f"{fusion}{sep}{context}"


def record_context(record: dict[str, Any]) -> str:
    """The context model's name of a record (``none`` when the record has none)."""
    ctx = record.get("context")
    return str(ctx.get("name") or NO_CONTEXT) if isinstance(ctx, dict) else NO_CONTEXT


def record_method(record: dict[str, Any]) -> str:
    """The leaderboard name of a record's method: ``fusion`` or ``fusion + context``."""
    return method_label(str(record["fusion"]), record_context(record))
