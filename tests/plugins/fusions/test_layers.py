"""The building blocks shared by the built-in fusions (plugins/fusions/layers.py)."""

import pytest
import torch

from mmbench.data import InputSpec, ModalitySpec, StreamSpec, mask_key
from mmbench.errors import UsageError
from mmbench.plugins.fusions.layers import (
    Projection,
    check_modalities,
    masked_mean,
    mlp_head,
    pooled,
    seq_mask,
)


def _padded(lengths: list[int], t: int = 5, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), t, d, generator=g)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    return x, mask


def test_masked_mean_averages_only_real_steps():
    x, mask = _padded([2, 5, 1])
    out = masked_mean(x, mask)
    for i, n in enumerate([2, 5, 1]):
        torch.testing.assert_close(out[i], x[i, :n].mean(dim=0))
    torch.testing.assert_close(masked_mean(x, None), x.mean(dim=1))


def test_masked_mean_of_a_sample_without_real_steps_is_zero_not_nan():
    x, mask = _padded([0, 3])
    out = masked_mean(x, mask)
    assert torch.isfinite(out).all() and torch.equal(out[0], torch.zeros(3))


def test_pooled_and_seq_mask_follow_the_batch_layout():
    x, mask = _padded([4, 2])
    batch = {"audio": x, mask_key("audio"): mask, "text": torch.ones(2, 7)}
    torch.testing.assert_close(pooled(batch, "audio"), masked_mean(x, mask))
    assert pooled(batch, "text") is batch["text"]
    assert seq_mask(batch, "audio") is mask and seq_mask(batch, "text") is None


def test_projection_shapes_and_padded_steps_stay_out_of_batchnorm():
    assert Projection(3, 4, dropout=0.0)(torch.randn(6, 3)).shape == (6, 4)
    x, mask = _padded([2, 5, 3])
    torch.manual_seed(0)
    proj = Projection(3, 4, dropout=0.0)
    out = proj(x, mask)
    assert out.shape == (3, 5, 4)
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))  # padded steps come out as zeros
    # The statistics are those of the real steps only: changing padding values changes nothing.
    torch.manual_seed(0)
    again = Projection(3, 4, dropout=0.0)
    noisy = x.clone()
    noisy[~mask] = 1e3
    torch.testing.assert_close(again(noisy, mask), out)
    torch.testing.assert_close(proj.norm.running_mean, again.norm.running_mean)
    assert not torch.equal(proj.norm.running_mean, torch.zeros(4))


def test_projection_without_batch_norm_is_linear_relu():
    proj = Projection(3, 2, dropout=0.0, batch_norm=False)
    x = torch.randn(4, 3)
    torch.testing.assert_close(proj(x), torch.relu(proj.linear(x)))


def test_mlp_head_maps_to_class_logits():
    head = mlp_head(6, 5, 3, dropout=0.5).eval()
    assert head(torch.randn(2, 6)).shape == (2, 3)
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Dropout", "Linear"]


def test_check_modalities_validates_the_requested_names():
    spec = InputSpec(
        (ModalitySpec("text", (StreamSpec("t", 4),)), ModalitySpec("audio", (StreamSpec("a", 2),))), 3
    )
    assert check_modalities(spec, None) == ["text", "audio"]
    assert check_modalities(spec, ["audio"]) == ["audio"]
    with pytest.raises(UsageError, match="smell"):
        check_modalities(spec, ["audio", "smell"])
