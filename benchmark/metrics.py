"""Classification and regression metrics (numpy only, no sklearn needed).

Classification metrics come from a confusion matrix. Definitions match scikit-learn's:

* per-class precision/recall/F1 with 0 where undefined;
* ``accuracy`` = ``weighted_accuracy`` (WA): the share of correct samples, i.e. per-class recall
  weighted by true-class support (the speech-emotion literature's "WA");
* ``unweighted_accuracy`` (UA): the mean per-class recall over the classes present in ``y_true``
  (``sklearn.metrics.balanced_accuracy_score``; the headline metric of IEMOCAP speech emotion work,
  reported beside WA). A class with no true sample in the split has no recall and is left out;
* ``weighted_f1`` weights per-class F1 by true-class support;
* ``macro_f1`` averages per-class F1 over the classes present in ``y_true`` **or** ``y_pred``
  (``f1_score(average="macro")``). A class with neither a true nor a predicted sample in the split
  has no F1: it is left out of the mean and shown as "–" (not 0) in per-class tables, so that the
  macro F1 is exactly the mean of the per-class numbers shown. ``class_present`` tells which.

Regression metrics (``regression_metrics``) are those of multimodal sentiment analysis, defined as in
MMSA (``thuiar/MMSA``, ``utils/metricsTop.py``) on a real-valued target:

* ``mae``: mean absolute error; ``corr``: Pearson correlation of predictions and targets;
* on the CMU-MOSI/MOSEI scale [-3, 3] (and any range around 0), Acc-2 in both conventions the
  literature reports: ``acc2_has0``/``f1_has0`` (negative vs non-negative, every sample) and
  ``acc2_non0``/``f1_non0`` (negative vs positive, samples whose target is 0 left out); F1 is the
  support-weighted F1 of the two classes (``f1_score(average="weighted")``);
* on [-3, 3]: ``acc5``/``acc7``, predictions and targets clipped to [-2, 2]/[-3, 3] and rounded
  (numpy's round-half-to-even, as MMSA) before comparing;
* on CH-SIMS's [-1, 1]: MMSA's bin accuracies ``acc2`` (bins (-1, 0], (0, 1]), ``acc3`` (cuts
  at -0.1, 0.1), ``acc5`` (cuts at -0.7, -0.1, 0.1, 0.7) on clipped values, and ``f1`` (weighted
  F1 of the two ``acc2`` bins).

A metric that is undefined on the given values (``corr`` of a constant; the ``non0`` pair when
every target is 0) is ``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class ``i`` predicted as ``j``."""
    idx = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a, dtype=np.float64)
    np.divide(a, b, out=out, where=b > 0)
    return out


def scores_from_confusion(cm: np.ndarray) -> dict[str, Any]:
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    total = cm.sum()
    present = (support > 0) | (predicted > 0)
    accuracy = float(tp.sum() / total) if total else 0.0
    return {
        "accuracy": accuracy,
        "weighted_accuracy": accuracy,
        "unweighted_accuracy": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / support.sum()) if support.sum() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy (WA), UA, weighted/macro F1, per-class precision/recall/F1/support, the confusion matrix.

    ``y_true``/``y_pred``: int class indices ``[N]`` into ``class_names``.
    """
    cm = confusion_matrix(y_true, y_pred, len(class_names))
    s = scores_from_confusion(cm)
    per_class = {
        name: {
            "precision": float(s["precision"][i]),
            "recall": float(s["recall"][i]),
            "f1": float(s["f1"][i]),
            "support": int(s["support"][i]),
        }
        for i, name in enumerate(class_names)
    }
    return {
        "accuracy": s["accuracy"],
        "weighted_accuracy": s["weighted_accuracy"],
        "unweighted_accuracy": s["unweighted_accuracy"],
        "weighted_f1": s["weighted_f1"],
        "macro_f1": s["macro_f1"],
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


def primary_score(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, metric: str) -> float:
    """One scalar metric, cheaply (used every epoch for model selection on dev)."""
    return float(scores_from_confusion(confusion_matrix(y_true, y_pred, num_classes))[metric])


def class_present(cm: list[list[int]] | np.ndarray) -> np.ndarray:
    """``[C]`` bool: the class has a true or a predicted sample (its F1 is defined and in macro F1)."""
    cm = np.asarray(cm)
    return (cm.sum(axis=1) > 0) | (cm.sum(axis=0) > 0)


def split_metric(metrics: dict[str, Any], name: str) -> float | None:
    """``metrics[name]`` of one split of a record, derived for records written before the key existed.

    ``weighted_accuracy`` is ``accuracy``; ``unweighted_accuracy`` is the mean recall over the classes
    with test support, from the record's ``per_class`` table. ``None`` for a regression metric that
    was undefined (see ``regression_metrics``). Raises ``KeyError`` when neither exists.
    """
    if name in metrics:
        return None if metrics[name] is None else float(metrics[name])
    if name == "weighted_accuracy":
        return float(metrics["accuracy"])
    if name == "unweighted_accuracy":
        recalls = [c["recall"] for c in metrics["per_class"].values() if c["support"] > 0]
        return float(np.mean(recalls)) if recalls else 0.0
    raise KeyError(name)


# ----------------------------------------------------------------------------- regression
#: MMSA's CH-SIMS bin edges on [-1, 1]: a value ``x`` falls in bin ``i`` when
#: ``edges[i] < x <= edges[i + 1]`` (the outer edges lie beyond the clipped range).
SIMS_BINS = {
    "acc2": (-1.01, 0.0, 1.01),
    "acc3": (-1.01, -0.1, 0.1, 1.01),
    "acc5": (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01),
}


def pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """Pearson correlation; ``None`` when either side is constant (no correlation is defined)."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if len(t) < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return None
    return float(np.corrcoef(p, t)[0, 1])


