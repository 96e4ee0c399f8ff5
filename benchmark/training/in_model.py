"""Encoders trained inside the fusion model (fine-tuning end to end).

An in-model encoder (see ``EncoderPlugin.in_model``) does not produce features before training.
Its token arrays ride in every batch as ``tokens:<modality>:<name>``; :class:`WithEncoders`
runs the encoder module on them in ``forward``, puts the result into ``batch[modality]`` (and
``mask:<modality>`` for sequences) and calls the fusion model, which therefore sees exactly the
batch a frozen encoder would have given it. Gradients flow into the encoder.

An encoder module may define ``prepare(tokens)``: :func:`attach_encoders` calls it once with the
whole dataset's token arrays (``name -> [N, T]``), e.g. to compute frozen lower layers' states
once per utterance (``hf-text`` with ``freeze_layers``). Parameters that do not require
gradients (frozen layers) are left out of the optimizer.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from mmbench.data import MultimodalData, mask_key
from mmbench.training.tensors import token_prefix


class WithEncoders(nn.Module):
    """A fusion model preceded by trainable encoders, one per in-model modality."""

    def __init__(self, fusion: nn.Module, encoders: dict[str, nn.Module], lrs: dict[str, float | None]):
        super().__init__()
        self.fusion = fusion
        self.encoders = nn.ModuleDict(encoders)
        self.encoder_lr = dict(lrs)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        batch = dict(batch)
        for modality, encoder in self.encoders.items():
            prefix = token_prefix(modality)
            keys = [k for k in batch if k.startswith(prefix)]
            out = encoder({k[len(prefix) :]: batch.pop(k) for k in keys})
            if isinstance(out, tuple):
                batch[modality], batch[mask_key(modality)] = out
            else:
                batch[modality] = out
        return self.fusion(batch)

    def optimizer_groups(self, lr: float) -> list[dict[str, Any]]:
        """Fusion parameters at ``lr``; each encoder's at its own ``lr`` option when given."""
        groups: list[dict[str, Any]] = [{"params": list(self.fusion.parameters()), "lr": lr}]
        for modality, encoder in self.encoders.items():
            own = self.encoder_lr.get(modality)
            trained = [p for p in encoder.parameters() if p.requires_grad]
            if trained:
                groups.append({"params": trained, "lr": float(own) if own else lr})
        return groups


def attach_encoders(model: nn.Module, data: MultimodalData, registry: Any) -> nn.Module:
    """``model`` wrapped with the data's in-model encoders, or ``model`` itself when there are none."""
    if not data.in_model:
        return model
    modules: dict[str, nn.Module] = {}
    lrs: dict[str, float | None] = {}
    for modality, info in data.in_model.items():
        plugin = registry.create("encoder", info["encoder"])
        modules[modality] = plugin.build_module(info["options"])
        prepare = getattr(modules[modality], "prepare", None)
        if callable(prepare):
            prepare(info["tokens"])
        lrs[modality] = info.get("lr")
    return WithEncoders(model, modules, lrs)
