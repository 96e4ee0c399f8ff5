"""Trainer features: losses, balancing from train only, early stopping, accumulation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmbench.protocol import load_protocol
from mmbench.training.losses import FocalLoss, inverse_frequency_weights
from mmbench.training.tensors import TensorSplit
from mmbench.training.trainer import Trainer


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
    import mmbench.training.losses as losses_mod

    def spy(labels, k):
        seen.append(labels.clone())
        return inverse_frequency_weights(labels, k)

    # The classification task builds the loss (mmbench.tasks), with the weights of losses.py.
    monkeypatch.setattr(losses_mod, "inverse_frequency_weights", spy)
    train, dev = _split(60, 0), _split(30, 1)
    Trainer(Linear(), _cfg(max_epochs=1), "weighted_f1", 3, torch.device("cpu")).fit(train, dev, 0)
    assert len(seen) == 1 and torch.equal(seen[0], train.labels)
    w = inverse_frequency_weights(torch.tensor([0, 0, 0, 1]), 3)
    torch.testing.assert_close(w, torch.tensor([4 / 6, 2.0, 0.0]))


def test_oversampling_draws_classes_about_equally():
    labels = torch.tensor([0] * 80 + [1] * 15 + [2] * 5)
    trainer = Trainer(Linear(), _cfg(imbalance="oversample"), "weighted_f1", 3, torch.device("cpu"))
    order = trainer.epoch_order(labels, torch.Generator().manual_seed(0))
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


# ------------------------------------------------------------------ modality dropout
MODS = ["text", "audio", "visual"]


def _mm_batch(n: int = 4000) -> dict[str, torch.Tensor]:
    return {"text": torch.ones(n, 3), "audio": torch.ones(n, 2), "visual": torch.ones(n, 5, 2)}


def _mm_trainer(spec) -> Trainer:
    cfg = _cfg(modality_dropout=spec)
    return Trainer(Linear(), cfg, "weighted_f1", 3, torch.device("cpu"), modalities=MODS)


def _dropped(spec, n: int = 4000, seed: int = 0) -> torch.Tensor:
    """Bool [n, 3]: which of text/audio/visual the trainer zeroed for each sample."""
    trainer = _mm_trainer(spec)
    batch = _mm_batch(n)
    trainer.modality_dropout(batch, torch.Generator().manual_seed(seed))
    for m, x in batch.items():  # a modality is zeroed as a whole or not at all
        flat = x.reshape(n, -1)
        assert torch.all((flat == 0).all(dim=1) | (flat == 1).all(dim=1)), m
    return torch.stack([batch[m].reshape(n, -1)[:, 0] == 0 for m in MODS], dim=1)


@pytest.mark.parametrize("spec", [0.0, {"text": 0.0, "audio": 0.0}, {}])
def test_modality_dropout_zero_changes_nothing(spec):
    assert not _dropped(spec).any()


def test_modality_dropout_float_zeroes_exactly_one_modality_per_sample():
    drop = _dropped(0.9999999)
    assert torch.all(drop.sum(dim=1) == 1)
    share = drop.float().mean(dim=0)  # the one modality is chosen uniformly
    assert torch.all((share - 1 / 3).abs() < 0.03), share


def test_modality_dropout_mapping_uses_each_modalitys_rate():
    drop = _dropped({"text": 0.3, "audio": 0.6}, n=20000)
    rate = drop.float().mean(dim=0)
    assert abs(rate[0] - 0.3) < 0.02 and abs(rate[1] - 0.6) < 0.02, rate
    assert not drop[:, 2].any()  # visual is not listed: never zeroed
    # Independent draws: both zeroed about 0.3 * 0.6 of the time.
    assert abs((drop[:, 0] & drop[:, 1]).float().mean() - 0.18) < 0.02


def test_modality_dropout_mapping_never_zeroes_every_modality():
    drop = _dropped({"text": 0.5, "audio": 0.5, "visual": 0.5}, n=20000)
    assert torch.all(drop.sum(dim=1) < 3)
    # A sample drawn to lose all three keeps one chosen uniformly: p - P(all) / 3 each.
    rate = drop.float().mean(dim=0)
    assert torch.all((rate - (0.5 - 0.125 / 3)).abs() < 0.02), rate
    always = _dropped({"text": 1.0, "audio": 1.0, "visual": 1.0})
    assert torch.all(always.sum(dim=1) == 2)
    assert torch.all((always.float().mean(dim=0) - 2 / 3).abs() < 0.03)


def test_modality_dropout_mapping_parses_from_set_and_keeps_float_form():
    protocol = load_protocol("synthetic", None, None, ["train.modality_dropout={text: 0.3, audio: 1}"])
    assert protocol["train"]["modality_dropout"] == {"text": 0.3, "audio": 1.0}
    plain = load_protocol("synthetic", None, None, ["train.modality_dropout=0.2"])
    assert plain["train"]["modality_dropout"] == 0.2 and isinstance(plain["train"]["modality_dropout"], float)


@pytest.mark.parametrize(
    "value", ["{text: 1.5}", "{text: -0.1}", "{text: yes}", "{text: [0.1]}", "1.0", "-0.2", "[0.1]"]
)
def test_bad_modality_dropout_is_a_usage_error(value):
    from mmbench.errors import UsageError

    with pytest.raises(UsageError, match="train.modality_dropout"):
        load_protocol("synthetic", None, None, [f"train.modality_dropout={value}"])


def test_modality_dropout_unknown_modality_is_a_usage_error():
    from mmbench.errors import UsageError

    with pytest.raises(UsageError, match="train.modality_dropout.*'speech'"):
        _mm_trainer({"speech": 0.2})
    with pytest.raises(UsageError, match="train.modality_dropout"):  # probabilities are checked here too
        _mm_trainer({"text": 2.0})


def test_fit_with_per_modality_dropout():
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, batch):
            return self.fc(torch.cat([batch["a"], batch["b"]], dim=1))

    def split(n, seed):
        s = _split(n, seed)
        return TensorSplit({"a": s.inputs["x"][:, :2], "b": s.inputs["x"][:, 2:]}, s.labels)

    cfg = _cfg(max_epochs=2, modality_dropout={"a": 0.5})
    fit = Trainer(TwoInputs(), cfg, "weighted_f1", 3, torch.device("cpu"), modalities=["a", "b"]).fit(
        split(64, 0), split(16, 1), 0
    )
    assert fit.epochs_run == 2 and all(torch.isfinite(torch.tensor(h["train_loss"])) for h in fit.history)


@pytest.mark.parametrize("n", [40, 44])
def test_last_partial_accumulation_group_is_scaled_by_its_real_size(n):
    """n = 40: batches 8 x 5 with accumulation 2 end in a group of one batch; n = 44 in a group of
    8 + 4 rows. Each group's step must equal a manual AdamW step on the mean loss over its rows."""
    train, dev = _split(n, 0), _split(16, 1)
    cfg = _cfg(max_epochs=1, batch_size=8, grad_accum=2, imbalance="none", scheduler="none")
    torch.manual_seed(0)
    model = Linear()
    Trainer(model, cfg, "weighted_f1", 3, torch.device("cpu")).fit(train, dev, 0)

    from mmbench.training.trainer import make_adamw

    torch.manual_seed(0)
    manual = Linear()
    optimizer = make_adamw(manual.parameters(), cfg["lr"], cfg["weight_decay"])
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))  # the trainer's epoch order
    x, y = train.inputs["x"][order], train.labels[order]
    for start in range(0, n, 16):  # groups of 2 x 8 rows; the last one shorter
        optimizer.zero_grad()
        F.cross_entropy(manual.fc(x[start : start + 16]), y[start : start + 16]).backward()
        optimizer.step()
    torch.testing.assert_close(model.fc.weight, manual.fc.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.fc.bias, manual.fc.bias, rtol=1e-5, atol=1e-6)


