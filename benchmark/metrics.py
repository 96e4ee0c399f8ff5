"""Classification metrics computed from a confusion matrix (numpy only, no sklearn needed).

Definitions match scikit-learn's:

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


def split_metric(metrics: dict[str, Any], name: str) -> float:
    """``metrics[name]`` of one split of a record, derived for records written before the key existed.

    ``weighted_accuracy`` is ``accuracy``; ``unweighted_accuracy`` is the mean recall over the classes
    with test support, from the record's ``per_class`` table. Raises ``KeyError`` when neither exists.
    """
    if name in metrics:
        return float(metrics[name])
    if name == "weighted_accuracy":
        return float(metrics["accuracy"])
    if name == "unweighted_accuracy":
        recalls = [c["recall"] for c in metrics["per_class"].values() if c["support"] > 0]
        return float(np.mean(recalls)) if recalls else 0.0
    raise KeyError(name)
