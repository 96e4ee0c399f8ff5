"""``unimodal``: the single-modality baseline every leaderboard needs.

``--set fusion.modality=audio`` picks the modality (default: ``text`` when present, else the
first modality). The other modalities are ignored entirely."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from mmbench.contracts import FusionPlugin
from mmbench.data import InputSpec
from mmbench.errors import UsageError
from mmbench.plugins.fusions.layers import Projection, mlp_head, pooled


def chosen_modality(spec: InputSpec, params: dict[str, Any]) -> str:
    if params["modality"] == "auto":
        return "text" if "text" in spec else spec.names[0]
    return params["modality"]


class UnimodalModel(nn.Module):
    def __init__(self, spec: InputSpec, params: dict[str, Any]) -> None:
        super().__init__()
        self.modality = chosen_modality(spec, params)
        self.proj = Projection(spec[self.modality].dim, params["hidden"], params["dropout"])
        self.head = mlp_head(params["hidden"], params["hidden"], spec.num_classes, params["dropout"])

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.head(self.proj(pooled(batch, self.modality)))


class UnimodalFusion(FusionPlugin):
    """One modality, projected and classified."""

    default_params = {"modality": "auto", "hidden": 256, "dropout": 0.3}

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
        return UnimodalModel(spec, params)
