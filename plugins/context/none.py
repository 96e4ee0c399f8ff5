"""``none``: no dialogue context. Each utterance is classified alone by the fusion model, exactly as
a run without ``--context``: same batches, same model, same record."""

from __future__ import annotations

from typing import Any

from mmbench.contracts import ContextPlugin
from mmbench.errors import UsageError


class NoContext(ContextPlugin):
    """Utterance-level classification (the default; records are those of a run without context)."""

    uses_dialogues = False
    default_params: dict[str, Any] = {}

    def build(self, dim: int, params: dict[str, Any]) -> Any:
        raise UsageError("context 'none' builds no context model: the fusion classifies each utterance")
