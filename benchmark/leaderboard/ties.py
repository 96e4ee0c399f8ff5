"""Tie marks of a leaderboard table: which rows are not significantly different from the best.

The glue between a built table (``leaderboard.build``: rows of run records) and the statistics
(``leaderboard.significance``): each record's stored test predictions and cluster ids are read,
every pair of rows is tested (two-sided hierarchical bootstrap over seeds and clusters, or the
seed permutation test when predictions are missing), and the p-values are Holm-adjusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mmbench.leaderboard.build import Group, Leaderboard, Row


@dataclass(frozen=True)
class Predictions:
    """A record's stored test predictions: ``y_true``/``y_pred`` ``[N]`` (int64 class indices, or
    float64 values for a regression task) and the cluster id of each test utterance (``None`` when
    the record carries none)."""

    y_true: np.ndarray
    y_pred: np.ndarray
    clusters: list[str] | None
    cluster_unit: str | None


def load_predictions(record: dict[str, Any]) -> Predictions | None:
    """A record's stored test predictions, or None when unavailable or inconsistent."""
    from mmbench.tasks import task_from_record

    dtype = np.float64 if task_from_record(record).target_dtype().kind == "f" else np.int64
    path = record.get("_path")
    name = record.get("predictions_file")
    if not path or not name:
        return None
    try:
        data = json.loads((Path(path).parent / name).read_text(encoding="utf-8"))
        y_true = np.asarray(data["y_true"], dtype=dtype)
        y_pred = np.asarray(data["y_pred"], dtype=dtype)
        clusters = data.get("clusters")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or len(y_true) != record.get("n_test", len(y_true)):
        return None
    if not isinstance(clusters, list) or len(clusters) != len(y_true):
        clusters = None
    unit = record.get("cluster_unit") if clusters is not None else None
    return Predictions(y_true, y_pred, [str(c) for c in clusters] if clusters else None, unit)


def _cluster_ids(preds: list[Predictions], records: list[dict[str, Any]]) -> tuple[list[str] | None, str]:
    """The test utterances' cluster ids shared by every run, and the unit's name for the footer."""
    first = preds[0]
    same = all(p.clusters == first.clusters and p.cluster_unit == first.cluster_unit for p in preds)
    if first.clusters is not None and same:
        return first.clusters, str(first.cluster_unit or "cluster")
    if any(p.clusters is not None for p in preds):
        why = "the runs' cluster ids differ"
    elif all("cluster_unit" in r for r in records):
        why = "the dataset declares no cluster unit"
    else:
        why = "the records carry no cluster ids"
    return None, f"utterance ({why})"


def mark_ties(group: Group, board: Leaderboard) -> None:
    """Mark each row tied with the best or not: two-sided tests of every pair of rows, Holm-adjusted.

    Every pair is tested (not only the pairs with the best) because the best is picked on the same
    test data: within the family of all pairwise comparisons that choice cannot raise the
    family-wise error above α (with only the comparisons with the best, simulated boards of 8 equal
    methods flagged one in about 10% instead of 5%).
    """
    from mmbench.leaderboard.significance import (
        cluster_codes,
        cluster_counts,
        draw_clusters,
        draw_seeds,
        holm,
        paired_bootstrap,
        regression_run_scores,
        run_scores,
        seed_permutation,
        smallest_bootstrap_p,
        smallest_permutation_p,
    )

    metric, rows = group.metric, group.rows
    best = rows[0]
    best.best, best.tied = True, True
    preds = {id(r): load_predictions(r) for row in rows for r in row.records}
    loaded = [p for p in preds.values() if p is not None]
    reason = ""
    if len(loaded) < len(preds):
        reason = f"{len(preds) - len(loaded)} run(s) have no readable predictions file"
    elif any(not np.array_equal(p.y_true, loaded[0].y_true) for p in loaded):
        reason = "the runs' test labels differ"
    method = "seeds" if reason else "cluster_bootstrap"
    sig: dict[str, Any] = {
        "method": method,
        "reason": reason,
        "alpha": board.alpha,
        "n_resamples": board.n_resamples,
        "seed": board.bootstrap_seed,
        "two_sided": True,
        "correction": "holm, all pairs",
    }
    scores: dict[int, Any] = {}
    n_clusters = 0
    if method == "cluster_bootstrap":
        ids, unit = _cluster_ids(loaded, [r for row in rows for r in row.records])
        codes = cluster_codes(ids, len(loaded[0].y_true))
        n_clusters = int(codes.max()) + 1
        clusters = draw_clusters(n_clusters, board.n_resamples, board.bootstrap_seed)
        n_classes = len(group.class_names)
        target_range = getattr(group.task, "target_range", None)
        for rec_id, p in preds.items():
            if n_classes:
                counts = cluster_counts(p.y_true, p.y_pred, codes, n_classes)
                scores[rec_id] = run_scores(counts, clusters, metric)
            else:  # a regression task: per-cluster sums of the metric's parts
                scores[rec_id] = regression_run_scores(
                    p.y_true, p.y_pred, codes, clusters, metric, target_range
                )
        sig.update(
            cluster_unit=unit, n_clusters=n_clusters, smallest_p=smallest_bootstrap_p(board.n_resamples)
        )

    def test(a: Row, b: Row) -> tuple[float, float] | None:
        by_seed = {int(r["seed"]): r for r in a.records}
        pairs = [(by_seed[int(r["seed"])], r) for r in b.records if int(r["seed"]) in by_seed]
        if not pairs:
            return None
        if method == "cluster_bootstrap":
            draws = draw_seeds(len(pairs), board.n_resamples, board.bootstrap_seed)
            result = paired_bootstrap(
                [scores[id(x)] for x, _ in pairs],
                [scores[id(y)] for _, y in pairs],
                draws,
                n_clusters,
                board.alpha,
            )
        else:
            # Seeds where either run's metric is undefined (None: a constant prediction's Corr) drop out.
            pairs = [
                (x, y)
                for x, y in pairs
                if None not in (x["metrics"]["test"][metric], y["metrics"]["test"][metric])
            ]
            if not pairs:
                return None
            a_vals = [float(x["metrics"]["test"][metric]) for x, _ in pairs]
            b_vals = [float(y["metrics"]["test"][metric]) for _, y in pairs]
            result = seed_permutation(a_vals, b_vals, board.bootstrap_seed)
            sig["smallest_p"] = max(sig.get("smallest_p", 0.0), smallest_permutation_p(len(pairs)))
        return result.delta, result.p_value

    results = {(i, j): test(rows[i], rows[j]) for i in range(len(rows)) for j in range(i + 1, len(rows))}
    tested = [k for k, v in results.items() if v is not None]
    adjusted = dict(zip(tested, holm([results[k][1] for k in tested]), strict=True))
    sig["n_comparisons"] = len(tested)
    group.significance = sig
    for j, row in enumerate(rows[1:], start=1):
        if results[(0, j)] is None:
            row.p_value, row.tied = None, False
            continue
        row.delta, row.p_raw = results[(0, j)]
        row.p_value = adjusted[(0, j)]
        row.tied = row.p_value >= board.alpha
