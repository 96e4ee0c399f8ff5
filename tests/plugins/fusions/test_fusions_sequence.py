"""Sequence-level inputs: padded time steps must not influence a fusion, in training as in eval.

The conformance kit (``mmbench.testing``, ``test_sequences_with_masks``) already checks that eval
logits ignore padding. Training mode is different: batch statistics (BatchNorm) computed over
padded steps let padding values leak into the real steps' outputs and into the running
statistics used later at eval time. This file checks the training-mode forward pass and the
running statistics it leaves behind.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.registry.manager import build_registry
from mmbench.testing import example_batch, example_spec

REGISTRY, _ = build_registry()
FUSIONS = REGISTRY.names("fusion")


def _params(name: str) -> tuple[object, dict]:
    plugin = REGISTRY.create("fusion", name)
    params = plugin.resolve_params({})
    return plugin, params


@pytest.mark.parametrize("name", FUSIONS)
def test_padding_does_not_leak_in_training(name: str) -> None:
    """Same seed, same real steps, padding zeros vs 1e3: identical train-mode logits and buffers."""
    plugin, params = _params(name)
    spec = example_spec(sequence=True, steps=6)
    plugin.validate(spec, params)
    batch = example_batch(spec, batch_size=8)
    noisy = {k: v.clone() for k, v in batch.items()}
    for m in spec.names:
        noisy[m][0, 2:] = 1e3  # sample 0 has 2 real steps: the rest is padding
    outs, buffers = [], []
    for b in (batch, noisy):
        torch.manual_seed(0)
        model = plugin.build(spec, params).train()
        torch.manual_seed(1)  # same dropout masks in both passes
        outs.append(model(b))
        buffers.append({k: v.clone() for k, v in model.state_dict().items() if "running" in k})
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-4, msg="padding changed the logits")
    for key, value in buffers[0].items():
        torch.testing.assert_close(buffers[1][key], value, msg=f"padding changed the buffer {key}")


@pytest.mark.slow
def test_attention_fusions_learn_the_alignment_that_pooled_fusions_cannot(tmp_path):
    """alignment preset: the label is which events coincide in time, so pooled features carry none.

    ``mult`` and sequence ``cross_attention`` compare modalities step by step and must clearly beat
    ``concat`` and ``late``, which see only time-pooled vectors and stay near the majority class.

    Settings: ReduceLROnPlateau halves the learning rate during the flat start of MulT's learning
    curve (it needs ~15 epochs to find the alignment), so this comparison runs without scheduler.
    """
    from mmbench.runner.run import RunRequest, run_benchmark

    overrides = [
        "data.preset=alignment",
        "data.n_samples=3000",
        "data.seq_len=8",
        "train.scheduler=none",
        "train.patience=30",
        "train.lr=2e-3",
        "train.batch_size=64",
    ]
    req = RunRequest(
        fusions=["mult", "cross_attention", "concat", "late"],
        seeds=[0],
        overrides=overrides,
        max_epochs=30,
        out_dir=tmp_path,
        device="cpu",
    )
    prep, records = run_benchmark(req, REGISTRY)
    acc = {r["fusion"]: r["metrics"]["test"]["accuracy"] for r in records}
    test_labels = prep.data.labels[prep.data.splits["test"]]
    majority = np.bincount(test_labels).max() / len(test_labels)
    assert max(acc["concat"], acc["late"]) < majority + 0.1, acc
    for fusion in ("mult", "cross_attention"):
        assert acc[fusion] > max(acc["concat"], acc["late"]) + 0.3, acc
