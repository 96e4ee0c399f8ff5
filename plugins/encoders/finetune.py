"""Torch side of ``hf-text``: pooling, and the text module fine-tuned inside the fusion model.

Imported only when a model is encoded or built, so registering the plugin never imports torch.

Throughput options of the fine-tuned module (docs/encoders.md, "Fine-tuning"):

* ``freeze_layers: N`` freezes the embeddings and the lowest ``N`` transformer layers. Frozen
  layers run in eval mode (no dropout) always, so their output for an utterance never changes
  during training; this changes the numbers (it is part of the encoder's identity).
* with frozen layers the module can compute their output once per utterance (:meth:`HFTextModule.prepare`,
  ``cache_frozen``) and train only the top layers from that cache: the same numbers up to float
  reassociation (the cache is computed with other padding), so it is an execution choice.
* ``gradient_checkpointing`` recomputes each trainable layer's activations in backward instead
  of storing them (less memory, about a third more compute; the same numbers).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.errors import UsageError

#: The last cache of frozen-layer states (key -> packed states), shared by the runs of one process.
_STATE_CACHE: dict[tuple, tuple[Tensor, Tensor, Tensor]] = {}


def pool(hidden: Tensor, mask: Tensor, pooling: str, pooler_output: Any = None) -> Tensor:
    """``[B, T, D]`` states and ``[B, T]`` mask -> ``[B, D]`` by masked mean, [CLS] or the pooler."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "pooler":
        if pooler_output is None:
            raise UsageError("pooling=pooler: this model has no pooler layer; use pooling=mean or cls")
        return pooler_output
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer layers of a BERT-family model (``model.encoder.layer``).

    Raises:
        UsageError: the model has no ``embeddings`` + ``encoder.layer`` (BERT, RoBERTa, MiniLM,
            ELECTRA... have them), so its lower layers cannot be frozen by mmbench.
    """
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(model, "embeddings"):
        raise UsageError(
            f"hf-text freeze_layers needs a BERT-family model (embeddings + encoder.layer); "
            f"{type(model).__name__} has none: use freeze_layers: 0"
        )
    return layers


class _GivenStates(nn.Module):
    """Stands in for the embeddings of a model view that starts from given hidden states."""

    def forward(self, input_ids: Any = None, inputs_embeds: Tensor | None = None, **_: Any) -> Tensor:
        assert inputs_embeds is not None
        return inputs_embeds


def layer_view(model: nn.Module, start: int, stop: int | None, given_states: bool) -> nn.Module:
    """``model`` running only its layers ``[start, stop)``, sharing every weight with ``model``.

    ``given_states``: the view's input is hidden states (``inputs_embeds=`` ``[B, T, D]``, the
    output of layer ``start - 1``) instead of token ids. Attention masks are built by the model
    itself, as in a full forward.
    """
    view = copy.copy(model)
    view._modules = dict(model._modules)
    encoder = copy.copy(model.encoder)
    encoder._modules = dict(model.encoder._modules)
    encoder._modules["layer"] = nn.ModuleList(list(transformer_layers(model))[start:stop])
    view._modules["encoder"] = encoder
    if given_states:
        view._modules["embeddings"] = _GivenStates()
    return view


class HFTextModule(nn.Module):
    """Token tensors -> pooled embedding ``[B, D]`` (or states ``[B, T, D]`` + mask), trained end to end.

    Batches carry the dataset-wide padded ``input_ids``/``attention_mask``; for pooled output
    each batch is trimmed to its own longest text first (dynamic padding). With ``freeze_layers``
    and a :meth:`prepare`\\ d cache, a batch also carries ``row`` (``[B, 1]`` dataset row ids) and
    only the layers above the frozen ones run.
    """

    def __init__(
        self,
        model: nn.Module,
        pooling: str,
        output: str,
        freeze_layers: int = 0,
        gradient_checkpointing: bool = False,
        cache_key: tuple = (),
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        self.model = model
        self.pooling, self.output = pooling, output
        self.freeze_layers = int(freeze_layers)
        self.cache_key, self.batch_size, self.prepare_device = cache_key, int(batch_size), device
        self.frozen: list[nn.Module] = []
        if self.freeze_layers:
            layers = transformer_layers(model)
            if self.freeze_layers > len(layers):
                raise UsageError(
                    f"hf-text freeze_layers {self.freeze_layers} exceeds the model's {len(layers)} layers"
                )
            self.frozen = [model.embeddings, *list(layers)[: self.freeze_layers]]
            for part in self.frozen:
                part.requires_grad_(False)
        if gradient_checkpointing:
            if not getattr(model, "supports_gradient_checkpointing", False):
                raise UsageError(
                    f"hf-text gradient_checkpointing: {type(model).__name__} does not support it"
                )
            kwargs = {"use_reentrant": False}
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x
                model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        # Packed frozen-layer states (not in the state_dict: they are recomputed from the weights).
        for name in ("cached_states", "cached_offsets", "cached_lengths"):
            self.register_buffer(name, torch.zeros(0), persistent=False)
        self.views: dict[str, nn.Module] = {}

    def train(self, mode: bool = True) -> HFTextModule:
        """Train mode for the trainable layers; frozen layers stay in eval mode (no dropout)."""
        super().train(mode)
        for part in self.frozen:
            part.eval()
        return self

    # ------------------------------------------------------------- frozen cache
    @property
    def cached(self) -> bool:
        return self.cached_states.dim() == 2

    def _view(self, name: str) -> nn.Module:
        if name not in self.views:
            if name == "top":
                self.views[name] = layer_view(self.model, self.freeze_layers, None, given_states=True)
            else:
                self.views[name] = layer_view(self.model, 0, self.freeze_layers, given_states=False)
        view = self.views[name]
        if view.training != self.training:
            view.training = view.encoder.training = self.training
        return view

    @torch.no_grad()
    def frozen_states(self, input_ids: np.ndarray, mask: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
        """The frozen layers' output for every row, packed: float32 ``[sum(lengths), D]``, the
        int64 row offsets ``[N]`` and lengths ``[N]``. Rows run longest first in batches of
        ``batch_size``, each padded to its own longest text, in eval mode."""
        device = next(self.model.parameters()).device
        bottom = self._view("bottom").eval()
        lengths = mask.sum(1).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        states: Tensor | None = None
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            steps = int(lengths[idx].max())
            ids = torch.from_numpy(input_ids[idx, :steps]).to(device)
            m = torch.from_numpy(mask[idx, :steps]).to(device)
            hidden = bottom(input_ids=ids, attention_mask=m).last_hidden_state.float()
            if states is None:
                states = torch.zeros(int(lengths.sum()), hidden.shape[-1], device=device)
            for row, h in zip(idx, hidden, strict=True):
                states[offsets[row] : offsets[row] + lengths[row]] = h[: lengths[row]]
        empty = torch.zeros(0, 0, device=device)
        return (
            states if states is not None else empty,
            torch.from_numpy(offsets).to(device),
            torch.from_numpy(lengths).to(device),
        )

    def prepare(self, tokens: dict[str, np.ndarray]) -> None:
        """Compute the frozen layers' states of every dataset row once (``tokens`` as tokenised,
        ``[N, T]``); batches then name their rows in ``row``. A no-op without ``row`` tokens.

        The last result is kept for the process (keyed by the model, ``freeze_layers`` and the
        token arrays), so the runs of one sweep compute it once. It is computed on the encoder's
        ``device`` option (``auto``: CUDA when present); the trainer then moves the module to the
        run's device.
        """
        if not self.freeze_layers or "row" not in tokens:
            return
        self.to(self.prepare_device)
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        digest = hashlib.sha256(ids.tobytes() + mask.tobytes()).hexdigest()
        key = (*self.cache_key, self.freeze_layers, ids.shape, digest)
        if key not in _STATE_CACHE:
            _STATE_CACHE.clear()
            _STATE_CACHE[key] = tuple(t.cpu() for t in self.frozen_states(ids, mask))  # type: ignore[assignment]
        device = next(self.model.parameters()).device
        states, offsets, lengths = (t.to(device) for t in _STATE_CACHE[key])
        self.cached_states, self.cached_offsets, self.cached_lengths = states, offsets, lengths

    def rows_states(self, rows: Tensor, steps: int) -> Tensor:
        """Cached frozen states of dataset ``rows`` ``[B]``, right-padded with zeros: ``[B, steps, D]``."""
        pos = torch.arange(steps, device=rows.device)
        valid = pos[None, :] < self.cached_lengths[rows][:, None]
        index = torch.where(valid, self.cached_offsets[rows][:, None] + pos[None, :], 0)
        return self.cached_states[index] * valid.unsqueeze(-1)

    # ------------------------------------------------------------------ forward
    def forward(self, tokens: dict[str, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        if self.output != "sequence":
            steps = int(mask.sum(1).max())
            ids, mask = ids[:, :steps], mask[:, :steps]
        if self.cached and "row" in tokens:
            states = self.rows_states(tokens["row"][:, 0], ids.shape[1])
            out = self._view("top")(inputs_embeds=states, attention_mask=mask)
        else:
            out = self.model(input_ids=ids, attention_mask=mask)
        if self.output == "sequence":
            return out.last_hidden_state, mask.bool()
        return pool(out.last_hidden_state, mask, self.pooling, getattr(out, "pooler_output", None))
