"""``tensor``: Tensor Fusion Network (TFN; Zadeh et al., "Tensor Fusion Network for Multimodal
Sentiment Analysis", EMNLP 2017).

Each modality (sequences mean-pooled over real steps) ``[B, D_m]`` is projected (Linear,
BatchNorm, ReLU, dropout) to ``[B, p]`` with ``p = proj_dim`` and a constant 1 is appended ->
``z_m = [h_m, 1]`` of width ``p + 1``. The fused representation is the outer product
``z_1 ⊗ z_2 ⊗ ... ⊗ z_M``, flattened -> ``[B, (p + 1)^M]``: thanks to the appended 1 it holds
every unimodal term, every bimodal product and every M-modal product of the projections. A
dropout and an MLP (``(p + 1)^M -> hidden -> hidden -> classes``, the paper's post-fusion
network) classify it.

The fused width grows as ``(p + 1)^M``: with three modalities 16 gives 4,913 features, 32 gives
35,937. ``proj_dim: auto`` (the default) takes the largest ``p <= 16`` whose fused width stays
within 8,192 features, so the same default suits three modalities (``p = 16``) and six (mfeat's
views: ``p = 3``, 4,096 features); ``validate`` refuses explicit widths above ``max_features``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from mmbench.contracts import FusionParams, FusionPlugin
from mmbench.data import InputSpec
from mmbench.errors import UsageError
from mmbench.plugins.fusions.layers import Projection, check_modalities, pooled


def with_one(h: Tensor) -> Tensor:
    """``[B, p] -> [B, p + 1]`` with a constant 1 appended (keeps the lower-order terms)."""
    return torch.cat([h, h.new_ones(h.shape[0], 1)], dim=1)


def outer_product(vectors: list[Tensor]) -> Tensor:
    """Flattened batched outer product of ``[B, d_i]`` tensors -> ``[B, prod(d_i)]``."""
    out = vectors[0]
    for v in vectors[1:]:
        out = (out.unsqueeze(2) * v.unsqueeze(1)).flatten(1)
    return out


AUTO_MAX_PROJ, AUTO_BUDGET = 16, 8192


def proj_dim_for(proj_dim: int | str, n_modalities: int) -> int:
    """``proj_dim`` as given, or for ``auto`` the largest ``p <= 16`` with ``(p + 1)^M <= 8,192``."""
    if proj_dim != "auto":
        return int(proj_dim)
    p = AUTO_MAX_PROJ
    while p > 1 and (p + 1) ** n_modalities > AUTO_BUDGET:
        p -= 1
    return p


class TensorParams(FusionParams):
    proj_dim: Annotated[int, Field(ge=1, le=4096)] | Literal["auto"] = "auto"
    hidden: int = Field(128, ge=1, le=65536)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    max_features: int = Field(1_000_000, ge=1, le=100_000_000)
    modalities: list[str] | None = None


class TensorFusionModel(nn.Module):
    """``dict[str, Tensor]`` -> logits ``[B, num_classes]`` from the ``(p + 1)^M`` outer product."""

    def __init__(
        self,
        spec: InputSpec,
        *,
        proj_dim: int | str = "auto",
        hidden: int = 128,
        dropout: float = 0.3,
        max_features: int = 1_000_000,
        modalities: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.names = check_modalities(spec, modalities)
        p, drop = proj_dim_for(proj_dim, len(self.names)), dropout
        self.proj = nn.ModuleDict({m: Projection(spec[m].dim, p, drop) for m in self.names})
        self.post = nn.Sequential(
            nn.Dropout(drop),
            nn.Linear((p + 1) ** len(self.names), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, spec.num_outputs),
        )

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.post(outer_product([with_one(self.proj[m](pooled(batch, m))) for m in self.names]))


class TensorFusion(FusionPlugin):
    """Outer product of modality projections with an appended 1 (TFN)."""

    params_model = TensorParams

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            "proj_dim": trial.suggest_categorical("proj_dim", [8, 16, 24, 32]),
            "hidden": trial.suggest_categorical("hidden", [64, 128, 256]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        }

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        names = check_modalities(spec, params["modalities"])
        width = (proj_dim_for(params["proj_dim"], len(names)) + 1) ** len(names)
        if width > params["max_features"]:
            largest = int(math.floor(params["max_features"] ** (1 / len(names)))) - 1
            raise UsageError(
                f"tensor fusion of {len(names)} modalities with fusion.proj_dim={params['proj_dim']} has "
                f"{width:,} features (more than fusion.max_features={params['max_features']:,}); "
                f"use fusion.proj_dim <= {largest}"
            )

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return TensorFusionModel(spec, **params)
