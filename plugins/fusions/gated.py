"""``gated``: Gated Multimodal Unit (GMU; Arevalo et al., "Gated Multimodal Units for Information
Fusion", ICLR 2017 workshop), generalised to ``M`` modalities.

Each modality (sequences mean-pooled over real steps) ``x_m`` of width ``D_m`` gets a candidate
representation ``h_m = tanh(W_m x_m)`` -> ``[B, hidden]``. Gates are computed from all inputs
together, ``g = W_z [x_1; ...; x_M]`` -> ``[B, M, hidden]``, and the fused vector is
``h = sum_m z_m * h_m`` -> ``[B, hidden]``, classified by an MLP ``hidden -> hidden -> classes``.

* ``gate: softmax`` (default): ``z = softmax_m(g)`` per hidden unit, a convex combination of the
  modalities. For ``M = 2`` this is exactly the bimodal GMU, ``z h_1 + (1 - z) h_2`` with
  ``z = sigmoid(w_z [x_1; x_2])``.
* ``gate: sigmoid``: ``z_m = sigmoid(g_m)``, an independent gate per modality and unit.

Inputs pass through dropout first; the gates let the model weigh each modality per sample.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from mmbench.contracts import FusionParams, FusionPlugin
from mmbench.data import InputSpec
from mmbench.errors import UsageError
from mmbench.plugins.fusions.layers import check_modalities, mlp_head, pooled


class GatedParams(FusionParams):
    hidden: int = Field(256, ge=1, le=65536)
    gate: Literal["softmax", "sigmoid"] = "softmax"
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    modalities: list[str] | None = None


class GatedModel(nn.Module):
    """``dict[str, Tensor]`` of at least two modalities -> logits ``[B, num_classes]``."""

    def __init__(
        self,
        spec: InputSpec,
        *,
        hidden: int = 256,
        gate: str = "softmax",
        dropout: float = 0.3,
        modalities: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.names = check_modalities(spec, modalities)
        self.hidden = hidden
        self.softmax = gate == "softmax"
        self.drop = nn.Dropout(dropout)
        self.candidate = nn.ModuleDict({m: nn.Linear(spec[m].dim, hidden) for m in self.names})
        self.gate = nn.Linear(sum(spec[m].dim for m in self.names), hidden * len(self.names))
        self.head = mlp_head(hidden, hidden, spec.num_outputs, dropout)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        xs = [self.drop(pooled(batch, m)) for m in self.names]
        h = torch.stack(
            [torch.tanh(self.candidate[m](x)) for m, x in zip(self.names, xs, strict=True)], dim=1
        )
        g = self.gate(torch.cat(xs, dim=-1)).view(-1, len(self.names), self.hidden)
        z = torch.softmax(g, dim=1) if self.softmax else torch.sigmoid(g)
        return self.head((z * h).sum(dim=1))


class GatedFusion(FusionPlugin):
    """Gated Multimodal Unit: per-unit gates weigh tanh projections of each modality."""

    params_model = GatedParams

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            "hidden": trial.suggest_categorical("hidden", [64, 128, 256, 512]),
            "gate": trial.suggest_categorical("gate", ["softmax", "sigmoid"]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        }

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        if len(check_modalities(spec, params["modalities"])) < 2:
            raise UsageError("gated needs at least two modalities")

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return GatedModel(spec, **params)
