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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ua_is_balanced_accuracy_and_wa_is_accuracy(seed):
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(seed)
    y_true = rng.choice(5, size=400, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    y_pred = np.where(rng.random(400) < 0.5, y_true, rng.integers(0, 6, 400))
    names = list("abcdef")  # class 'f' is predicted but never true: no recall, left out of UA
    m = classification_metrics(y_true, y_pred, names)
    assert m["unweighted_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["weighted_accuracy"] == m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    # UA differs from WA under imbalance (the point of reporting both)
    assert abs(m["unweighted_accuracy"] - m["weighted_accuracy"]) > 1e-3


def test_macro_f1_is_the_mean_of_the_classes_with_an_f1():
    from mmbench.metrics import class_present

    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 3])  # class 3 predicted, never true: F1 0; class 4 absent
    m = classification_metrics(y_true, y_pred, list("abcde"))
    present = class_present(m["confusion_matrix"])
    assert present.tolist() == [True, True, True, True, False]
    f1 = [m["per_class"][c]["f1"] for c in "abcde"]
    assert m["macro_f1"] == pytest.approx(np.mean([f for f, p in zip(f1, present, strict=True) if p]))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_split_metric_derives_ua_for_records_without_it():
    from mmbench.metrics import split_metric

    rng = np.random.default_rng(4)
    y_true, y_pred = rng.integers(0, 3, 90), rng.integers(0, 3, 90)
    m = classification_metrics(y_true, y_pred, ["x", "y", "z"])
    old = {k: v for k, v in m.items() if k not in ("unweighted_accuracy", "weighted_accuracy")}
    assert split_metric(old, "unweighted_accuracy") == pytest.approx(m["unweighted_accuracy"])
    assert split_metric(old, "weighted_accuracy") == m["accuracy"]
    with pytest.raises(KeyError):
        split_metric(old, "mae")


@pytest.mark.parametrize("metric", ["unweighted_accuracy", "weighted_accuracy"])
def test_ua_and_wa_are_selection_metrics(metric):
    from mmbench.metrics import primary_score
    from mmbench.protocol import load_protocol

    protocol = load_protocol("synthetic", overrides=[f"metric={metric}"])
    y_true, y_pred = np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])
    expected = {"unweighted_accuracy": 0.5, "weighted_accuracy": 0.75}[metric]
    assert primary_score(y_true, y_pred, 2, protocol["metric"]) == expected
