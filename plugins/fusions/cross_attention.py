"""``cross_attention``: the reference text-guided cross-modal attention fusion.

Architecture (widths are the defaults; branch input sizes follow the data):

* query branch (``text`` when present): ``D_text -> 512`` (Linear, ReLU, dropout);
* every other modality is a context branch: a single-stream modality ``D -> 256`` with
  BatchNorm; a multi-stream one (``audio`` = ``V1`` + ``V3`` + ``V4``) maps its first stream
  ``D1 -> 256`` and the other streams concatenated ``(V3||V4) 50 -> 128``, both with BatchNorm,
  then the combination ``384 -> 256``;
* for each context modality, 8-head attention at width 512 with the query branch as query and
  the context branch as keys and values; the attended outputs are added to the query
  (residual sum);
* concatenation of attended query, and every context branch (``512 + 256 + 256 = 1024``)
  ``-> 512``, then the classifier ``512 -> 256 -> classes``; dropout 0.3 throughout.

**With one vector per modality the attention is degenerate**: there is a single key, so every
softmax weight is exactly 1 and the block reduces to the learned linear map
``out_proj(v_proj(context))``; the query does not influence it. The model computes that map
directly in this case (identical result, no softmax over one element). With sequence-shaped
modalities ``[batch, time, dim]`` and a ``mask:<modality>`` entry, the attention is real: query
time steps attend over the context's real time steps, and the attended query is mean-pooled over
its real steps before the concatenation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmbench.contracts import FusionPlugin
from mmbench.data import InputSpec, ModalitySpec
from mmbench.errors import UsageError
from mmbench.plugins.fusions.layers import Projection, masked_mean, mlp_head, seq_mask


class ContextBranch(nn.Module):
    """Projects a context modality; multi-stream modalities get the reference's two-path layout."""

    def __init__(self, spec: ModalitySpec, d_context: int, d_aux: int, dropout: float) -> None:
        super().__init__()
        self.slices = list(spec.stream_slices().values())
        if len(spec.streams) == 1:
            self.main = Projection(spec.dim, d_context, dropout)
            self.aux = None
            self.combine = None
        else:
            first = spec.streams[0].dim
            self.main = Projection(first, d_context, dropout)
            self.aux = Projection(spec.dim - first, d_aux, dropout)
            self.combine = Projection(d_context + d_aux, d_context, dropout, batch_norm=False)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.aux is None:
            return self.main(x, mask)
        split = self.slices[0].stop
        main = self.main(x[..., :split], mask)
        aux = self.aux(x[..., split:], mask)
        return self.combine(torch.cat([main, aux], dim=-1))


class GuidedAttention(nn.Module):
    """Multi-head attention of the query branch over one context branch."""

    def __init__(self, d_model: int, d_context: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.mha = nn.MultiheadAttention(
            d_model, heads, dropout=dropout, kdim=d_context, vdim=d_context, batch_first=True
        )

    def forward(self, query: Tensor, context: Tensor, context_mask: Tensor | None) -> Tensor:
        if query.dim() == 2 and context.dim() == 2:
            # One key: softmax weights are all 1, attention = out_proj(v_proj(context)).
            e = self.d_model
            w_v = self.mha.in_proj_weight[2 * e :] if self.mha._qkv_same_embed_dim else self.mha.v_proj_weight
            return self.mha.out_proj(F.linear(context, w_v, self.mha.in_proj_bias[2 * e :]))
        q = query if query.dim() == 3 else query.unsqueeze(1)
        kv = context if context.dim() == 3 else context.unsqueeze(1)
        pad = None if context_mask is None or context.dim() == 2 else ~context_mask
        out, _ = self.mha(q, kv, kv, key_padding_mask=pad, need_weights=False)
        return out if query.dim() == 3 else out.squeeze(1)


class CrossAttentionModel(nn.Module):
    def __init__(self, spec: InputSpec, params: dict[str, Any]) -> None:
        super().__init__()
        p = params
        self.query = p["query"] if p["query"] != "auto" else ("text" if "text" in spec else spec.names[0])
        self.context = [m for m in spec.names if m != self.query]
        drop = p["dropout"]
        self.query_branch = Projection(spec[self.query].dim, p["d_model"], drop, batch_norm=False)
        self.context_branches = nn.ModuleDict(
            {m: ContextBranch(spec[m], p["d_context"], p["d_aux"], drop) for m in self.context}
        )
        self.attention = nn.ModuleDict(
            {m: GuidedAttention(p["d_model"], p["d_context"], p["heads"], 0.0) for m in self.context}
        )
        fused = p["d_model"] + p["d_context"] * len(self.context)
        self.fuse = nn.Sequential(nn.Linear(fused, p["fusion_hidden"]), nn.ReLU(), nn.Dropout(drop))
        self.classifier = mlp_head(p["fusion_hidden"], p["classifier_hidden"], spec.num_classes, drop)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        q_mask = seq_mask(batch, self.query)
        q = self.query_branch(batch[self.query], q_mask)
        attended = q
        pooled_context = []
        for m in self.context:
            c_mask = seq_mask(batch, m)
            ctx = self.context_branches[m](batch[m], c_mask)
            attended = attended + self.attention[m](q, ctx, c_mask)
            pooled_context.append(masked_mean(ctx, c_mask) if ctx.dim() == 3 else ctx)
        if attended.dim() == 3:
            attended = masked_mean(attended, q_mask)
        return self.classifier(self.fuse(torch.cat([attended, *pooled_context], dim=-1)))


class CrossAttentionFusion(FusionPlugin):
    """Text-guided cross-modal attention (the reference system's fusion)."""

    default_params = {
        "query": "auto",
        "d_model": 512,
        "d_context": 256,
        "d_aux": 128,
        "heads": 8,
        "fusion_hidden": 512,
        "classifier_hidden": 256,
        "dropout": 0.3,
    }

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            "d_model": trial.suggest_categorical("d_model", [256, 512]),
            "heads": trial.suggest_categorical("heads", [4, 8]),
            "classifier_hidden": trial.suggest_categorical("classifier_hidden", [128, 256, 512]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        }

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        if len(spec.names) < 2:
            raise UsageError("cross_attention needs at least two modalities")
        if params["query"] != "auto" and params["query"] not in spec:
            raise UsageError(f"fusion.query={params['query']!r} is not a modality of the data ({spec.names})")
        if params["d_model"] % params["heads"]:
            raise UsageError("fusion.d_model must be divisible by fusion.heads")

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return CrossAttentionModel(spec, params)
