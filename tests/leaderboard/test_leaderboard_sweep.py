"""A leaderboard from a real sweep (3 fusions x 3 seeds): numbers against numpy, ties, footer, bytes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.records import load_records

FUSIONS = ["concat", "late", "unimodal"]


@pytest.mark.slow
def test_leaderboard_from_a_three_by_three_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    sweep = ["sweep", "--fusion", ",".join(FUSIONS), "--dataset", "synthetic", "--seeds", "0,1,2"]
    sweep += [
        "--set",
        "data.n_samples=400",
        "--max-epochs",
        "2",
        "--out",
        "runs",
        "--device",
        "cpu",
        "--no-checkpoints",
    ]
    res = runner.invoke(app, sweep)
    assert res.exit_code == 0, res.output

    board = ["leaderboard", "--runs", "runs", "--dataset", "synthetic", "--include-budget-cut"]
    res = runner.invoke(app, [*board, "--format", "json"])
    assert res.exit_code == 0, res.output
    (group,) = json.loads(res.stdout)["groups"]
    records = load_records(tmp_path / "runs")
    assert len(records) == 9
    for row in group["rows"]:
        mine = [r for r in records if r["fusion"] == row["fusion"]]
        assert row["n_seeds"] == 3 and row["seeds"] == [0, 1, 2]
        for metric in ("weighted_f1", "accuracy", "macro_f1"):
            values = np.array([r["metrics"]["test"][metric] for r in mine])
            assert row["test"][metric]["mean"] == pytest.approx(values.mean(), abs=1e-12)
            assert row["test"][metric]["std"] == pytest.approx(values.std(ddof=1), abs=1e-12)
    means = [r["test"]["weighted_f1"]["mean"] for r in group["rows"]]
    assert means == sorted(means, reverse=True) and [r["rank"] for r in group["rows"]] == [1, 2, 3]
    best, *others = group["rows"]
    assert best["best"] and best["tied"]
    for row in others:
        assert row["tied"] == (row["p_value"] >= 0.05)

    out = tmp_path / "boards" / "synthetic.md"
    res = runner.invoke(app, [*board, "--format", "md", "--output", str(out.relative_to(tmp_path))])
    assert res.exit_code == 0, res.output
    first = out.read_bytes()
    text = first.decode()
    for row in group["rows"]:
        line = next(x for x in text.splitlines() if re.match(rf"^\|\s+\d+ \| {row['fusion']} ", x))
        mean, std = row["test"]["weighted_f1"]["mean"], row["test"]["weighted_f1"]["std"]
        assert f"{mean:.4f} ± {std:.4f}" in line
        assert ("≈ tied" in line) == (row["tied"] and not row["best"])
    for label in ("Protocol", "Selection", "Seeds", "Ties (≈)", "Software", "Hardware", "Runs made by"):
        assert f"- **{label}**" in text
    assert "Regenerate: `mmbench leaderboard --runs runs --dataset synthetic --format md --output " in text
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", text)  # no timestamps

    # Regenerating from the same records gives the same bytes.
    res = runner.invoke(app, [*board, "--format", "md", "--output", str(out.relative_to(tmp_path))])
    assert res.exit_code == 0 and out.read_bytes() == first
