"""``concat``: early fusion. Each modality is projected (Linear, BatchNorm, ReLU, dropout), the
projections are concatenated and an MLP classifies them. Sequences are mean-pooled first."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mmbench.contracts import FusionPlugin
from mmbench.data import InputSpec
from mmbench.plugins.fusions.layers import Projection, check_modalities, mlp_head, pooled


class ConcatModel(nn.Module):
    def __init__(self, spec: InputSpec, params: dict[str, Any]) -> None:
        super().__init__()
        self.names = check_modalities(spec, params["modalities"])
        self.proj = nn.ModuleDict(
            {m: Projection(spec[m].dim, params["proj_dim"], params["dropout"]) for m in self.names}
        )
        self.head = mlp_head(
            params["proj_dim"] * len(self.names),
            params["hidden"],
            spec.num_classes,
            params["dropout"],
        )

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.head(torch.cat([self.proj[m](pooled(batch, m)) for m in self.names], dim=-1))


class ConcatFusion(FusionPlugin):
    """Early fusion by concatenating modality projections."""

    default_params = {"proj_dim": 256, "hidden": 256, "dropout": 0.3, "modalities": None}

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            "proj_dim": trial.suggest_categorical("proj_dim", [128, 256, 512]),
            "hidden": trial.suggest_categorical("hidden", [128, 256, 512]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        }

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        check_modalities(spec, params["modalities"])

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return ConcatModel(spec, params)
