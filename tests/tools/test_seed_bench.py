"""``mmbench bench --seeds`` (``mmbench.tools.seed_bench``): sequential vs vectorised cells."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.tools.seed_bench import metric_difference

TINY = ["--set", "data.n_samples=300", "--set", "fusion.dropout=0", "--device", "cpu"]


def test_bench_seeds_times_sequential_and_vectorised_cells():
    args = ["bench", "--fusion", "concat", "--seeds", "0-1", "--max-epochs", "1", "--format", "json"]
    res = CliRunner().invoke(app, [*args, *TINY])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)["seed_batching"]
    assert row["seeds"] == [0, 1] and row["seed_batching"] == "vectorised" and row["fallback"] is None
    assert row["sequential_seconds"] > 0 and row["vectorised_seconds"] > 0
    assert row["speedup"] == pytest.approx(row["sequential_seconds"] / row["vectorised_seconds"], rel=0.01)
    # a deterministic cell (no dropout): both paths select the same epochs and score alike
    assert row["best_epochs_sequential"] == row["best_epochs_vectorised"]
    assert row["max_metric_difference"] <= 0.02


def test_metric_difference_is_the_largest_per_seed_gap():
    def rec(acc: float) -> dict:
        split = {"accuracy": acc, "weighted_f1": 0.5, "macro_f1": 0.5}
        return {"status": "ok", "metrics": {"dev": split, "test": split}}

    assert metric_difference([rec(0.5), rec(0.7)], [rec(0.5), rec(0.6)]) == pytest.approx(0.1)
    assert metric_difference([rec(0.5)], [{"status": "failed"}]) is None
