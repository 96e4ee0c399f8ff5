"""``transformer``: masked self-attention over the utterances of a dialogue.

Sources: Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (the encoder layer); utterance-
level transformers for emotion recognition in conversation, e.g. Zhong et al., "Knowledge-Enriched
Transformer for Emotion Detection in Textual Conversations", EMNLP 2019; positions as learned relative
biases per head and signed offset (Shaw et al., "Self-Attention with Relative Position
Representations", NAACL 2018; Raffel et al., T5, JMLR 2020), clipped at ``max_distance`` utterances
and initialised to ALiBi's linear distance penalty (Press et al., "Train Short, Test Long", ICLR
2022). They need no maximum length, so dialogues of any length (IEMOCAP's > 100 utterances) work.

Padded utterances are masked out as keys (their attention weight is exactly zero); with ``causal``
an utterance attends to itself and earlier ones only.

Shapes: ``x`` ``[B, T, D]`` -> ``[B, T, D + hidden]`` (the utterance's own representation
concatenated with its attended context).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from mmbench.errors import UsageError
from mmbench.plugins.context.common import BuiltinContext, SpeakerEmbedding, check_int, common_space


def initial_slopes(heads: int) -> Tensor:
    """Distance penalties per head at initialisation: ``2^-i``, ``i = 0..heads-1`` (ALiBi's geometric
    slopes, made steeper so that at first each utterance attends mostly to its neighbours)."""
    return torch.tensor([2.0**-i for i in range(heads)])


MAX_DISTANCE = 16


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer whose attention takes a float bias ``[B, H, T, T]``.

    Written out (``scaled_dot_product_attention``) rather than ``nn.TransformerEncoderLayer``, whose
    inference fast path does not apply per-head float masks the way its training path does.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.drop = nn.Dropout(dropout)
        self.p = dropout

    def forward(self, h: Tensor, bias: Tensor) -> Tensor:
        b, t, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.p if self.training else 0.0
        )
        h = h + self.drop(self.out(att.transpose(1, 2).reshape(b, t, d)))
        return h + self.drop(self.ff(self.norm2(h)))


class AttentionContext(nn.Module):
    """Transformer encoder over a dialogue with key-padding, optional causal mask and learned
    relative position biases (signed offsets clipped at ``MAX_DISTANCE``)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        heads: int = 4,
        layers: int = 1,
        causal: bool = False,
        dropout: float = 0.2,
        speaker_embedding: bool = False,
    ) -> None:
        super().__init__()
        self.inp = nn.Linear(dim, hidden)
        self.speaker = SpeakerEmbedding(hidden) if speaker_embedding else None
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.heads, self.causal = heads, causal
        offsets = torch.arange(-MAX_DISTANCE, MAX_DISTANCE + 1).abs().float()
        self.relative = nn.Parameter(-initial_slopes(heads)[None, :] * offsets[:, None])  # [2K+1, H]
        self.out_dim = dim + hidden

    def attention_bias(self, mask: Tensor, dtype: torch.dtype) -> Tensor:
        """Float ``[B, heads, T, T]``: the learned bias of each key's offset from the query, ``-inf``
        at padded keys (and at future keys when causal)."""
        b, t = mask.shape
        pos = torch.arange(t, device=mask.device)
        offset = (pos[None, :] - pos[:, None]).clamp(-MAX_DISTANCE, MAX_DISTANCE) + MAX_DISTANCE
        bias = self.relative[offset].permute(2, 0, 1).to(dtype)  # [H, T, T]
        blocked = ~mask[:, None, None, :]  # padded keys, [B, 1, 1, T]
        if self.causal:
            blocked = blocked | (pos[None, :] > pos[:, None])[None, None]
        return bias[None].expand(b, -1, -1, -1).masked_fill(blocked, -math.inf)

    def forward(self, x: Tensor, mask: Tensor, speaker: Tensor) -> Tensor:
        h = self.inp(x)
        if self.speaker is not None:
            h = self.speaker(h, mask, speaker)
        bias = self.attention_bias(mask, torch.float32)
        for layer in self.layers:
            h = layer(h, bias)
        h = self.norm(h) * mask.unsqueeze(-1).to(h.dtype)
        return torch.cat([x, h.to(x.dtype)], dim=-1)  # the utterance itself and its context


class TransformerContext(BuiltinContext):
    """Self-attention over the dialogue (Vaswani et al. 2017; ALiBi positions, Press et al. 2022)."""

    default_params = {**BuiltinContext.default_params, "heads": 4, "layers": 1}

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            **common_space(trial),
            "heads": trial.suggest_categorical("context.heads", [2, 4]),
            "layers": trial.suggest_int("context.layers", 1, 2),
        }

    def validate(self, params: dict[str, Any]) -> None:
        super().validate(params)
        check_int(params, "heads", 1, 64)
        check_int(params, "layers", 1, 12)
        if params["hidden"] % params["heads"]:
            raise UsageError(
                f"context.hidden ({params['hidden']}) must be divisible by context.heads ({params['heads']})"
            )

    def build(self, dim: int, params: dict[str, Any]) -> nn.Module:
        return AttentionContext(
            dim,
            params["hidden"],
            params["heads"],
            params["layers"],
            params["causal"],
            params["dropout"],
            params["speaker_embedding"],
        )
