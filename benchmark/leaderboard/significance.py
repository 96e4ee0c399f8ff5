"""Significance tests for leaderboards: is a method different from the best, or tied with it?

The leaderboard compares every row with the best row (the best mean test score in the metric's
direction: the highest, or the lowest MAE) and corrects the p-values for the number of comparisons
(Holm, 1979). Two tests, both **two-sided** (the best is picked on the same test data, so a
one-sided test would be biased towards "worse") and seeded:

* ``cluster_bootstrap`` (default; needs the stored test predictions): a hierarchical bootstrap
  over the two sources of noise a leaderboard mean carries. Each resample draws the test set's
  *clusters* with replacement (the dataset's cluster unit: dialogues or speaker groups, whose
  utterances' errors are correlated; every utterance is its own cluster when the records carry no
  cluster ids) and the *seeds* with replacement (runs paired by seed: both methods get the same
  draw). The score of a method on a resample is the metric of each drawn seed's predictions on the
  drawn clusters, averaged over the drawn seeds. The seed draw's deviation from the seed mean is
  scaled by ``sqrt(S / (S - 1))`` so that the bootstrap variance over ``S`` seeds is the unbiased
  sample variance (the plain bootstrap would shrink it by ``(S - 1) / S``). The p-value is the
  share of resampled differences at least as far from the observed difference as the observed
  difference is from 0 (the bootstrap distribution shifted to the null, Efron & Tibshirani 1993,
  §16.4), counted as ``(1 + k) / (1 + B)``: the smallest attainable p is ``1 / (B + 1)``.
* ``seed_permutation`` (fallback when predictions are missing or the runs' test labels differ):
  an exact sign-flip permutation test on the per-seed differences; with ``n`` paired seeds its
  smallest attainable two-sided p is ``2 / 2**n`` (0.25 with 3 seeds).

Scores use the definitions of ``mmbench.metrics``, computed here from per-cluster sums that add up
over any draw of clusters: class counts for classification metrics; for regression metrics sums of
absolute errors and counts (MAE), the sums ``n, Σt, Σp, Σt², Σp², Σtp`` (Pearson correlation),
correct counts and counts (Acc-2 in both conventions, Acc-5, Acc-7, the CH-SIMS bins) and the two
classes' counts (their F1).
``holm`` turns the raw p-values of the comparisons with the best into adjusted ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmbench.tasks import REGRESSION_METRICS as TASK_REGRESSION_METRICS

N_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
ALPHA = 0.05
#: Metrics the bootstrap can recompute from class counts (``mmbench.metrics`` definitions).
METRICS = ("accuracy", "weighted_accuracy", "unweighted_accuracy", "weighted_f1", "macro_f1")
#: Regression metrics the bootstrap recomputes from per-cluster sums (``regression_metrics`` definitions):
#: every one ``mmbench.tasks`` knows.
REGRESSION_METRICS = TASK_REGRESSION_METRICS


@dataclass(frozen=True)
class TestResult:
    """Observed mean difference ``a - b`` over paired seeds and the two-sided p-value."""

    delta: float
    p_value: float
    n_pairs: int


def cluster_codes(clusters: Sequence | np.ndarray | None, n: int) -> np.ndarray:
    """``int64 [n]`` codes ``0..G-1`` of the utterances' clusters; each utterance alone when ``None``."""
    if clusters is None:
        return np.arange(n, dtype=np.int64)
    values = np.asarray([str(c) for c in clusters])
    if values.shape != (n,):
        raise ValueError(f"cluster ids: expected {n}, got {values.shape[0]}")
    return np.unique(values, return_inverse=True)[1].astype(np.int64)


