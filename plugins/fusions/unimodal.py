"""``unimodal``: the single-modality baseline every leaderboard needs.

``--set fusion.modality=audio`` picks the modality (default: ``text`` when present, else the
first modality). The other modalities are ignored entirely."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from torch import Tensor, nn

from mmbench.contracts import FusionParams, FusionPlugin
from mmbench.data import InputSpec
from mmbench.errors import UsageError
from mmbench.plugins.fusions.layers import Projection, mlp_head, pooled


def chosen_modality(spec: InputSpec, modality: str) -> str:
    """``modality``, or for ``auto`` ``text`` when present, else the first modality."""
    if modality == "auto":
        return "text" if "text" in spec else spec.names[0]
    return modality


class UnimodalParams(FusionParams):
    modality: str = Field("auto", min_length=1)
    hidden: int = Field(256, ge=1, le=65536)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)


class UnimodalModel(nn.Module):
    """``dict[str, Tensor]`` -> logits ``[B, num_classes]`` from one modality only."""

    def __init__(
        self, spec: InputSpec, *, modality: str = "auto", hidden: int = 256, dropout: float = 0.3
    ) -> None:
        super().__init__()
        self.modality = chosen_modality(spec, modality)
        self.proj = Projection(spec[self.modality].dim, hidden, dropout)
        self.head = mlp_head(hidden, hidden, spec.num_outputs, dropout)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.head(self.proj(pooled(batch, self.modality)))


class UnimodalFusion(FusionPlugin):
    """One modality, projected and classified."""

    params_model = UnimodalParams

    def search_space(self, trial: Any) -> dict[str, Any]:
        return {
            "hidden": trial.suggest_categorical("hidden", [128, 256, 512]),
            "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        }

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        if params["modality"] != "auto" and params["modality"] not in spec:
            raise UsageError(
                f"fusion.modality={params['modality']!r} is not a modality of the data; "
                f"choose one of {spec.names}"
            )

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        return UnimodalModel(spec, **params)
