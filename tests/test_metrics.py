"""Metrics agree with scikit-learn's definitions."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from mmbench.metrics import classification_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 5, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 6, 300))
    y_pred[y_pred == 5] = 4
    names = list("abcdef")  # class 'f' never occurs
    m = classification_metrics(y_true, y_pred, names)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(6), zero_division=0)
    assert [m["per_class"][n]["f1"] for n in names] == pytest.approx(f.tolist())
    assert [m["per_class"][n]["support"] for n in names] == s.tolist()
    assert m["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(6)).tolist()
