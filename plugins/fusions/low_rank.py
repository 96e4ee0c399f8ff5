"""``low_rank``: Low-rank Multimodal Fusion (LMF; Liu et al., "Efficient Low-rank Multimodal Fusion
with Modality-Specific Factors", ACL 2018).

Each modality (sequences mean-pooled over real steps) ``[B, D_m]`` is projected (Linear,
BatchNorm, ReLU, dropout) to ``[B, p]`` and a constant 1 is appended -> ``z_m`` of width
``p + 1``, as in TFN. Instead of forming the ``(p + 1)^M`` outer product and multiplying it by a
weight tensor, LMF factorises that weight tensor into ``rank`` modality-specific factors
``W_m^(i)`` of shape ``[p + 1, out]``:

    h = sum_i  w_i * prod_m (z_m @ W_m^(i)) + b          -> [B, out],  out = fused_dim

which equals a TFN whose weight tensor has rank ``rank``, at a cost linear in the number of
modalities. ``h`` is then classified by an MLP ``fused_dim -> hidden -> classes``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from mmbench.contracts import FusionParams, FusionPlugin
from mmbench.data import InputSpec
from mmbench.plugins.fusions.layers import Projection, check_modalities, mlp_head, pooled
from mmbench.plugins.fusions.tensor import with_one


class LowRankParams(FusionParams):
    proj_dim: int = Field(32, ge=1, le=4096)
    rank: int = Field(4, ge=1, le=1024)
    fused_dim: int = Field(64, ge=1, le=65536)
    hidden: int = Field(128, ge=1, le=65536)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    modalities: list[str] | None = None


class LowRankModel(nn.Module):
    """``dict[str, Tensor]`` -> logits ``[B, num_classes]`` through a rank-``rank`` fusion tensor."""

    def __init__(
        self,
        spec: InputSpec,
        *,
        proj_dim: int = 32,
        rank: int = 4,
        fused_dim: int = 64,
        hidden: int = 128,
        dropout: float = 0.3,
        modalities: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.names = check_modalities(spec, modalities)
        p, out, drop = proj_dim, fused_dim, dropout
        self.proj = nn.ModuleDict({m: Projection(spec[m].dim, p, drop) for m in self.names})
        self.factors = nn.ParameterDict({m: nn.Parameter(torch.empty(rank, p + 1, out)) for m in self.names})
        self.rank_weights = nn.Parameter(torch.empty(1, rank))
        self.bias = nn.Parameter(torch.zeros(out))
        for factor in self.factors.values():
            nn.init.xavier_normal_(factor)
        nn.init.xavier_normal_(self.rank_weights)
        self.head = mlp_head(out, hidden, spec.num_outputs, drop)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        product = None
        for m in self.names:
            z = with_one(self.proj[m](pooled(batch, m)))  # [B, p + 1]
            part = torch.einsum("bp,rpo->rbo", z, self.factors[m])  # [rank, B, out]
            product = part if product is None else product * part
        fused = torch.einsum("r,rbo->bo", self.rank_weights[0], product) + self.bias
        return self.head(fused)


class LowRankFusion(FusionPlugin):
    """Tensor fusion with a rank-``r`` factorised weight tensor (LMF)."""

    params_model = LowRankParams

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            "proj_dim": trial.suggest_categorical("proj_dim", [16, 32, 64]),
            "rank": trial.suggest_int("rank", 1, 16, log=True),
            "fused_dim": trial.suggest_categorical("fused_dim", [32, 64, 128]),
            "hidden": trial.suggest_categorical("hidden", [64, 128, 256]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        }

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        check_modalities(spec, params["modalities"])

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return LowRankModel(spec, **params)
