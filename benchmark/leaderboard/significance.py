"""Significance tests for leaderboards: is a method worse than the best, or tied with it?

Two tests, both one-sided ("is ``b`` worse than ``a``?") and deterministic (seeded):

* ``paired_bootstrap``: resample the test set with replacement (the same resamples for both
  methods), score every seed's stored predictions on each resample, average over the seeds
  the two methods share, and report the share of resamples in which ``b`` scores at least as
  well as ``a``. This is the paired bootstrap of Koehn (2004) / Berg-Kirkpatrick et al. (2012),
  averaged over paired seeds; it measures test-set sampling noise.
* ``seed_permutation``: an exact sign-flip permutation test on the per-seed differences (runs
  paired by seed); it measures seed noise. Used when predictions are not available.

Scores on a resample use the same definitions as ``mmbench.metrics`` (weighted F1 by true-class
support, macro F1 over classes present in truth or predictions).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
ALPHA = 0.05


def resample_indices(n: int, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """``[n_resamples, n]`` test-set indices drawn with replacement from a seeded generator."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_resamples, n))


def resampled_scores(
    y_true: np.ndarray, y_pred: np.ndarray, idx: np.ndarray, num_classes: int, metric: str
) -> np.ndarray:
    """``metric`` of ``y_pred`` against ``y_true`` on each resample (row of ``idx``), vectorised."""
    n_resamples, n = idx.shape
    yt = np.asarray(y_true, dtype=np.int64)[idx]
    yp = np.asarray(y_pred, dtype=np.int64)[idx]
    offset = (np.arange(n_resamples, dtype=np.int64) * num_classes)[:, None]
    size = n_resamples * num_classes
    support = np.bincount((yt + offset).ravel(), minlength=size).reshape(n_resamples, num_classes)
    predicted = np.bincount((yp + offset).ravel(), minlength=size).reshape(n_resamples, num_classes)
    hit = yt == yp
    tp = np.bincount((yt + offset)[hit], minlength=size).reshape(n_resamples, num_classes)
    if metric == "accuracy":
        return tp.sum(axis=1) / n
    denom = support + predicted
    # F1 = 2 tp / (support + predicted), equal to 2PR/(P+R) and 0 where undefined.
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(tp.shape, dtype=np.float64), where=denom > 0)
    if metric == "weighted_f1":
        return (f1 * support).sum(axis=1) / n
    if metric == "macro_f1":
        present = denom > 0
        return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    raise ValueError(f"unknown metric {metric!r}")


@dataclass(frozen=True)
class TestResult:
    """Observed mean difference ``a - b`` over paired seeds and the one-sided p-value."""

    delta: float
    p_value: float
    n_pairs: int


def paired_bootstrap(resampled_a: np.ndarray, resampled_b: np.ndarray) -> float:
    """One-sided paired bootstrap p-value: share of resamples where ``b`` scores >= ``a``.

    ``resampled_a[i]`` and ``resampled_b[i]`` are the ``resampled_scores`` of the two methods'
    runs with the same seed, on the same resamples; scores are averaged over the paired seeds.
    """
    a = np.atleast_2d(np.asarray(resampled_a, dtype=np.float64)).mean(axis=0)
    b = np.atleast_2d(np.asarray(resampled_b, dtype=np.float64)).mean(axis=0)
    if a.shape != b.shape:
        raise ValueError("paired_bootstrap needs scores on the same resamples for both methods")
    # A tiny tolerance so that identical predictions count as "at least as good".
    return float(np.mean(b - a >= -1e-12))


def seed_permutation(scores_a: list[float], scores_b: list[float], seed: int = BOOTSTRAP_SEED) -> TestResult:
    """One-sided sign-flip permutation test on paired per-seed differences ``a - b``.

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
    p_value = float(np.mean(means >= observed - 1e-12))
    return TestResult(observed, p_value, len(diff))
