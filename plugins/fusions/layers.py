"""Building blocks shared by the built-in fusions."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmbench.data import InputSpec, mask_key


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over the time axis of ``[B, T, D]`` counting only real steps (``mask`` True)."""
    if mask is None:
        return x.mean(dim=1)
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def pooled(batch: dict[str, Tensor], modality: str) -> Tensor:
    """The modality as one vector per sample: sequences are mean-pooled over real steps."""
    x = batch[modality]
    if x.dim() == 3:
        return masked_mean(x, batch.get(mask_key(modality)))
    return x


class Projection(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Dropout; works on ``[B, D]`` and ``[B, T, D]`` inputs."""

    def __init__(self, d_in: int, d_out: int, dropout: float, batch_norm: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.norm = nn.BatchNorm1d(d_out) if batch_norm else nn.Identity()
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``mask`` (``[B, T]``, True = real step) keeps padded steps out of BatchNorm's statistics."""
        h = self.linear(x)
        if h.dim() == 3 and isinstance(self.norm, nn.BatchNorm1d):
            if mask is None:
                h = self.norm(h.transpose(1, 2)).transpose(1, 2)
            else:
                # Normalise the real steps only (batch statistics and running averages alike);
                # padded steps come out as zeros. Boolean indexing costs one host sync per call.
                real = self.norm(h[mask])
                h = torch.zeros(h.shape, dtype=real.dtype, device=h.device).index_put((mask,), real)
        else:
            h = self.norm(h)
        return self.drop(self.act(h))


def mlp_head(d_in: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Classifier ``d_in -> hidden -> classes`` with ReLU and dropout."""
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
    )


def check_modalities(spec: InputSpec, wanted: list[str] | None) -> list[str]:
    """The modalities a fusion should use: ``wanted`` (validated) or all of them."""
    from mmbench.errors import UsageError

    if not wanted:
        return spec.names
    missing = [m for m in wanted if m not in spec]
    if missing:
        raise UsageError(f"fusion.modalities names {missing} but the data has {spec.names}")
    return list(wanted)


def seq_mask(batch: dict[str, Tensor], modality: str) -> Tensor | None:
    """The modality's time-step mask, or None for utterance-level inputs."""
    return batch.get(mask_key(modality))
