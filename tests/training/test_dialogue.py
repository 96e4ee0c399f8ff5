"""Batching by dialogue: order, padding, and proof that padded positions reach no loss or metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmbench.data import MultimodalData
from mmbench.errors import UsageError
from mmbench.registry import get_registry
from mmbench.training.dialogue import (
    DIALOGUE_INDEX,
    DIALOGUE_MASK,
    DIALOGUE_SPEAKER,
    DialogueModel,
    dialogue_order,
    dialogue_split,
)
from mmbench.training.tensors import split_tensors
from mmbench.training.trainer import Trainer

# Dialogues of 3, 1, 120 (longer than IEMOCAP's longest) and 5 utterances, rows shuffled, with
# positions; features hold (dialogue, position) so every placement can be checked.
LENGTHS = {"a": 3, "b": 1, "c": 120, "d": 5}


def conversation_data(seed: int = 0) -> MultimodalData:
    rng = np.random.default_rng(seed)
    dialogue = np.array([d for d, n in LENGTHS.items() for _ in range(n)])
    positions = np.concatenate([rng.permutation(n) * 2 for n in LENGTHS.values()])  # gaps allowed
    speakers = np.array([f"{d}-{'xyz'[p % 3]}" for d, p in zip(dialogue, positions, strict=True)])
    perm = rng.permutation(len(dialogue))
    dialogue, positions, speakers = dialogue[perm], positions[perm], speakers[perm]
    code = np.array([ord(d) - ord("a") for d in dialogue], dtype=np.float32)
    feats = np.stack([code, positions.astype(np.float32), rng.normal(size=len(code))], axis=1)
    labels = (positions // 2 % 3).astype(np.int64)
    n = len(labels)
    return MultimodalData(
        name="conv",
        modalities={"text": {"text": feats.astype(np.float32)}},
        labels=labels,
        class_names=["x", "y", "z"],
        splits={
            "train": np.arange(n, dtype=np.int64),
            "dev": np.array([], np.int64),
            "test": np.array([], np.int64),
        },
        groups={"dialogue": dialogue, "speaker": speakers},
        positions=positions.astype(np.int64),
    )


@pytest.fixture(scope="module")
def split():
    data = conversation_data()
    return data, dialogue_split(data, "train", split_tensors(data, "train", "cpu"))


def test_dialogues_in_order_of_position_with_parties(split):
    data, s = split
    rows = s.rows.numpy()
    assert sorted(np.diff(s.offsets).tolist()) == sorted(LENGTHS.values())
    for d in range(s.n_dialogues):
        members = rows[s.offsets[d] : s.offsets[d + 1]]
        assert len(set(data.groups["dialogue"][members])) == 1
        assert np.all(np.diff(data.positions[members]) > 0)
        # parties: 0, 1, ... in order of first appearance inside the dialogue
        party = s.party.numpy()[members]
        first_seen = list(dict.fromkeys(party.tolist()))
        assert first_seen == list(range(len(first_seen)))


def test_batch_layout_places_every_utterance_at_its_position(split):
    data, s = split
    for start, stop in s.batch_ranges(4):
        inputs, labels = s.batch(start, stop)
        index, mask, speaker = inputs[DIALOGUE_INDEX], inputs[DIALOGUE_MASK], inputs[DIALOGUE_SPEAKER]
        x = inputs["text"]
        assert x.shape[0] == labels.shape[0] == int(mask.sum()) == stop - start
        placed = x[index]  # [B, T, 3]
        for b in range(mask.shape[0]):
            real = placed[b][mask[b]]
            assert len(set(real[:, 0].tolist())) == 1  # one dialogue per row of the batch
            assert torch.all(real[1:, 1] > real[:-1, 1])  # in order of position
        assert torch.all(speaker[~mask] == 0)
        # labels are aligned with the rows of the batch (label = position // 2 % 3)
        assert torch.equal(labels, (x[:, 1].long() // 2) % 3)


def test_batches_hold_whole_dialogues_and_cover_the_split(split):
    _, s = split
    for size in (1, 4, 9, 1000):
        ranges = s.batch_ranges(size)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(s)
        assert all(a == b for (_, a), (b, _) in zip(ranges, ranges[1:], strict=False))
        assert all(a in s.offsets and b in s.offsets for a, b in ranges)
    # a dialogue longer than the batch size is a batch of its own
    assert (s.offsets[2] - s.offsets[1] == 120) or any(b - a == 120 for a, b in s.batch_ranges(4))


def test_take_dialogues_reorders_whole_dialogues(split):
    _, s = split
    perm = torch.tensor([3, 1, 0, 2])
    t = s.take_dialogues(perm)
    assert t.contiguous and len(t) == len(s)
    assert np.diff(t.offsets).tolist() == np.diff(s.offsets)[perm.numpy()].tolist()
    first = s.batch(int(s.offsets[3]), int(s.offsets[4]))[0]["text"]
    torch.testing.assert_close(t.batch(0, int(t.offsets[1]))[0]["text"], first)


class Echo(nn.Module):
    """A 'fusion' whose utterance representation is its input features (optionally transformed)."""

    def __init__(self, inner: nn.Module | None = None) -> None:
        super().__init__()
        self.inner = inner or nn.Identity()

    def forward(self, batch):
        return self.inner(batch["text"])


class Spy(nn.Module):
    """A context model that records what it saw and mixes each dialogue with a causal cumsum."""

    out_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.seen = []

    def forward(self, x, mask, speaker):
        self.seen.append((x.detach().clone(), mask.clone()))
        return torch.cumsum(x, dim=1) * mask.unsqueeze(-1)


def test_predictions_come_back_in_split_order_whatever_the_batching(split):
    _, s = split
    torch.manual_seed(0)
    model = DialogueModel(Echo(), Spy(), 3)
    outs = []
    for size in (1, 7, 10_000):  # different padding lengths and batch compositions
        trainer = Trainer(model, _cfg(size), "weighted_f1", 3, torch.device("cpu"))
        outs.append(trainer.predict_logits(s))
        trainer.eval_batch_size = size
        outs.append(trainer.predict_logits(s))
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0])
    # row i of the output belongs to utterance i of the split: recompute utterance 0's logit by hand
    x = s.inputs["text"]
    d = [k for k in range(s.n_dialogues) if 0 in s.rows[s.offsets[k] : s.offsets[k + 1]].tolist()][0]
    members = s.rows[s.offsets[d] : s.offsets[d + 1]]
    upto = members[: members.tolist().index(0) + 1]
    torch.testing.assert_close(outs[0][0], model.head(x[upto].sum(dim=0)), atol=1e-5, rtol=1e-5)


def test_padded_positions_never_reach_the_loss(split):
    """The loss of a padded batch of dialogues equals the mean of per-utterance losses computed one
    dialogue at a time (no padding at all), and padded values never reach the classifier."""
    _, s = split
    torch.manual_seed(0)
    spy = Spy()
    model = DialogueModel(Echo(), spy, 3)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    inputs, labels = s.batch(0, len(s))  # every dialogue in one batch: heavy padding
    logits = model(inputs)
    assert logits.shape == (len(s), 3)
    x, mask = spy.seen[-1]
    assert torch.all(x[~mask] == 0)
    total = 0.0
    for d in range(s.n_dialogues):
        one_in, one_lab = s.batch(int(s.offsets[d]), int(s.offsets[d + 1]))
        assert bool(one_in[DIALOGUE_MASK].all())  # a single dialogue is not padded
        total += float(loss_fn(model(one_in), one_lab).detach())
    torch.testing.assert_close(float(loss_fn(logits, labels).detach()), total, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", ["bigru", "transformer", "dialoguernn"])
def test_builtin_context_models_train_on_long_dialogues(split, name):
    """Every built-in trains through the trainer on dialogues of 1..120 utterances; predictions
    do not depend on how dialogues are grouped into batches (padding is ignored end to end)."""
    _, s = split
    registry = get_registry()
    plugin = registry.create("context", name)
    params = plugin.resolve_params({"hidden": 8, "utterance_dim": 8, "dropout": 0.0})
    torch.manual_seed(0)
    utterance = Echo(nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU()))
    model = DialogueModel(utterance, plugin.build(8, params), 3)
    trainer = Trainer(model, _cfg(16, epochs=2), "weighted_f1", 3, torch.device("cpu"))
    fit = trainer.fit(s, s, seed=0)
    assert fit.samples_seen == 2 * len(s)
    by_one, by_all = Trainer(model, _cfg(1), "weighted_f1", 3, torch.device("cpu")), trainer
    by_one.eval_batch_size = 1
    torch.testing.assert_close(by_one.predict_logits(s), by_all.predict_logits(s), atol=1e-4, rtol=1e-4)


def test_no_dialogue_ids_is_a_clear_error(small_synthetic):
    with pytest.raises(UsageError, match="no dialogue ids"):
        dialogue_order(small_synthetic, small_synthetic.splits["train"])


def _cfg(batch_size: int, epochs: int = 1) -> dict:
    return {
        "max_epochs": epochs,
        "patience": 5,
        "batch_size": batch_size,
        "grad_accum": 1,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "scheduler": "none",
        "loss": "cross_entropy",
        "focal_gamma": 2.0,
        "imbalance": "none",
        "grad_clip": 0.0,
        "modality_dropout": 0.0,
    }