def _binary_scores(true_pos: np.ndarray, pred_pos: np.ndarray) -> tuple[float | None, float | None]:
    """(accuracy, support-weighted F1) of two boolean arrays; ``(None, None)`` when empty."""
    if len(true_pos) == 0:
        return None, None
    s = scores_from_confusion(confusion_matrix(true_pos.astype(np.int64), pred_pos.astype(np.int64), 2))
    return s["accuracy"], s["weighted_f1"]


def _bins(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    # searchsorted(side="left") gives the i with edges[i-1] < x <= edges[i]: bin i - 1.
    return np.searchsorted(np.asarray(edges), values, side="left") - 1


def regression_metric_names(target_range: tuple[float, float] | None) -> tuple[str, ...]:
    """The metrics ``regression_metrics`` reports for targets in ``target_range`` (see module doc)."""
    names: tuple[str, ...] = ("mae", "corr")
    if target_range is None:
        return names
    low, high = float(target_range[0]), float(target_range[1])
    if (low, high) == (-1.0, 1.0):
        return (*names, "acc2", "acc3", "acc5", "f1")
    if low < 0 < high:
        names = (*names, "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")
    if (low, high) == (-3.0, 3.0):
        names = (*names, "acc5", "acc7")
    return names


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, target_range: tuple[float, float] | None
) -> dict[str, float | None]:
    """MAE, Pearson correlation and the accuracies of ``regression_metric_names(target_range)``.

    ``y_true``/``y_pred``: float ``[N]`` targets and predictions (the model's raw output, not
    clipped: MMSA clips only for Acc-5/Acc-7 and the CH-SIMS bins). Raises ``ValueError`` for
    arrays of different lengths or no sample.
    """
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.shape != p.shape or len(t) == 0:
        raise ValueError(f"regression metrics need equally long, non-empty arrays (got {t.shape}, {p.shape})")
    names = regression_metric_names(target_range)
    out: dict[str, float | None] = {"mae": float(np.mean(np.abs(p - t))), "corr": pearson(t, p)}
    if "acc2_has0" in names:
        out["acc2_has0"], out["f1_has0"] = _binary_scores(t >= 0, p >= 0)
        nonzero = t != 0
        out["acc2_non0"], out["f1_non0"] = _binary_scores(t[nonzero] > 0, p[nonzero] > 0)
    if "acc7" in names:
        for name, bound in (("acc5", 2.0), ("acc7", 3.0)):
            rounded_p = np.round(np.clip(p, -bound, bound))
            rounded_t = np.round(np.clip(t, -bound, bound))
            out[name] = float(np.mean(rounded_p == rounded_t))
    if "acc3" in names:  # the CH-SIMS family
        tc, pc = np.clip(t, -1.0, 1.0), np.clip(p, -1.0, 1.0)
        for name, edges in SIMS_BINS.items():
            out[name] = float(np.mean(_bins(pc, edges) == _bins(tc, edges)))
        out["f1"] = _binary_scores(_bins(tc, SIMS_BINS["acc2"]) == 1, _bins(pc, SIMS_BINS["acc2"]) == 1)[1]
    return out
