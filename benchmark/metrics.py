"""Classification metrics computed from a confusion matrix (numpy only, no sklearn needed).

Definitions match scikit-learn's: per-class precision/recall/F1 with 0 where undefined,
``weighted_f1`` weights per-class F1 by true-class support, ``macro_f1`` averages over the
classes present in ``y_true`` or ``y_pred``.
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
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "weighted_f1": float((f1 * support).sum() / support.sum()) if support.sum() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, weighted/macro F1, per-class precision/recall/F1/support and the confusion matrix."""
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
        "weighted_f1": s["weighted_f1"],
        "macro_f1": s["macro_f1"],
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


def primary_score(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, metric: str) -> float:
    """One scalar metric, cheaply (used every epoch for model selection on dev)."""
    return float(scores_from_confusion(confusion_matrix(y_true, y_pred, num_classes))[metric])