def test_fp16_is_refused_on_cpu():
    from mmbench.errors import UsageError

    with pytest.raises(UsageError, match="fp16 needs CUDA"):
        Trainer(Linear(), _cfg(), "weighted_f1", 3, torch.device("cpu"), precision="fp16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 loss scaling runs on CUDA only")
def test_fp16_on_cuda_trains_with_a_grad_scaler(monkeypatch):
    scaled = []
    real_scale = torch.amp.GradScaler.scale

    def spy(self, outputs):
        scaled.append(self.is_enabled())
        return real_scale(self, outputs)

    monkeypatch.setattr(torch.amp.GradScaler, "scale", spy)
    train, dev = _split(64, 0), _split(16, 1)
    cfg = _cfg(max_epochs=1, batch_size=16, imbalance="none", scheduler="none")
    trainer = Trainer(Linear(), cfg, "weighted_f1", 3, torch.device("cuda"), precision="fp16")
    cuda = torch.device("cuda")
    trainer.fit(train.to(cuda), dev.to(cuda), 0)
    assert scaled and all(scaled)


def test_evaluation_batches_shrink_with_sequence_length_not_below_the_training_batch():
    from mmbench.training.trainer import EVAL_STEP_BUDGET

    trainer = Trainer(Linear(), _cfg(batch_size=16), "weighted_f1", 3, torch.device("cpu"))
    flat = TensorSplit({"x": torch.zeros(5000, 4)}, torch.zeros(5000, dtype=torch.long))
    assert trainer.eval_rows(flat) == 1024
    long = TensorSplit(
        {"x": torch.zeros(10, 500, 4), "mask:x": torch.ones(10, 500, dtype=torch.bool)},
        torch.zeros(10, dtype=torch.long),
    )
    assert trainer.eval_rows(long) == EVAL_STEP_BUDGET // 500 == 32
    huge = TensorSplit(
        {"x": torch.zeros(2, 5000, 1), "mask:x": torch.ones(2, 5000, dtype=torch.bool)},
        torch.zeros(2, dtype=torch.long),
    )
    assert trainer.eval_rows(huge) == 16  # the training batch is the floor
