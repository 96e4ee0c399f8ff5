"""``bigru``: a recurrent network over the utterances of a dialogue, bc-LSTM style.

Source: Poria et al., "Context-Dependent Sentiment Analysis in User-Generated Videos", ACL 2017
(bc-LSTM: a bidirectional LSTM over the utterance representations of a video/dialogue, the
classifier reading each utterance's hidden state). Here the cell is a GRU by default (``cell:
lstm`` gives bc-LSTM's cell). Bidirectional unless ``causal`` (then forward only: an utterance sees
its past). Padded positions are excluded with packed sequences, so they cannot change any output.

Shapes: ``x`` ``[B, T, D]`` -> ``[B, T, D + hidden * directions]`` (the utterance's own
representation concatenated with its context state).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mmbench.errors import UsageError
from mmbench.plugins.context.common import BuiltinContext, SpeakerEmbedding, check_int, common_space


class RecurrentContext(nn.Module):
    """GRU/LSTM over the real utterances of each dialogue (packed), optionally bidirectional."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        layers: int = 1,
        cell: str = "gru",
        causal: bool = False,
        dropout: float = 0.2,
        speaker_embedding: bool = False,
    ) -> None:
        super().__init__()
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(
            dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=not causal,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.speaker = SpeakerEmbedding(dim) if speaker_embedding else None
        self.drop = nn.Dropout(dropout)
        self.out_dim = dim + hidden * (1 if causal else 2)

    def forward(self, x: Tensor, mask: Tensor, speaker: Tensor) -> Tensor:
        if self.speaker is not None:
            x = self.speaker(x, mask, speaker)
        lengths = mask.sum(dim=1).clamp_min(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        return self.drop(torch.cat([x, h.to(x.dtype)], dim=-1))


class BiGRUContext(BuiltinContext):
    """bc-LSTM style recurrent context (Poria et al., ACL 2017)."""

    default_params = {**BuiltinContext.default_params, "layers": 1, "cell": "gru"}

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            **common_space(trial),
            "layers": trial.suggest_int("context.layers", 1, 2),
            "cell": trial.suggest_categorical("context.cell", ["gru", "lstm"]),
        }

    def validate(self, params: dict[str, Any]) -> None:
        super().validate(params)
        check_int(params, "layers", 1, 8)
        if params["cell"] not in ("gru", "lstm"):
            raise UsageError(f"context.cell must be 'gru' or 'lstm', got {params['cell']!r}")

    def build(self, dim: int, params: dict[str, Any]) -> nn.Module:
        return RecurrentContext(
            dim,
            params["hidden"],
            params["layers"],
            params["cell"],
            params["causal"],
            params["dropout"],
            params["speaker_embedding"],
        )
