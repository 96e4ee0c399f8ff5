"""Tuning a regression task: the study minimises dev MAE; reports, best trials and the comparison with
the default parameters follow that direction."""

from __future__ import annotations

import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from mmbench.runner.run import RunRequest
from mmbench.tuning.study import TrialReporter, TuneRequest, summarize_study, tune
from mmbench.tuning.summary import compare_with_default
from tests.regression_runs import DATASET, REGRESSION_SET, toy_registry

optuna.logging.set_verbosity(optuna.logging.ERROR)


class _Trial:
    number = 1

    def __init__(self) -> None:
        self.reports: list[tuple[float, int]] = []

    def report(self, value, step):
        self.reports.append((value, step))

    def should_prune(self):
        return False


class _Quiet:
    def log(self, m): ...
    def run_started(self, label, n): ...
    def epoch_ended(self, e, logs): ...


def test_trial_reports_the_lowest_dev_mae_so_far():
    trial = _Trial()
    reporter = TrialReporter(trial, "mae", prune=True, progress=_Quiet())
    reporter.run_started("x", 4)
    for epoch, mae in enumerate([0.9, 1.1, 0.7, 0.8], start=1):
        reporter.epoch_ended(epoch, {"dev_mae": mae, "train_loss": 1.0})
    assert trial.reports == [(0.9, 1), (0.9, 2), (0.7, 3), (0.7, 4)]


def test_tune_minimises_dev_mae(tmp_path):
    run = RunRequest(dataset=DATASET, fusions=["concat"], overrides=list(REGRESSION_SET), device="cpu")
    request = TuneRequest(run=run, fusion="concat", trials=4, storage=str(tmp_path / "s.db"), sampler_seed=0)
    with toy_registry() as registry:
        result = tune(request, registry)
    study = result.study
    assert study.direction == StudyDirection.MINIMIZE
    assert study.user_attrs["metric"] == "mae"
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(complete) >= 2
    summary = summarize_study(study, "s.db")
    assert summary["direction"] == "minimize"
    assert summary["best"]["value"] == min(t.value for t in complete)
    assert [r["value"] for r in summary["top"]] == sorted(t.value for t in complete)
    comparison = summary["comparison"]
    assert comparison["delta"] == pytest.approx(summary["best"]["value"] - summary["default"]["value"])
    # the best MAE is at most the default's: "improved" means it went down
    assert comparison["improved"] is (comparison["delta"] < 0)


@pytest.mark.parametrize(
    ("direction", "best", "improved"), [("minimize", 0.7, True), ("maximize", 0.7, False)]
)
def test_the_default_comparison_follows_the_direction(direction, best, improved):
    summary = {
        "metric": "mae" if direction == "minimize" else "corr",
        "direction": direction,
        "best": {"number": 2, "value": best},
        "default": {"number": 0, "value": 0.8, "state": "complete"},
        "counts": {"complete": 3},
    }
    comparison = compare_with_default(summary)
    assert comparison["improved"] is improved
    assert comparison["delta"] == pytest.approx(best - 0.8)
    assert ("tuning improved" in comparison["text"]) is improved
