"""Parameters and layers shared by the built-in context models.

Every built-in takes ``utterance_dim`` (width of the fused utterance representation the fusion
outputs), ``hidden``, ``dropout``, ``causal`` (only past and present utterances are seen: the
online setting) and ``speaker_embedding`` (a learned embedding of the utterance's party inside its
dialogue is added to its representation, as speaker-aware ERC models do).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mmbench.contracts import ContextPlugin
from mmbench.errors import UsageError

COMMON_PARAMS: dict[str, Any] = {
    "utterance_dim": 128,
    "hidden": 128,
    "dropout": 0.2,
    "causal": False,
    "speaker_embedding": False,
}
#: Parties beyond this many in one dialogue share the last speaker embedding.
MAX_PARTIES = 16


def check_int(params: dict[str, Any], key: str, low: int, high: int) -> None:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"context.{key} must be an integer in [{low}, {high}], got {value!r}")


def check_common(params: dict[str, Any]) -> None:
    """Validate the shared parameters (``UsageError`` naming the option)."""
    check_int(params, "utterance_dim", 2, 4096)
    check_int(params, "hidden", 2, 4096)
    dropout = params["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise UsageError(f"context.dropout must be a number in [0, 1), got {dropout!r}")
    for key in ("causal", "speaker_embedding"):
        if not isinstance(params[key], bool):
            raise UsageError(f"context.{key} must be true or false, got {params[key]!r}")


def common_space(trial: Any) -> dict[str, Any]:
    """The shared part of every built-in's Optuna search space (``causal`` is a setting, not tuned)."""
    return {
        "utterance_dim": trial.suggest_categorical("context.utterance_dim", [64, 128, 256]),
        "hidden": trial.suggest_categorical("context.hidden", [64, 128, 256]),
        "dropout": trial.suggest_float("context.dropout", 0.0, 0.5),
        "speaker_embedding": trial.suggest_categorical("context.speaker_embedding", [False, True]),
    }


class SpeakerEmbedding(nn.Module):
    """Adds a learned vector per party (``speaker`` ``[B, T]``) to ``x`` ``[B, T, D]`` at real positions."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.table = nn.Embedding(MAX_PARTIES, dim)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, x: Tensor, mask: Tensor, speaker: Tensor) -> Tensor:
        emb = self.table(speaker.clamp(0, MAX_PARTIES - 1)).to(x.dtype)
        return x + emb * mask.unsqueeze(-1).to(x.dtype)


def reverse_padded(x: Tensor, mask: Tensor) -> Tensor:
    """Reverse each dialogue's real positions in time; padded positions stay where they are.

    ``x`` ``[B, T, ...]``, ``mask`` ``[B, T]`` (real positions first). Applying it twice is the identity.
    """
    b, t = mask.shape
    lengths = mask.sum(dim=1, keepdim=True)
    steps = torch.arange(t, device=mask.device).unsqueeze(0).expand(b, t)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.view(b, t, *([1] * (x.dim() - 2))).expand_as(x))


class BuiltinContext(ContextPlugin):
    """Shared parameter handling of the built-in context models."""

    default_params = dict(COMMON_PARAMS)

    def validate(self, params: dict[str, Any]) -> None:
        check_common(params)

    def search_space(self, trial: Any) -> dict[str, Any]:
        return common_space(trial)
