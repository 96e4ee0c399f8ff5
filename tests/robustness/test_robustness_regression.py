"""Robustness of a regression model: drops in MAE and Acc-2 per removed modality (positive = worse),
a median baseline as chance, and the CLI's table with the sign convention."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.metrics import regression_metrics
from mmbench.robustness.analysis import drop, evaluate_robustness
from mmbench.tasks import RegressionTask
from mmbench.training.tensors import TensorSplit
from tests.regression_runs import make_runs, toy_registry

TASK = RegressionTask((-3.0, 3.0))


def _split(n: int, seed: int) -> TensorSplit:
    g = torch.Generator().manual_seed(seed)
    a, v = torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g)
    y = (1.5 * a[:, 0] + 0.5 * v[:, 0]).clamp(-3, 3)
    return TensorSplit({"audio": a, "visual": v}, y)


def _predict(split: TensorSplit) -> np.ndarray:
    # A fixed "model": the true weights, so removing audio (zeros) costs much more than visual.
    x = split.inputs
    return (1.5 * x["audio"][:, 0] + 0.5 * x["visual"][:, 0]).numpy()


def test_drops_per_removed_modality_are_worse_positive():
    train, test = _split(300, 0), _split(200, 1)
    out = evaluate_robustness(_predict, train, test, ["audio", "visual"], [], "mae", task=TASK, levels=(0, 1))
    y = test.labels.numpy()
    clean = regression_metrics(y, _predict(test), (-3.0, 3.0))
    assert out["metric"] == "mae" and out["clean"] == pytest.approx(clean["mae"])
    drops = out["drops"]
    assert "positive is worse" in drops["convention"]
    assert drops["metrics"] == list(TASK.headline_metrics)
    for removed in ("audio", "visual"):
        zeroed = test.with_inputs({**test.inputs, removed: torch.zeros_like(test.inputs[removed])})
        without = regression_metrics(y, _predict(zeroed), (-3.0, 3.0))
        got = drops["removed"][removed]
        assert got["mae"] == pytest.approx(without["mae"] - clean["mae"])  # an error: up is worse
        assert got["acc2_has0"] == pytest.approx(clean["acc2_has0"] - without["acc2_has0"])  # a score
        assert got["acc2_non0"] == pytest.approx(clean["acc2_non0"] - without["acc2_non0"])
    assert drops["removed"]["audio"]["mae"] > drops["removed"]["visual"]["mae"] > 0
    # Chance is the train median's MAE; Shapley values still sum to the gain over the no-input output.
    median = float(np.median(train.labels.numpy()))
    assert out["contributions"]["chance"] == pytest.approx(np.abs(y - median).mean(), rel=1e-6)
    phi = out["contributions"]["shapley"]
    assert sum(phi.values()) == pytest.approx(out["clean"] - out["contributions"]["no_input"])
    assert phi["audio"] < phi["visual"] < 0  # MAE: a helpful modality lowers the error
    assert out["contributions"]["per_class"] == {}


def test_drop_direction():
    assert drop(0.8, 1.0, "mae") == pytest.approx(0.2)
    assert drop(0.8, 0.6, "acc2_has0") == pytest.approx(0.2)
    assert drop(None, 0.6, "corr") is None


def test_robustness_cli_reports_drops_in_mae_and_acc2(tmp_path):
    with toy_registry():
        make_runs(tmp_path, ["concat"], [0])
        result = CliRunner().invoke(app, ["robustness", "--runs", str(tmp_path)], env={"COLUMNS": "200"})
        board = CliRunner().invoke(app, ["leaderboard", "--runs", str(tmp_path), "--format", "md"])
    assert result.exit_code == 0, result.output
    assert "positive = worse" in result.output and "MAE up" in result.output
    assert (
        "Δ MAE" in result.output and "Δ Acc-2 (has0)" in result.output and "Δ Acc-2 (non0)" in result.output
    )
    assert "lower is better" in result.output
    for modality in ("audio", "visual"):
        assert f"│ {modality}" in result.output
    # The leaderboard's robustness table: MAE areas are lower-is-better; drops in the primary metric.
    assert "relative robustness ↓" in board.stdout and "drop w/o audio" in board.stdout
    record = json.loads(next(tmp_path.glob("*seed0.json")).read_text())
    mae_drop = record["robustness"]["drops"]["removed"]["audio"]["mae"]
    assert f"{mae_drop:+.4f} ± 0.0000" in board.stdout
