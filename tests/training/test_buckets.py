"""Length-bucketed training batches and length-ordered evaluation (``mmbench.training.buckets``)."""

from __future__ import annotations

import pytest
import torch

from mmbench.errors import UsageError
from mmbench.training.buckets import bucketed_order, bucketing_pool, eval_order, row_lengths
from mmbench.training.tensors import TensorSplit


def token_split(lengths: list[int]) -> TensorSplit:
    steps = max(lengths)
    mask = (torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = torch.arange(len(lengths))[:, None].expand(-1, steps).clone()
    inputs = {
        "tokens:text:input_ids": ids,
        "tokens:text:attention_mask": mask,
        "audio": torch.zeros(len(lengths), 3),
    }
    return TensorSplit(inputs, torch.zeros(len(lengths), dtype=torch.int64))


def test_buckets_keep_the_rows_and_group_similar_lengths():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (203,))
    order = torch.randperm(203, generator=gen)
    out = bucketed_order(order, lengths, batch_size=8, pool=5, generator=gen)
    assert sorted(out.tolist()) == sorted(order.tolist())
    full = out[: 25 * 8].view(25, 8)
    spread = (lengths[full].amax(1) - lengths[full].amin(1)).float().mean()
    random_spread = lengths[order[:200].view(25, 8)].amax(1) - lengths[order[:200].view(25, 8)].amin(1)
    assert spread < 0.5 * random_spread.float().mean()  # batches hold texts of similar length
    assert set(out[200:].tolist()) == set(order[200:].tolist())  # the partial batch (last pool) stays last


def test_bucketed_batches_are_shuffled_and_seeded():
    lengths = torch.arange(64)
    order = torch.arange(64)
    a = bucketed_order(order, lengths, 4, 16, torch.Generator().manual_seed(1))
    b = bucketed_order(order, lengths, 4, 16, torch.Generator().manual_seed(1))
    c = bucketed_order(order, lengths, 4, 16, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    batch_max = lengths[a.view(16, 4)].amax(1)
    assert not torch.equal(batch_max, batch_max.sort(descending=True).values)  # not longest-first overall


def test_row_lengths_and_eval_order():
    split = token_split([3, 7, 1, 5])
    assert row_lengths(split).tolist() == [3, 7, 1, 5]
    assert eval_order(split).tolist() == [1, 3, 0, 2]
    plain = TensorSplit({"audio": torch.zeros(4, 3)}, torch.zeros(4, dtype=torch.int64))
    assert row_lengths(plain) is None and eval_order(plain) is None


def test_bucketing_needs_token_lengths():
    plain = TensorSplit({"audio": torch.zeros(4, 3)}, torch.zeros(4, dtype=torch.int64))
    assert bucketing_pool({}, plain) == 0
    with pytest.raises(UsageError, match="needs an encoder trained inside the model"):
        bucketing_pool({"length_bucketing": 10}, plain)
    with pytest.raises(UsageError, match="length_bucketing must be an integer"):
        bucketing_pool({"length_bucketing": 2.5}, token_split([1, 2]))
