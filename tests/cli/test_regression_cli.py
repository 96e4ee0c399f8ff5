"""The CLI end to end on a regression dataset: run, sweep, leaderboard, plot and reproduce show the
task's metrics (MAE, Corr, Acc-2 both ways, F1, Acc-7) and rank by MAE ascending."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from tests.regression_runs import DATASET, REGRESSION_SET

SETS = [x for s in REGRESSION_SET for x in ("--set", s)]


@pytest.fixture
def cli():
    from tests.regression_runs import toy_registry

    with toy_registry():
        yield CliRunner()


def test_run_then_leaderboard_ranks_by_mae(cli, tmp_path):
    runs = tmp_path / "runs"
    out = cli.invoke(
        app,
        ["run", "--dataset", DATASET, "--fusion", "concat,late", "--seeds", "0,1", "--out", str(runs), *SETS],
        env={"COLUMNS": "250"},
    )
    assert out.exit_code == 0, out.output
    for head in ("test MAE ↓", "test Corr ↑", "test Acc-7 ↑", "dev MAE ↓"):
        assert head in out.stdout
    assert "wF1" not in out.stdout
    assert re.search(r"best dev epoch \d+, test MAE \d\.\d{4}, Corr ", out.output)

    board = cli.invoke(app, ["leaderboard", "--runs", str(runs), "--format", "json"])
    assert board.exit_code == 0, board.output
    (group,) = json.loads(board.stdout)["groups"]
    maes = [row["test"]["mae"]["mean"] for row in group["rows"]]
    assert maes == sorted(maes) and group["rows"][0]["best"]
    assert set(group["rows"][0]["test"]) >= {"mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0"}

    md = cli.invoke(app, ["leaderboard", "--runs", str(runs), "--format", "md"])
    assert "ranked by test MAE (lowest first)" in md.stdout and "Per-class" not in md.stdout

    plots = cli.invoke(app, ["plot", "--runs", str(runs)])
    assert plots.exit_code == 0, plots.output
    assert len(list(runs.glob("*.scatter.png"))) == 4 and not list(runs.glob("*.confusion.png"))

    record = sorted(runs.glob("*seed0.json"))[0]
    again = cli.invoke(app, ["reproduce", str(record), "--format", "json"])
    assert again.exit_code == 0, again.output
    compared = {r["metric"] for r in json.loads(again.stdout)["metrics"]}
    assert compared == {"mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7"}


def test_sweep_table_names_the_task_metric(cli, tmp_path):
    out = cli.invoke(
        app,
        ["sweep", "--dataset", DATASET, "--fusion", "late", "--seeds", "0", "--out", str(tmp_path), *SETS],
        env={"COLUMNS": "200"},
    )
    assert out.exit_code == 0, out.output
    assert "test MAE ↓ (mean)" in out.stdout
    js = cli.invoke(
        app,
        ["sweep", "--dataset", DATASET, "--fusion", "late", "--seeds", "0", "--out", str(tmp_path)]
        + SETS
        + ["--format", "json"],
    )
    (cell,) = json.loads(js.stdout)["cells"]
    assert cell["test_metric"] == "mae" and cell["test_score"] > 0 and cell["test_weighted_f1"] is None
