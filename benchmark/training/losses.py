"""Training losses: cross-entropy and focal loss, both with optional class weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017): ``-w_y (1 - p_y)^gamma log p_y``, mean over the batch.

    ``gamma = 0`` gives (weighted) cross-entropy up to the normalisation: like
    ``F.cross_entropy`` with weights, the mean divides by the summed weights of the batch.
    """

    def __init__(self, gamma: float = 2.0, weight: Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        log_p = F.log_softmax(logits.float(), dim=-1).gather(1, target[:, None]).squeeze(1)
        loss = -((1.0 - log_p.exp()) ** self.gamma) * log_p
        if self.weight is None:
            return loss.mean()
        w = self.weight[target]
        return (w * loss).sum() / w.sum().clamp_min(1e-12)


def make_loss(name: str, gamma: float, class_weights: Tensor | None) -> nn.Module:
    if name == "focal":
        return FocalLoss(gamma, class_weights)
    return nn.CrossEntropyLoss(weight=class_weights)


def inverse_frequency_weights(labels: Tensor, num_classes: int) -> Tensor:
    """``n / (K * count_k)`` from the train labels; classes absent from train get weight 0."""
    counts = torch.bincount(labels, minlength=num_classes).double()
    present = counts > 0
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[present] = labels.numel() / (present.sum() * counts[present])
    return weights.float()


class RegressionLoss(nn.Module):
    """L1 (MMSA's default for CMU-MOSI/MOSEI/CH-SIMS) or MSE between a model's single output column
    ``[B, 1]`` (or ``[B]``) and float targets ``[B]``; mean over the batch."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        pred = outputs.float().reshape(target.shape[0], -1)[:, 0]
        if self.kind == "mse":
            return F.mse_loss(pred, target.float())
        return F.l1_loss(pred, target.float())
