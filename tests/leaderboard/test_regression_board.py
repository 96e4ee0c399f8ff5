"""Leaderboards of a regression task: ranked by MAE ascending, best marks in each metric's direction,
regression columns, no per-class parts, every output format, and plots that degrade gracefully."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from mmbench.leaderboard.build import build_leaderboard
from mmbench.leaderboard.latex import render_latex
from mmbench.leaderboard.plots import plot_group, plot_run, run_plot_kinds
from mmbench.leaderboard.render import render_csv, render_json, render_markdown, table_headers
from mmbench.leaderboard.ties import load_predictions
from mmbench.metrics import regression_metrics
from mmbench.records import load_records
from tests.regression_runs import make_runs, toy_registry

FUSIONS = ["concat", "late", "unimodal"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("regression-runs")
    with toy_registry():
        make_runs(out, FUSIONS, [0, 1])
    return out


@pytest.fixture(scope="module")
def board(runs):
    return build_leaderboard(load_records(runs), runs, n_resamples=200)


def test_rows_rank_by_mae_ascending(board):
    (group,) = board.groups
    assert group.metric == "mae" and not group.higher_is_better
    maes = [row.mean("mae") for row in group.rows]
    assert maes == sorted(maes) and len(maes) == len(FUSIONS)
    assert [row.rank for row in group.rows] == [1, 2, 3]
    assert group.rows[0].best
    # The columns papers print: MAE first, then Corr, Acc-2 both ways with their F1, Acc-7 (no Acc-5).
    assert group.metrics == ["mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7"]
    heads = table_headers(group)
    assert "MAE ↓" in heads and "Corr ↑" in heads and "Acc-2 (non0) ↑" in heads


def test_the_tie_bootstrap_scores_stored_float_predictions(board):
    (group,) = board.groups
    sig = group.significance
    assert sig["method"] == "cluster_bootstrap" and sig["cluster_unit"] == "speaker"
    for row in group.rows:
        for rec in row.records:
            preds = load_predictions(rec)
            assert preds.y_pred.dtype == np.float64
            assert regression_metrics(preds.y_true, preds.y_pred, (-3.0, 3.0))["mae"] == pytest.approx(
                rec["metrics"]["test"]["mae"], rel=1e-6
            )
    for row in group.rows[1:]:
        # best minus other: a lower MAE than the others, so the difference is negative
        assert row.delta < 0 and 0 < row.p_value <= 1


def test_markdown_marks_the_lowest_mae_and_has_no_per_class_table(board):
    text = render_markdown(board)
    assert "ranked by test MAE (lowest first)" in text
    assert "Per-class" not in text and "a regression target in [-3, 3]" in text
    assert "the epoch with the lowest dev mae" in text
    (group,) = board.groups
    lines = [ln for ln in text.splitlines() if ln.startswith("|") and "MAE" not in ln and "---" not in ln]
    best_mae = min(row.mean("mae") for row in group.rows)
    worst_mae = max(row.mean("mae") for row in group.rows)
    mae_cells = [ln.split("|")[4].strip() for ln in lines]
    assert f"**{best_mae:.4f}" in mae_cells[0]  # bold: the lowest MAE, not the highest
    assert not any(f"**{worst_mae:.4f}" in c for c in mae_cells)
    best_corr = max(row.mean("corr") for row in group.rows)
    assert any(f"**{best_corr:.4f}" in ln.split("|")[5] for ln in lines)  # Corr: the highest


def test_csv_json_and_latex_carry_the_regression_metrics(board):
    header = render_csv(board).splitlines()[0].split(",")
    assert "mae_mean" in header and "acc7_std" in header
    assert not any(
        h.startswith("f1_") and h not in ("f1_has0_mean", "f1_has0_std", "f1_non0_mean", "f1_non0_std")
        for h in header
    )
    data = json.loads(render_json(board))
    (group,) = data["groups"]
    assert group["metric"] == "mae" and group["class_names"] == []
    assert [r["rank"] for r in group["rows"]] == [1, 2, 3]
    tex = render_latex(board, per_class=True)
    assert "MAE $\\downarrow$" in tex and "ranked by test MAE (lowest first)" in tex
    assert tex.count("\\begin{table}") == 1  # no per-class table without classes


def test_html_site_has_no_per_class_tab(board, runs, tmp_path):
    from mmbench.leaderboard.site import render_site

    render_site(board, tmp_path / "site", runs)
    page = next(p for p in (tmp_path / "site").glob("*.html") if p.name != "index.html").read_text()
    assert "Per-class" not in page and "ranked by test MAE (lowest first)" in page
    assert re.search(r'data-first="ascending"><button type="button">MAE ↓', page)


def test_plots_degrade_gracefully(board, runs, tmp_path):
    (group,) = board.groups
    assert plot_group(group, tmp_path / "b.mae.png", tmp_path / "b.per_class_f1.png") == [
        tmp_path / "b.mae.png"
    ]
    assert not (tmp_path / "b.per_class_f1.png").exists()
    record = group.rows[0].records[0]
    assert run_plot_kinds(record) == ("scatter", "curves")
    written = plot_run(record, force=True)
    assert sorted(p.name.split(".")[-2] for p in written) == ["curves", "scatter"]
