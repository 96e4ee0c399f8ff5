"""The cluster bootstrap of regression metrics: per-cluster sums reproduce ``regression_metrics`` on
every cluster draw, and the test tells a clearly better MAE from an equal one."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.leaderboard.significance import (
    REGRESSION_METRICS,
    cluster_codes,
    draw_clusters,
    draw_seeds,
    paired_bootstrap,
    regression_run_scores,
    regression_statistics,
    scores_from_statistics,
)
from mmbench.metrics import regression_metric_names, regression_metrics

MOSI, SIMS = (-3.0, 3.0), (-1.0, 1.0)


def _sentiment(n: int, seed: int, noise: float = 1.0, scale: float = 3.0):
    rng = np.random.default_rng(seed)
    truth = np.round(rng.uniform(-scale, scale, n) * 3) / 3
    truth[::9] = 0.0
    return truth, np.clip(truth + rng.normal(0, noise * scale / 3, n), -scale - 0.5, scale + 0.5)


@pytest.mark.parametrize("target_range", [MOSI, SIMS])
def test_summed_statistics_give_the_record_metrics(target_range):
    t, p = _sentiment(240, 1, scale=target_range[1])
    expected = regression_metrics(t, p, target_range)
    for metric in regression_metric_names(target_range):
        stats = regression_statistics(t, p, metric, target_range)
        assert scores_from_statistics(stats.sum(axis=0), metric) == pytest.approx(expected[metric], abs=1e-12)
    assert set(regression_metric_names(MOSI)) | set(regression_metric_names(SIMS)) == set(REGRESSION_METRICS)


@pytest.mark.parametrize("metric", regression_metric_names(MOSI))
def test_each_cluster_draw_scores_like_the_drawn_utterances(metric):
    t, p = _sentiment(90, 2)
    clusters = np.array([f"d{i // 6}" for i in range(len(t))])  # 15 dialogues of 6 utterances
    codes = cluster_codes(clusters, len(t))
    draws = draw_clusters(15, n_resamples=5, seed=3)
    scores = regression_run_scores(t, p, codes, draws, metric, MOSI)
    assert scores.full == pytest.approx(regression_metrics(t, p, MOSI)[metric])
    for b, draw in enumerate(draws):
        # The resample holds each dialogue as often as it was drawn: score those utterances directly.
        idx = np.concatenate([np.flatnonzero(codes == g) for g, k in enumerate(draw) for _ in range(int(k))])
        direct = regression_metrics(t[idx], p[idx], MOSI)[metric]
        assert scores.resampled[b] == pytest.approx(0.0 if direct is None else direct, abs=1e-9)


def test_a_clearly_lower_mae_is_not_tied_and_an_equal_one_is():
    n, seeds = 400, 3
    codes = np.arange(n)
    clusters = draw_clusters(n, 500, 0)
    good, same, bad = [], [], []
    for s in range(seeds):
        t, p = _sentiment(n, 10, noise=0.3)
        rng = np.random.default_rng(100 + s)
        good.append(regression_run_scores(t, p + rng.normal(0, 0.01, n), codes, clusters, "mae", MOSI))
        same.append(regression_run_scores(t, p + rng.normal(0, 0.01, n), codes, clusters, "mae", MOSI))
        bad.append(regression_run_scores(t, p + rng.normal(0, 1.0, n), codes, clusters, "mae", MOSI))
    seed_draws = draw_seeds(seeds, 500, 0)
    worse = paired_bootstrap(good, bad, seed_draws, n)
    assert worse.delta < -0.2 and worse.p_value < 0.01  # good's MAE is lower: a negative difference
    tied = paired_bootstrap(good, same, seed_draws, n)
    assert abs(tied.delta) < 0.01 and tied.p_value > 0.05


def test_unknown_metric_is_refused():
    t, p = _sentiment(10, 0)
    with pytest.raises(ValueError, match="unknown metric 'rmse'"):
        regression_statistics(t, p, "rmse", MOSI)
