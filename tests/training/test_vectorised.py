"""Vectorised seeds (``mmbench.training.vectorised``): each member equals its own sequential run."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch import nn

from mmbench.plugins.fusions.concat import ConcatModel
from mmbench.training.tensors import split_tensors
from mmbench.training.trainer import Trainer, TrainingDiverged
from mmbench.training.vectorised import SeedBatch, vectorise_blocker

SEEDS = [0, 1, 2]
CFG = {
    "max_epochs": 5,
    "patience": 2,
    "batch_size": 64,
    "grad_accum": 1,
    "lr": 3e-3,
    "weight_decay": 1e-5,
    "optimizer": "adamw",
    "scheduler": "plateau",
    "scheduler_factor": 0.5,
    "scheduler_patience": 1,
    "loss": "cross_entropy",
    "focal_gamma": 2.0,
    "imbalance": "class_weights",
    "grad_clip": 0.0,
    "modality_dropout": 0.0,
}
#: Float reassociation (batched vs single matrix products) moves losses in their last digits.
LOSS_TOL = 1e-3
WEIGHT_TOL = 2e-2


@pytest.fixture(scope="module")
def splits():
    from mmbench.plugins.datasets.synthetic import generate

    data = generate(preset="mixed", n_samples=600, generator_seed=7)
    return data, {s: split_tensors(data, s, "cpu") for s in ("train", "dev")}


def make_trainer(data, seed: int, cfg: dict, model_cls=None) -> Trainer:
    """The member of ``seed`` exactly as the runner builds it: the model under ``manual_seed(seed)``."""
    torch.manual_seed(seed)
    spec = data.input_spec()
    model = (model_cls or ConcatModel)(spec, proj_dim=16, hidden=16, dropout=0.0)
    return Trainer(model, cfg, "weighted_f1", data.num_classes, torch.device("cpu"), modalities=spec.names)


def assert_same_run(seq, vec) -> None:
    assert vec.best_epoch == seq.best_epoch
    assert vec.epochs_run == seq.epochs_run and vec.stopped_early == seq.stopped_early
    assert vec.samples_seen == seq.samples_seen
    for a, b in zip(seq.history, vec.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=LOSS_TOL)
        assert b["dev_loss"] == pytest.approx(a["dev_loss"], rel=LOSS_TOL)
        assert b["dev_weighted_f1"] == pytest.approx(a["dev_weighted_f1"], abs=0.02)
        assert b["lr"] == a["lr"]
    for k, v in seq.best_state.items():
        # Adam normalises each coordinate's step: where a gradient is ~0, reassociation noise can move
        # a weight by up to ~lr per step, so weights are bounded absolutely, by a few learning rates.
        torch.testing.assert_close(vec.best_state[k], v, rtol=1e-2, atol=WEIGHT_TOL)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        # each member's own over-sampling order and modality-dropout draws, accumulation and clipping
        {"imbalance": "oversample", "modality_dropout": 0.3, "grad_accum": 2, "grad_clip": 1.0},
    ],
    ids=["plain", "oversample-dropout-accum-clip"],
)
def test_members_equal_their_sequential_runs(splits, extra):
    data, t = splits
    cfg = {**CFG, **extra}
    sequential = [make_trainer(data, s, cfg).fit(t["train"], t["dev"], s) for s in SEEDS]
    trainers = [make_trainer(data, s, cfg) for s in SEEDS]
    assert vectorise_blocker(trainers, t["train"]) is None
    batch = SeedBatch(trainers, SEEDS)
    assert batch.probe(t["train"]) is None
    t0 = time.perf_counter()
    results = batch.fit(t["train"], t["dev"])
    wall = time.perf_counter() - t0
    # each member's train_seconds is its share of the cell's epochs: the shares add up to the cell
    assert 0 < sum(r.train_seconds for r in results) <= wall
    for seq, vec, trainer in zip(sequential, results, trainers, strict=True):
        assert_same_run(seq, vec)
        # the member's own model holds its best-dev weights, in its own memory
        for k, v in trainer.model.state_dict().items():
            assert torch.equal(v, vec.best_state[k])
            assert v.untyped_storage().nbytes() == v.numel() * v.element_size()


def test_early_stopped_member_leaves_the_stack(splits):
    """With patience 1 a member stops after its first non-improving epoch, each at its own."""
    data, t = splits
    cfg = {**CFG, "patience": 1, "max_epochs": 8, "lr": 2e-2}
    sequential = [make_trainer(data, s, cfg).fit(t["train"], t["dev"], s) for s in SEEDS]
    results = SeedBatch([make_trainer(data, s, cfg) for s in SEEDS], SEEDS).fit(t["train"], t["dev"])
    assert any(r.stopped_early for r in sequential)
    for seq, vec in zip(sequential, results, strict=True):
        assert_same_run(seq, vec)


def test_diverging_member_fails_alone(splits):
    data, t = splits
    trainers = [make_trainer(data, s, CFG) for s in SEEDS]
    with torch.no_grad():
        next(trainers[1].model.parameters()).fill_(math.nan)
    results = SeedBatch(trainers, SEEDS).fit(t["train"], t["dev"])
    assert isinstance(results[1], TrainingDiverged) and results[1].epoch == 1
    for i in (0, 2):
        assert_same_run(make_trainer(data, SEEDS[i], CFG).fit(t["train"], t["dev"], SEEDS[i]), results[i])


class DataDependent(nn.Module):
    """Branches on a tensor's value: vmap cannot batch that."""

    def __init__(self, spec, **_: object) -> None:
        super().__init__()
        self.linear = nn.Linear(spec["text"].dim, spec.num_classes)

    def forward(self, batch):
        x = batch["text"]
        return self.linear(x if bool(x.sum() > 0) else -x)


