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
directly in this case (identical result, no softmax over one element).

**Sequences** ``[batch, time, dim]`` (with ``mask:<modality>``) make the attention real: every
query step (a text token) attends over the context's real steps (audio or visual frames):

* query ``[B, T, 512]``, context ``[B, S, 256]`` -> attended query ``[B, T, 512]`` (residual sum
  over the context modalities);
* *temporal locality bias* (``locality``): each head ``h`` adds ``-slope_h * |t - s'|`` to its
  attention scores, where ``s'`` is frame ``s`` placed on the query's time axis (the context's real
  length rescaled to the query's, so modalities of different frame rates line up over the same
  utterance). Slopes are learned (log-parametrised) and start at ``locality * 2**-h``: the first
  heads look at the frames of the same moment, the last are nearly global and match by content.
  This is ALiBi's linear distance bias (Press et al., "Train Short, Test Long", ICLR 2022) with
  learned slopes over cross-modal time; ``locality: 0`` gives plain content attention;
* each step is fused before pooling: ``[attended_t || pooled contexts] 1024 -> 512`` (Linear,
  ReLU), then mean-pooled over the query's real steps -> ``[B, 512]`` -> classifier. Fusing per
  step keeps what a token saw at its own moment; pooling first would average it away.

``seed_faithful: true`` builds the reference system's exact layers (Linear -> ReLU -> BatchNorm
in the context branches, no dropout on the two audio paths, ``V2`` not an input); the default's
differences and the reasons are listed in docs/fusions.md, and
``configs/protocols/reference-system.yaml`` holds the reference's training recipe.

Why the bias: on the ``synthetic`` ``alignment`` preset (the label says which events coincide in
time) plain content attention never found the matching frames: test accuracy 0.23-0.30, at chance,
in 30 epochs while the train split was memorised. With ``locality: 4`` the same run reached 0.99
(3,000 samples, ``seq_len=8``; docs/fusions.md has the commands).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from mmbench.contracts import FusionParams, FusionPlugin
from mmbench.data import InputSpec, ModalitySpec
from mmbench.errors import UsageError
from mmbench.plugins.fusions.layers import Projection, masked_mean, mlp_head, seq_mask


