"""The context model of docs/context.md, registered in process as a third-party plugin, passes the kit."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from mmbench.contracts import ContextPlugin
from mmbench.registry import hookimpl
from mmbench.testing import ContextConformance, plugin_registry


class MeanPastModule(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.out_dim = 2 * dim

    def forward(self, x, mask, speaker):
        m = mask.unsqueeze(-1).to(x.dtype)
        past = torch.cumsum(x * m, dim=1) / torch.cumsum(m, dim=1).clamp_min(1)
        return torch.cat([x, past], dim=-1)


class MeanPast(ContextPlugin):
    """Running mean of the past utterances (the example of docs/context.md)."""

    default_params = {"utterance_dim": 64, "causal": True}

    def build(self, dim, params):
        return MeanPastModule(dim)


class _Plugin:
    @hookimpl
    def mmbench_register_context_models(self, registry):
        registry.add_context_model("mean-past", f"{__name__}:MeanPast", "Mean of past utterances")


@pytest.fixture(autouse=True, scope="module")
def _registered():
    sys.modules.setdefault(__name__, types.ModuleType(__name__))
    with plugin_registry(("mean-past-plugin", _Plugin())):
        yield


class TestMeanPast(ContextConformance):
    context_name = "mean-past"
