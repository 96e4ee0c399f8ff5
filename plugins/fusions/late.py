"""``late``: late fusion. One classifier per modality; their logits are combined by a plain mean
(``combine: mean``) or by learned, softmax-normalised modality weights (``combine: learned``).
Because the combined logit is a sum of per-modality functions, late fusion cannot represent an
interaction between modalities (the synthetic ``synergy`` preset shows this)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from mmbench.contracts import FusionParams, FusionPlugin
from mmbench.data import InputSpec
from mmbench.plugins.fusions.layers import Projection, check_modalities, pooled


class LateParams(FusionParams):
    hidden: int = Field(256, ge=1, le=65536)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    combine: Literal["mean", "learned"] = "mean"
    modalities: list[str] | None = None


class LateModel(nn.Module):
    """``dict[str, Tensor]`` -> logits ``[B, num_classes]`` (combined per-modality logits)."""

    def __init__(
        self,
        spec: InputSpec,
        *,
        hidden: int = 256,
        dropout: float = 0.3,
        combine: str = "mean",
        modalities: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.names = check_modalities(spec, modalities)
        self.classifiers = nn.ModuleDict(
            {
                m: nn.Sequential(
                    Projection(spec[m].dim, hidden, dropout), nn.Linear(hidden, spec.num_outputs)
                )
                for m in self.names
            }
        )
        self.learned = combine == "learned"
        self.weight_logits = nn.Parameter(torch.zeros(len(self.names))) if self.learned else None

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        logits = torch.stack([self.classifiers[m](pooled(batch, m)) for m in self.names], dim=0)
        if self.weight_logits is None:
            return logits.mean(dim=0)
        w = torch.softmax(self.weight_logits, dim=0).to(logits.dtype)
        return torch.einsum("m,mbc->bc", w, logits)


class LateFusion(FusionPlugin):
    """Per-modality classifiers whose logits are averaged or weighted."""

    params_model = LateParams

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            "hidden": trial.suggest_categorical("hidden", [128, 256, 512]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
            "combine": trial.suggest_categorical("combine", ["mean", "learned"]),
        }

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        check_modalities(spec, params["modalities"])

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return LateModel(spec, **params)
