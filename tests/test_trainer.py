"""Trainer features: losses, balancing from train only, early stopping, accumulation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmbench.losses import FocalLoss, inverse_frequency_weights
from mmbench.protocol import load_protocol
from mmbench.tensors import TensorSplit
from mmbench.trainer import Trainer


def _cfg(**overrides):
    cfg = dict(load_protocol("synthetic", None, None, [])["train"])
    cfg.update(overrides)
    return cfg


class Linear(nn.Module):
    def __init__(self, d: int = 4, k: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(d, k)

    def forward(self, batch):
        return self.fc(batch["x"])


def _split(n: int, seed: int, labels=None) -> TensorSplit:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g) if labels is None else labels
    x = torch.randn(n, 4, generator=g) + F.one_hot(y, 4).float()
    return TensorSplit({"x": x}, y)


def test_focal_loss_reduces_to_cross_entropy_and_follows_its_formula():
    logits, target = torch.randn(16, 5), torch.randint(0, 5, (16,))
    w = torch.rand(5) + 0.1
    torch.testing.assert_close(FocalLoss(0.0, w)(logits, target), F.cross_entropy(logits, target, weight=w))
    p = F.softmax(logits, -1).gather(1, target[:, None]).squeeze(1)
    expected = (-((1 - p) ** 2) * p.log()).mean()
    torch.testing.assert_close(FocalLoss(2.0)(logits, target), expected)


def test_class_weights_come_from_train_labels_only(monkeypatch):
    seen = []
    import mmbench.trainer as trainer_mod

    def spy(labels, k):
        seen.append(labels.clone())
        return inverse_frequency_weights(labels, k)

    monkeypatch.setattr(trainer_mod, "inverse_frequency_weights", spy)
    train, dev = _split(60, 0), _split(30, 1)
    Trainer(Linear(), _cfg(max_epochs=1), "weighted_f1", 3, torch.device("cpu")).fit(train, dev, 0)
    assert len(seen) == 1 and torch.equal(seen[0], train.labels)
    w = inverse_frequency_weights(torch.tensor([0, 0, 0, 1]), 3)
    torch.testing.assert_close(w, torch.tensor([4 / 6, 2.0, 0.0]))


def test_oversampling_draws_classes_about_equally():
    labels = torch.tensor([0] * 80 + [1] * 15 + [2] * 5)
    trainer = Trainer(Linear(), _cfg(imbalance="oversample"), "weighted_f1", 3, torch.device("cpu"))
    order = trainer._epoch_order(labels, torch.Generator().manual_seed(0))
    counts = torch.bincount(labels[order], minlength=3).float() / len(order)
    assert len(order) == len(labels)
    assert torch.all((counts - 1 / 3).abs() < 0.12), counts


@pytest.mark.parametrize("patience", [1, 3])
def test_early_stopping_after_patience_epochs_without_improvement(patience):
    class Constant(Linear):
        def forward(self, batch):  # dev score never improves after epoch 1
            return self.fc(batch["x"]) * 0 + torch.tensor([1.0, 0.0, 0.0])

    train, dev = _split(40, 0), _split(20, 1)
    cfg = _cfg(max_epochs=20, patience=patience)
    fit = Trainer(Constant(), cfg, "weighted_f1", 3, torch.device("cpu")).fit(train, dev, 0)
    assert fit.best_epoch == 1
    assert len(fit.history) == 1 + patience


def test_gradient_accumulation_matches_the_larger_batch():
    """batch 8 x accumulation 2 takes the same steps as batch 16 (mean losses, no dropout)."""
    train, dev = _split(64, 0), _split(16, 1)
    results = []
    for bs, accum in ((16, 1), (8, 2)):
        torch.manual_seed(0)
        model = Linear()
        cfg = _cfg(max_epochs=2, batch_size=bs, grad_accum=accum, imbalance="none", scheduler="none")
        Trainer(model, cfg, "weighted_f1", 3, torch.device("cpu")).fit(train, dev, 0)
        results.append(model.fc.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-4, atol=1e-5)
