"""The tie tests: vectorised resampled scores, the paired bootstrap and the seed permutation test."""

import numpy as np
import pytest

from mmbench.leaderboard.significance import (
    paired_bootstrap,
    resample_indices,
    resampled_scores,
    seed_permutation,
)
from mmbench.metrics import classification_metrics

NAMES = ["a", "b", "c", "d"]


@pytest.mark.parametrize("metric", ["accuracy", "weighted_f1", "macro_f1"])
def test_resampled_scores_match_the_metrics_module(metric):
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 4, size=150)
    y_pred = np.where(rng.random(150) < 0.6, y_true, rng.integers(0, 4, size=150))
    y_pred[y_pred == 3] = 0  # a class that is never predicted
    idx = resample_indices(150, n_resamples=40, seed=3)
    got = resampled_scores(y_true, y_pred, idx, 4, metric)
    want = [classification_metrics(y_true[i], y_pred[i], NAMES)[metric] for i in idx]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_resamples_are_seeded():
    assert np.array_equal(resample_indices(50, 10, 0), resample_indices(50, 10, 0))
    assert not np.array_equal(resample_indices(50, 10, 0), resample_indices(50, 10, 1))


def test_paired_bootstrap_identical_and_clearly_worse():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=300)
    good = np.where(rng.random(300) < 0.9, y, (y + 1) % 3)
    bad = np.where(rng.random(300) < 0.5, y, (y + 1) % 3)
    idx = resample_indices(300, 500, 0)
    s_good = resampled_scores(y, good, idx, 3, "weighted_f1")
    assert paired_bootstrap(s_good[None], s_good[None]) == 1.0
    assert paired_bootstrap(s_good[None], resampled_scores(y, bad, idx, 3, "weighted_f1")[None]) == 0.0
    with pytest.raises(ValueError):
        paired_bootstrap(s_good[None], s_good[None, :10])


def test_seed_permutation_is_exact():
    result = seed_permutation([0.8, 0.81, 0.82], [0.7, 0.7, 0.7])
    assert result.p_value == pytest.approx(1 / 8) and result.n_pairs == 3
    assert result.delta == pytest.approx(0.11)
    assert seed_permutation([0.7, 0.8], [0.8, 0.7]).p_value >= 0.5
    many = seed_permutation([1.0] * 20, [0.0] * 20)
    assert many.p_value < 0.001
