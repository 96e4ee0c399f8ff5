"""What the task object tells the downstream displays: headline columns, arrows, trivial baselines."""

import numpy as np
import pytest

from mmbench.runner.results import SUMMARY_METRICS
from mmbench.tasks import ClassificationTask, RegressionTask, direction_arrow


def test_headline_metrics_per_task():
    # Classification boards keep their columns (published leaderboards stay byte-identical).
    assert ClassificationTask(("a", "b")).headline_metrics == SUMMARY_METRICS
    assert RegressionTask((-3.0, 3.0)).headline_metrics == (
        "mae",
        "corr",
        "acc2_has0",
        "f1_has0",
        "acc2_non0",
        "f1_non0",
        "acc7",
    )
    assert RegressionTask((-1.0, 1.0)).headline_metrics == ("mae", "corr", "acc2", "acc3", "acc5", "f1")
    assert RegressionTask(None).compact_metrics == ("mae", "corr")
    assert direction_arrow("mae") == "↓" and direction_arrow("acc2_non0") == "↑"


def test_baseline_predictions():
    assert ClassificationTask(("a", "b", "c")).baseline_prediction(np.array([2, 0, 2, 1])) == 2
    targets = np.array([-3.0, -0.4, 0.2, 0.6, 3.0])
    median = RegressionTask((-3.0, 3.0)).baseline_prediction(targets)
    assert median == pytest.approx(0.2)
    # the median is the constant with the lowest MAE on the targets it came from
    grid = np.linspace(-3, 3, 601)
    assert np.abs(targets - median).mean() <= min(np.abs(targets - c).mean() for c in grid) + 1e-12