class ReferenceProjection(Projection):
    """The reference system's order: Linear -> ReLU -> BatchNorm (-> Dropout when ``dropout > 0``)."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.act(self.linear(x))
        if h.dim() == 3 and mask is not None:
            real = self.norm(h[mask])  # real steps only, as Projection does
            h = torch.zeros(h.shape, dtype=real.dtype, device=h.device).index_put((mask,), real)
        elif h.dim() == 3:
            h = self.norm(h.transpose(1, 2)).transpose(1, 2)
        else:
            h = self.norm(h)
        return self.drop(h)


#: The audio stream the reference system reads but never feeds to its model.
REFERENCE_UNUSED_STREAMS = ("V2",)


class ContextBranch(nn.Module):
    """Projects a context modality; multi-stream modalities get the reference's two-path layout.

    ``faithful``: the reference system's exact layers (``seed_faithful``): Linear -> ReLU ->
    BatchNorm, no dropout on the two audio paths (dropout after their combination and on a
    single-stream branch), and a ``V2`` stream left out of the second path.
    """

    def __init__(
        self, spec: ModalitySpec, d_context: int, d_aux: int, dropout: float, faithful: bool = False
    ) -> None:
        super().__init__()
        slices = spec.stream_slices()
        first = spec.streams[0]
        rest = [s for s in spec.streams[1:] if not (faithful and s.name in REFERENCE_UNUSED_STREAMS)]
        self.main_cols = slices[first.name]
        columns = [i for s in rest for i in range(slices[s.name].start, slices[s.name].stop)]
        self.register_buffer("aux_cols", torch.tensor(columns, dtype=torch.long), persistent=False)
        proj = ReferenceProjection if faithful else Projection
        path_dropout = 0.0 if faithful else dropout
        if not rest:
            self.main = proj(first.dim, d_context, dropout)
            self.aux = None
            self.combine = None
        else:
            self.main = proj(first.dim, d_context, path_dropout)
            self.aux = proj(len(columns), d_aux, path_dropout)
            self.combine = Projection(d_context + d_aux, d_context, dropout, batch_norm=False)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.aux is None:
            return self.main(x[..., self.main_cols], mask)
        main = self.main(x[..., self.main_cols], mask)
        aux = self.aux(x.index_select(-1, self.aux_cols), mask)
        return self.combine(torch.cat([main, aux], dim=-1))


def time_distance(query_mask: Tensor, context_mask: Tensor) -> Tensor:
    """``[B, T]``, ``[B, S]`` real-step masks -> ``|t - s'|`` ``[B, T, S]`` in query steps.

    Step centres are compared after the context's real length is rescaled onto the query's, so two
    sequences covering the same utterance at different frame rates line up (tensor ops only).
    """
    dtype = torch.float32
    q_len = query_mask.sum(dim=1, keepdim=True).to(dtype).clamp_min(1.0)
    c_len = context_mask.sum(dim=1, keepdim=True).to(dtype).clamp_min(1.0)
    t = torch.arange(query_mask.shape[1], device=query_mask.device, dtype=dtype) + 0.5
    s = (torch.arange(context_mask.shape[1], device=context_mask.device, dtype=dtype) + 0.5) * (q_len / c_len)
    return (s[:, None, :] - t[None, :, None]).abs()


class GuidedAttention(nn.Module):
    """Multi-head attention of the query branch over one context branch.

    ``locality > 0`` adds the learned temporal locality bias (module docstring) when both sides
    are sequences.
    """

    def __init__(
        self, d_model: int, d_context: int, heads: int, dropout: float, locality: float = 0.0
    ) -> None:
        super().__init__()
        self.d_model, self.heads = d_model, heads
        self.mha = nn.MultiheadAttention(
            d_model, heads, dropout=dropout, kdim=d_context, vdim=d_context, batch_first=True
        )
        self.log_slope = None
        if locality > 0:
            self.log_slope = nn.Parameter(
                torch.log(locality * 2.0 ** -torch.arange(heads, dtype=torch.float32))
            )

    def forward(
        self, query: Tensor, context: Tensor, context_mask: Tensor | None, query_mask: Tensor | None = None
    ) -> Tensor:
        if query.dim() == 2 and context.dim() == 2:
            # One key: softmax weights are all 1, attention = out_proj(v_proj(context)).
            e = self.d_model
            w_v = self.mha.in_proj_weight[2 * e :] if self.mha._qkv_same_embed_dim else self.mha.v_proj_weight
            return self.mha.out_proj(F.linear(context, w_v, self.mha.in_proj_bias[2 * e :]))
        q = query if query.dim() == 3 else query.unsqueeze(1)
        kv = context if context.dim() == 3 else context.unsqueeze(1)
        if self.log_slope is None or query.dim() == 2 or context.dim() == 2:
            pad = None if context_mask is None or context.dim() == 2 else ~context_mask
            out, _ = self.mha(q, kv, kv, key_padding_mask=pad, need_weights=False)
            return out if query.dim() == 3 else out.squeeze(1)
        b, t, s = q.shape[0], q.shape[1], kv.shape[1]
        q_mask = query_mask if query_mask is not None else q.new_ones(b, t, dtype=torch.bool)
        c_mask = context_mask if context_mask is not None else kv.new_ones(b, s, dtype=torch.bool)
        c_mask = c_mask | ~c_mask.any(dim=1, keepdim=True)  # no real frame at all: attend to every frame
        bias = -self.log_slope.exp()[None, :, None, None] * time_distance(q_mask, c_mask)[:, None]
        bias = bias.masked_fill(~c_mask[:, None, None, :], float("-inf"))
        mask = bias.reshape(b * self.heads, t, s).to(q.dtype)
        out, _ = self.mha(q, kv, kv, attn_mask=mask, need_weights=False)
        return out


class CrossAttentionParams(FusionParams):
    query: str = Field("auto", min_length=1)
    d_model: int = Field(512, ge=1, le=8192)
    d_context: int = Field(256, ge=1, le=8192)
    d_aux: int = Field(128, ge=1, le=8192)
    heads: int = Field(8, ge=1, le=128)
    fusion_hidden: int = Field(512, ge=1, le=65536)
    classifier_hidden: int = Field(256, ge=1, le=65536)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    #: 0 = no time bias.
    locality: float = Field(4.0, ge=0.0, le=1e4)
    #: The reference system's exact layers (docs/fusions.md lists the default's differences).
    seed_faithful: bool = False

    @model_validator(mode="after")
    def _heads_divide(self) -> CrossAttentionParams:
        if self.d_model % self.heads:
            raise ValueError(f"fusion.d_model={self.d_model} must be divisible by fusion.heads={self.heads}")
        return self


class CrossAttentionModel(nn.Module):
    """``dict[str, Tensor]`` of at least two modalities -> logits ``[B, num_classes]``."""

    def __init__(
        self,
        spec: InputSpec,
        *,
        query: str = "auto",
        d_model: int = 512,
        d_context: int = 256,
        d_aux: int = 128,
        heads: int = 8,
        fusion_hidden: int = 512,
        classifier_hidden: int = 256,
        dropout: float = 0.3,
        locality: float = 4.0,
        seed_faithful: bool = False,
    ) -> None:
        super().__init__()
        self.query = query if query != "auto" else ("text" if "text" in spec else spec.names[0])
        self.context = [m for m in spec.names if m != self.query]
        drop = dropout
        self.query_branch = Projection(spec[self.query].dim, d_model, drop, batch_norm=False)
        self.context_branches = nn.ModuleDict(
            {m: ContextBranch(spec[m], d_context, d_aux, drop, seed_faithful) for m in self.context}
        )
        # The locality bias exists only between two sequences: utterance-level models keep the
        # reference's exact parameters (and load checkpoints written before the bias existed).
        seq_query = spec[self.query].sequence
        self.attention = nn.ModuleDict(
            {
                m: GuidedAttention(
                    d_model, d_context, heads, 0.0, locality if seq_query and spec[m].sequence else 0.0
                )
                for m in self.context
            }
        )
        fused = d_model + d_context * len(self.context)
        self.fuse = nn.Sequential(nn.Linear(fused, fusion_hidden), nn.ReLU(), nn.Dropout(drop))
        self.classifier = mlp_head(fusion_hidden, classifier_hidden, spec.num_outputs, drop)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        q_mask = seq_mask(batch, self.query)
        q = self.query_branch(batch[self.query], q_mask)
        attended = q
        pooled_context = []
        for m in self.context:
            c_mask = seq_mask(batch, m)
            ctx = self.context_branches[m](batch[m], c_mask)
            attended = attended + self.attention[m](q, ctx, c_mask, q_mask)
            pooled_context.append(masked_mean(ctx, c_mask) if ctx.dim() == 3 else ctx)
        if attended.dim() == 2:
            return self.classifier(self.fuse(torch.cat([attended, *pooled_context], dim=-1)))
        steps = attended.shape[1]
        per_step = torch.cat(
            [attended, *(c.unsqueeze(1).expand(-1, steps, -1) for c in pooled_context)], dim=-1
        )
        return self.classifier(masked_mean(self.fuse(per_step), q_mask))


class CrossAttentionFusion(FusionPlugin):
    """Text-guided cross-modal attention (the reference system's fusion)."""

    params_model = CrossAttentionParams

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            "d_model": trial.suggest_categorical("d_model", [256, 512]),
            "heads": trial.suggest_categorical("heads", [4, 8]),
            "classifier_hidden": trial.suggest_categorical("classifier_hidden", [128, 256, 512]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
            "locality": trial.suggest_categorical("locality", [0.0, 1.0, 4.0, 16.0]),
        }

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        if len(spec.names) < 2:
            raise UsageError("cross_attention needs at least two modalities")
        if params["query"] != "auto" and params["query"] not in spec:
            raise UsageError(f"fusion.query={params['query']!r} is not a modality of the data ({spec.names})")

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return CrossAttentionModel(spec, **params)
