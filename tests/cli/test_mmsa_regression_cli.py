"""Downstream of a file in the MMSA layout (``mmbench.testing.mmsa``; every fusion running on it is
tested in ``tests/plugins/datasets/test_mmsa.py``): the leaderboard ranks by MAE ascending, ``tune``
minimises dev MAE, ``robustness`` reports drops in MAE and Acc-2 per removed modality."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.testing.mmsa import write_mmsa_pickle

runner = CliRunner()
FAST = ["--set", "train.max_epochs=2", "--device", "cpu"]
RECORDED = {"mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7"}


def test_leaderboard_tune_and_robustness_on_mosi(tmp_path):
    data = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=(60, 20, 24), aligned=False)
    runs = tmp_path / "runs"
    base = ["--dataset", "mosi", "--data", str(data), *FAST]
    res = runner.invoke(app, ["run", *base, "--fusion", "concat,late", "--seeds", "0,1", "--out", str(runs)])
    assert res.exit_code == 0, res.output

    board = runner.invoke(app, ["leaderboard", "--runs", str(runs), "--format", "json"])
    (group,) = json.loads(board.stdout)["groups"]
    assert group["metric"] == "mae"
    maes = [row["test"]["mae"]["mean"] for row in group["rows"]]
    assert maes == sorted(maes)
    assert all(set(row["test"]) == RECORDED for row in group["rows"])

    tuned = runner.invoke(
        app,
        ["tune", *base, "--fusion", "late", "--trials", "3", "--storage", str(tmp_path / "t.db")]
        + ["--no-export", "--format", "json"],
    )
    assert tuned.exit_code == 0, tuned.output
    summary = json.loads(tuned.stdout)
    assert summary["metric"] == "mae" and summary["direction"] == "minimize"
    values = [row["value"] for row in summary["top"]]
    assert values == sorted(values) and summary["best"]["value"] == values[0]

    rob = runner.invoke(app, ["robustness", "--runs", str(runs), "--format", "json"])
    assert rob.exit_code == 0, rob.output
    for item in json.loads(rob.stdout):
        drops = item["robustness"]["drops"]
        assert set(drops["removed"]) == {"text", "audio", "visual"}
        for values in drops["removed"].values():
            assert {"mae", "acc2_has0", "acc2_non0"} <= set(values)
