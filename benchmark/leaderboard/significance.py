"""Significance tests for leaderboards: is a method different from the best, or tied with it?

The leaderboard compares every row with the best row (highest mean test score) and corrects the
p-values for the number of comparisons (Holm, 1979). Two tests, both **two-sided** (the best is
picked on the same test data, so a one-sided test would be biased towards "worse") and seeded:

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

Scores use the definitions of ``mmbench.metrics`` (computed here from per-cluster class counts).
``holm`` turns the raw p-values of the comparisons with the best into adjusted ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
ALPHA = 0.05
#: Metrics the bootstrap can recompute from class counts (``mmbench.metrics`` definitions).
METRICS = ("accuracy", "weighted_accuracy", "unweighted_accuracy", "weighted_f1", "macro_f1")


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