def test_probe_refuses_data_dependent_control_flow(splits):
    data, t = splits
    trainers = [make_trainer(data, s, CFG, DataDependent) for s in SEEDS]
    reason = SeedBatch(trainers, SEEDS).probe(t["train"])
    assert reason is not None and "vmap" in reason


def test_blockers_name_their_reason(splits):
    from mmbench.training.dialogue import DialogueSplit

    data, t = splits
    one = [make_trainer(data, 0, CFG)]
    assert vectorise_blocker(one, t["train"]) == "one seed to train"
    two = [make_trainer(data, s, CFG) for s in (0, 1)]
    train = t["train"]
    dialogues = DialogueSplit(
        train.inputs, train.labels, torch.arange(len(train)), [0, len(train)], train.labels
    )
    assert "dialogue" in vectorise_blocker(two, dialogues)
    two[1].model.head = nn.Linear(16 * 3, data.num_classes + 1)
    assert "differ" in vectorise_blocker(two, train)


def test_regression_members_equal_their_sequential_runs(splits):
    """A regression task (L1 loss, MAE selected lower-is-better) vectorises like classification."""
    import dataclasses

    import numpy as np

    from mmbench.tasks import RegressionTask

    data, _ = splits
    targets = (np.asarray(data.labels, dtype=np.float32) - 3.5) * 0.8  # in [-2.8, 2.8]
    reg = dataclasses.replace(
        data, labels=targets, class_names=[], task="regression", target_range=(-3.0, 3.0)
    )
    t = {s: split_tensors(reg, s, "cpu") for s in ("train", "dev")}
    cfg = {**CFG, "loss": "l1", "imbalance": "none"}
    task = RegressionTask((-3.0, 3.0))

    def member(seed: int) -> Trainer:
        torch.manual_seed(seed)
        model = ConcatModel(reg.input_spec(), proj_dim=16, hidden=16, dropout=0.0)
        return Trainer(model, cfg, "mae", task, torch.device("cpu"), modalities=reg.input_spec().names)

    sequential = [member(s).fit(t["train"], t["dev"], s) for s in SEEDS]
    results = SeedBatch([member(s) for s in SEEDS], SEEDS).fit(t["train"], t["dev"])
    for seq, vec in zip(sequential, results, strict=True):
        assert vec.best_epoch == seq.best_epoch
        for a, b in zip(seq.history, vec.history, strict=True):
            assert b["dev_mae"] == pytest.approx(a["dev_mae"], rel=LOSS_TOL)
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=LOSS_TOL)
