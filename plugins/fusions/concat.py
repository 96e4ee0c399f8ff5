"""``concat``: early fusion. Each modality is projected (Linear, BatchNorm, ReLU, dropout), the
projections are concatenated and an MLP classifies them. Sequences are mean-pooled first."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from mmbench.contracts import FusionParams, FusionPlugin
from mmbench.data import InputSpec
from mmbench.plugins.fusions.layers import Projection, check_modalities, mlp_head, pooled


class ConcatParams(FusionParams):
    proj_dim: int = Field(256, ge=1, le=65536)
    hidden: int = Field(256, ge=1, le=65536)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    modalities: list[str] | None = None


class ConcatModel(nn.Module):
    """``dict[str, Tensor]`` (``[B, D_m]`` or ``[B, T, D_m]``) -> logits ``[B, num_classes]``."""

    def __init__(
        self,
        spec: InputSpec,
        *,
        proj_dim: int = 256,
        hidden: int = 256,
        dropout: float = 0.3,
        modalities: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.names = check_modalities(spec, modalities)
        self.proj = nn.ModuleDict({m: Projection(spec[m].dim, proj_dim, dropout) for m in self.names})
        self.head = mlp_head(proj_dim * len(self.names), hidden, spec.num_outputs, dropout)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.head(torch.cat([self.proj[m](pooled(batch, m)) for m in self.names], dim=-1))


class ConcatFusion(FusionPlugin):
    """Early fusion by concatenating modality projections."""

    params_model = ConcatParams

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            "proj_dim": trial.suggest_categorical("proj_dim", [128, 256, 512]),
            "hidden": trial.suggest_categorical("hidden", [128, 256, 512]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        }

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        check_modalities(spec, params["modalities"])

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return ConcatModel(spec, **params)