def cluster_counts(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, num_classes: int) -> np.ndarray:
    """``[G, 3, C]`` per cluster: true positives, true-class support and predicted counts per class."""
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    size = n_clusters * num_classes

    def count(cls: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        idx = codes * num_classes + cls
        idx = idx if mask is None else idx[mask]
        return np.bincount(idx, minlength=size).reshape(n_clusters, num_classes)

    return np.stack([count(y_true, y_true == y_pred), count(y_true), count(y_pred)], axis=1).astype(float)


def scores_from_counts(counts: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` from ``[..., 3, C]`` (tp, support, predicted) counts; shape ``[...]``."""
    tp, support, predicted = counts[..., 0, :], counts[..., 1, :], counts[..., 2, :]
    total = support.sum(axis=-1)
    safe_total = np.maximum(total, 1)
    if metric in ("accuracy", "weighted_accuracy"):
        return tp.sum(axis=-1) / safe_total
    if metric == "unweighted_accuracy":
        has = support > 0
        recall = np.divide(tp, support, out=np.zeros_like(tp), where=has)
        return recall.sum(axis=-1) / np.maximum(has.sum(axis=-1), 1)
    denom = support + predicted
    # F1 = 2 tp / (support + predicted), equal to 2PR/(P+R) and 0 where undefined.
    f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    if metric == "weighted_f1":
        return (f1 * support).sum(axis=-1) / safe_total
    if metric == "macro_f1":
        present = denom > 0
        return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")


def _binary_columns(true_pos: np.ndarray, pred_pos: np.ndarray, keep: np.ndarray, f1: bool) -> np.ndarray:
    """Per-sample columns of a two-class score: ``[correct, counted]`` for accuracy, or the two classes'
    ``[tp, support, predicted]`` (``[N, 3 * 2]``) for their support-weighted F1; ``keep`` masks samples."""
    if not f1:
        return np.stack([(true_pos == pred_pos) & keep, keep], axis=1).astype(float)
    cols = []
    for part in ("tp", "support", "predicted"):
        for cls in (False, True):
            t, p = true_pos == cls, pred_pos == cls
            cols.append({"tp": t & p, "support": t, "predicted": p}[part] & keep)
    return np.stack(cols, axis=1).astype(float)


def regression_statistics(
    y_true: np.ndarray, y_pred: np.ndarray, metric: str, target_range: tuple[float, float] | None
) -> np.ndarray:
    """``[N, K]`` per-sample sums of ``metric`` (a regression metric, ``mmbench.metrics`` definitions);
    their column sums over any subset give the metric through ``scores_from_statistics``."""
    from mmbench.metrics import SIMS_BINS, regression_metric_names

    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    ones = np.ones_like(t, dtype=bool)
    if metric == "mae":
        return np.stack([np.abs(p - t), ones], axis=1).astype(float)
    if metric == "corr":
        return np.stack([ones, t, p, t * t, p * p, t * p], axis=1).astype(float)
    f1 = metric.startswith("f1")
    if "acc3" in regression_metric_names(target_range) and metric in ("acc2", "acc3", "acc5", "f1"):
        edges = np.asarray(SIMS_BINS["acc2" if metric == "f1" else metric])
        tb = np.searchsorted(edges, np.clip(t, -1.0, 1.0), side="left")
        pb = np.searchsorted(edges, np.clip(p, -1.0, 1.0), side="left")
        if f1:
            return _binary_columns(tb == 2, pb == 2, ones, True)
        return np.stack([tb == pb, ones], axis=1).astype(float)
    if metric in ("acc2_has0", "f1_has0"):
        return _binary_columns(t >= 0, p >= 0, ones, f1)
    if metric in ("acc2_non0", "f1_non0"):
        return _binary_columns(t > 0, p > 0, t != 0, f1)
    if metric in ("acc5", "acc7"):
        bound = 2.0 if metric == "acc5" else 3.0
        same = np.round(np.clip(p, -bound, bound)) == np.round(np.clip(t, -bound, bound))
        return np.stack([same, ones], axis=1).astype(float)
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS + REGRESSION_METRICS)}")


def scores_from_statistics(stats: np.ndarray, metric: str) -> np.ndarray:
    """A regression ``metric`` from summed ``[..., K]`` ``regression_statistics``; shape ``[...]``.
    An undefined value (no sample; a constant side for ``corr``) is 0."""
    if metric == "corr":
        n, st, sp, stt, spp, stp = np.moveaxis(stats, -1, 0)
        safe_n = np.maximum(n, 1)
        cov = stp - st * sp / safe_n
        var = (stt - st * st / safe_n) * (spp - sp * sp / safe_n)
        return np.divide(cov, np.sqrt(np.maximum(var, 0)), out=np.zeros_like(cov), where=var > 1e-300)
    if stats.shape[-1] == 6:  # the two classes' counts: support-weighted F1
        return scores_from_counts(stats.reshape(*stats.shape[:-1], 3, 2), "weighted_f1")
    return np.divide(stats[..., 0], stats[..., 1], out=np.zeros_like(stats[..., 0]), where=stats[..., 1] > 0)


def draw_clusters(n_clusters: int, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """``[B, G]`` how often each of ``G`` clusters is drawn in each resample (rows sum to ``G``)."""
    rng = np.random.default_rng([seed, 0])
    return rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_resamples).astype(float)


def draw_seeds(n_seeds: int, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """``[B, S]`` how often each of ``S`` paired seeds is drawn in each resample (rows sum to ``S``)."""
    rng = np.random.default_rng([seed, 1, n_seeds])
    return rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_resamples).astype(float)


@dataclass(frozen=True)
class RunScores:
    """One run's score on the whole test set and on each cluster resample (``[B]``)."""

    full: float
    resampled: np.ndarray


def run_scores(counts: np.ndarray, clusters: np.ndarray, metric: str) -> RunScores:
    """``RunScores`` of one run from its ``[G, 3, C]`` ``cluster_counts`` and ``[B, G]`` cluster draws."""
    full = float(scores_from_counts(counts.sum(axis=0), metric))
    return RunScores(
        full, scores_from_counts(np.einsum("bg,gkc->bkc", clusters, counts, optimize=True), metric)
    )


def regression_run_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    codes: np.ndarray,
    clusters: np.ndarray,
    metric: str,
    target_range: tuple[float, float] | None,
) -> RunScores:
    """``RunScores`` of one regression run: its ``[N]`` targets and predictions, the utterances'
    ``[N]`` cluster ``codes`` and the ``[B, G]`` cluster draws."""
    stats = regression_statistics(y_true, y_pred, metric, target_range)
    per_cluster = np.zeros((int(codes.max()) + 1 if len(codes) else 0, stats.shape[1]))
    np.add.at(per_cluster, codes, stats)
    return RunScores(
        float(scores_from_statistics(per_cluster.sum(axis=0), metric)),
        scores_from_statistics(clusters @ per_cluster, metric),
    )


def bootstrap_means(per_seed: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """``[B]`` the seed-resampled mean of ``[B, S]`` scores (``seeds``: ``[B, S]`` draw counts), its
    deviation from the plain mean scaled by ``sqrt(S/(S-1))`` so that its variance is the unbiased
    sample variance over seeds."""
    n_seeds = per_seed.shape[1]
    plain = per_seed.mean(axis=1)
    if n_seeds < 2:
        return plain
    drawn = (per_seed * seeds).sum(axis=1) / n_seeds
    return plain + np.sqrt(n_seeds / (n_seeds - 1)) * (drawn - plain)


def tail_scale(var_seeds: float, var_clusters: float, n_seeds: int, n_clusters: int, alpha: float) -> float:
    """``t_df(1-α/2) / z(1-α/2)`` with Welch-Satterthwaite's degrees of freedom of the two parts.

    A variance estimated from 3-5 seeds is itself uncertain: when seed noise dominates, the
    difference behaves like Student's t with ``S - 1`` degrees of freedom, not a normal, and an
    unscaled bootstrap flags equal methods far more often than α. ``df`` goes from ``S - 1``
    (seed noise only) to ``G - 1`` (cluster noise only), so the factor is about 1 for large test
    sets with little seed noise and 2.19 with 3 seeds and seed noise only.
    """
    from scipy.stats import norm, t

    parts = [(v, n - 1) for v, n in ((var_seeds, n_seeds), (var_clusters, n_clusters)) if v > 0 and n > 1]
    if not parts:
        return 1.0
    df = sum(v for v, _ in parts) ** 2 / sum(v * v / d for v, d in parts)
    q = 1 - alpha / 2
    return float(t.ppf(q, df) / norm.ppf(q))


def paired_bootstrap(
    runs_a: Sequence[RunScores],
    runs_b: Sequence[RunScores],
    seeds: np.ndarray,
    n_clusters: int,
    alpha: float = ALPHA,
) -> TestResult:
    """Two-sided hierarchical bootstrap of ``mean_a - mean_b`` over clusters and paired seeds.

    ``runs_a[s]``/``runs_b[s]``: the two methods' runs with the ``s``-th shared seed, scored on
    the same cluster draws; ``seeds``: ``draw_seeds(S, B)``. The resampled differences' deviations
    from the observed one are scaled by ``tail_scale``; p counts the resamples at least as far from
    the observed difference as it is from 0, ``(1 + k) / (1 + B)``.
    """
    if len(runs_a) != len(runs_b) or not runs_a:
        raise ValueError("paired_bootstrap needs the same, non-zero number of seeds on both sides")
    full = np.array([a.full - b.full for a, b in zip(runs_a, runs_b, strict=True)])
    per_seed = np.stack([a.resampled - b.resampled for a, b in zip(runs_a, runs_b, strict=True)], axis=1)
    if seeds.shape != per_seed.shape:
        raise ValueError(f"seed draws {seeds.shape} do not match the scores {per_seed.shape}")
    observed = float(full.mean())
    delta = bootstrap_means(per_seed, seeds)
    # The two parts of the noise, each alone: seeds drawn on the whole test set, clusters drawn
    # for the mean over seeds. They set the degrees of freedom of the tail correction only.
    var_seeds = float(np.var(bootstrap_means(np.broadcast_to(full, per_seed.shape), seeds)))
    var_clusters = float(np.var(per_seed.mean(axis=1)))
    scale = tail_scale(var_seeds, var_clusters, len(full), n_clusters, alpha)
    # A tiny tolerance so that identical predictions (observed 0) give p = 1.
    extreme = scale * np.abs(delta - observed) >= abs(observed) - 1e-12
    p_value = (1.0 + float(extreme.sum())) / (1.0 + len(delta))
    return TestResult(observed, min(p_value, 1.0), len(full))


def cluster_bootstrap(
    counts_a: np.ndarray,
    counts_b: np.ndarray,
    metric: str,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    alpha: float = ALPHA,
) -> TestResult:
    """``paired_bootstrap`` from ``[S, G, 3, C]`` ``cluster_counts`` of two methods' paired runs."""
    if counts_a.shape != counts_b.shape:
        raise ValueError("cluster_bootstrap needs counts over the same seeds and clusters for both methods")
    n_seeds, n_clusters = counts_a.shape[:2]
    clusters = draw_clusters(n_clusters, n_resamples, seed)
    runs_a = [run_scores(c, clusters, metric) for c in counts_a]
    runs_b = [run_scores(c, clusters, metric) for c in counts_b]
    return paired_bootstrap(runs_a, runs_b, draw_seeds(n_seeds, n_resamples, seed), n_clusters, alpha)


def smallest_bootstrap_p(n_resamples: int) -> float:
    return 1.0 / (n_resamples + 1)


def seed_permutation(scores_a: list[float], scores_b: list[float], seed: int = BOOTSTRAP_SEED) -> TestResult:
    """Two-sided sign-flip permutation test on paired per-seed differences ``a - b``.

    Exact (every sign pattern) up to 16 pairs; beyond that 65,536 seeded random sign patterns.
    """
    if len(scores_a) != len(scores_b) or not scores_a:
        raise ValueError("seed_permutation needs the same, non-zero number of seeds on both sides")
    diff = np.asarray(scores_a, dtype=np.float64) - np.asarray(scores_b, dtype=np.float64)
    observed = float(diff.mean())
    if len(diff) <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(diff))))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(1 << 16, len(diff)))
    means = (signs * diff).mean(axis=1)
    p_value = float(np.mean(np.abs(means) >= abs(observed) - 1e-12))
    return TestResult(observed, p_value, len(diff))


def smallest_permutation_p(n_pairs: int) -> float:
    """The smallest two-sided p the sign-flip test can give with ``n_pairs`` seeds."""
    return 2.0 / 2**n_pairs if n_pairs <= 16 else 1.0 / (1 << 16)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error at most α when each is compared to α)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()
