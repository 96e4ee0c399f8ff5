"""Whole splits as tensors on the device; batches are index slices, not per-item objects.

Besides ``modality`` features and ``mask:<modality>`` masks, a split holds the int64 token
arrays of in-model encoders as ``tokens:<modality>:<name>`` (tokenised once, never per epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mmbench.data import MultimodalData, mask_key


def token_prefix(modality: str) -> str:
    """Prefix of the batch keys that carry an in-model encoder's token arrays."""
    return f"tokens:{modality}:"


def token_key(modality: str, name: str) -> str:
    """Batch key of one token array (e.g. ``tokens:text:input_ids``) of an in-model encoder."""
    return token_prefix(modality) + name


@dataclass
class TensorSplit:
    """One split's inputs (``modality -> tensor``, plus masks of sequences) and labels."""

    inputs: dict[str, Tensor]
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def slice(self, start: int, stop: int) -> dict[str, Tensor]:
        return {k: v[start:stop] for k, v in self.inputs.items()}

    def batch_ranges(self, batch_size: int, training: bool = False) -> list[tuple[int, int]]:
        """Row ranges ``[start, stop)`` of consecutive batches of ``batch_size`` rows.

        ``training``: BatchNorm cannot train on a batch of one, so a trailing single row is dropped.
        """
        n = len(self)
        stop = n - 1 if training and n % batch_size == 1 and n > 1 else n
        return [(start, min(start + batch_size, stop)) for start in range(0, stop, batch_size)]

    def batch(self, start: int, stop: int) -> tuple[dict[str, Tensor], Tensor]:
        """The inputs and labels of rows ``[start, stop)``."""
        return self.slice(start, stop), self.labels[start:stop]

    def in_split_order(self, outputs: Tensor) -> Tensor:
        """Per-row outputs of :meth:`batch_ranges`' batches, concatenated, in the split's row order."""
        return outputs

    def with_inputs(self, inputs: dict[str, Tensor]) -> TensorSplit:
        """The same rows and labels with other per-row inputs (e.g. a modality removed)."""
        return TensorSplit(inputs, self.labels)

    def take(self, index: Tensor) -> TensorSplit:
        """A new split holding the rows ``index`` (one gather per tensor)."""
        return TensorSplit(
            {k: v.index_select(0, index) for k, v in self.inputs.items()},
            self.labels.index_select(0, index),
        )

    def to(self, device: torch.device | str, pin: bool = False) -> TensorSplit:
        def move(t: Tensor) -> Tensor:
            if pin and t.device.type == "cpu":
                t = t.pin_memory()
            return t.to(device, non_blocking=pin)

        return TensorSplit({k: move(v) for k, v in self.inputs.items()}, move(self.labels))


def split_tensors(data: MultimodalData, split: str, device: torch.device | str) -> TensorSplit:
    """The rows of ``split`` as float32 tensors (sequence modalities get a bool mask).

    In-model encoders' token arrays come along as int64 ``tokens:<modality>:<name>`` entries.
    """
    idx = data.splits[split]
    inputs: dict[str, Tensor] = {}
    for modality in data.modalities:
        arr = data.concatenated(modality)[idx]
        inputs[modality] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        if arr.ndim == 3:
            lengths = data.lengths.get(modality)
            if lengths is None:
                lengths = np.full(len(data.labels), arr.shape[1])
            steps = np.arange(arr.shape[1])[None, :]
            inputs[mask_key(modality)] = torch.from_numpy(steps < lengths[idx][:, None])
    for modality, info in data.in_model.items():
        for name, arr in info["tokens"].items():
            inputs[token_key(modality, name)] = torch.from_numpy(
                np.ascontiguousarray(arr[idx], dtype=np.int64)
            )
    # Class indices (int64), or a regression task's float targets (float32).
    dtype = np.float32 if np.issubdtype(np.asarray(data.labels).dtype, np.floating) else np.int64
    labels = torch.from_numpy(np.asarray(data.labels[idx], dtype=dtype))
    pin = torch.device(device).type == "cuda"
    return TensorSplit(inputs, labels).to(device, pin=pin)
