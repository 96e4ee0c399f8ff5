"""Every figure kind renders in the house style: a readable size, PNG and SVG written, and no legend
over the plotted region of any axes (matplotlib window extents)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmbench.inspection.report as inspect_report
import mmbench.leaderboard.plots as board_plots
import mmbench.robustness.plots as robustness_plots
from mmbench.leaderboard.build import build_leaderboard
from mmbench.records import load_records
from mmbench.ui import plot_style
from mmbench.ui.plot_style import figure, house_style, legend_overlaps
from tests.leaderboard.test_leaderboard import make_record, noisy

SEEN: dict[str, list] = {}


@pytest.fixture
def checked(monkeypatch):
    """Wrap ``save_figure`` in each plotting module: check the figure before it is written."""
    SEEN.clear()
    real = plot_style.save_figure

    def checking_save(fig, path, formats=None):
        w, h = fig.get_size_inches() * fig.dpi
        SEEN[Path(path).name] = [
            legend_overlaps(fig),
            (w, h),
            len(fig.legends) + sum(ax.get_legend() is not None for ax in fig.axes),
        ]
        return real(fig, path, formats)

    for module in (board_plots, robustness_plots):
        monkeypatch.setattr(module, "save_figure", checking_save)
    monkeypatch.setattr(plot_style, "save_figure", checking_save)
    return SEEN


def _assert_figures(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        overlaps, (w, h), _ = SEEN[name]
        assert overlaps == [], (name, overlaps)
        assert w >= 400 and h >= 250, (name, w, h)
        png = next(tmp_path.rglob(name))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = png.with_suffix(".svg")
        assert svg.exists() and b"<svg" in svg.read_bytes()[:2000], svg


def _records(tmp_path: Path) -> list[dict]:
    for seed in (0, 1, 2):
        make_record(tmp_path / "runs", "good", seed, noisy(0.85, seed))
        make_record(tmp_path / "runs", "a_long_fusion_name", seed, noisy(0.8, seed))
        make_record(tmp_path / "runs", "bad", seed, noisy(0.5, seed))
    records = load_records(tmp_path / "runs")
    for rec in records:
        rec["history"] = [
            {
                "epoch": e,
                "train_loss": 1.0 / e,
                "dev_loss": 1.2 / e + 0.02 * e,
                "dev_weighted_f1": 0.5 + 0.03 * e,
                "lr": 1e-3 if e < 6 else 5e-4,
            }
            for e in range(1, 10)
        ]
        rec["best_epoch"] = 7
    return records


def test_run_figures(tmp_path, checked):
    rec = _records(tmp_path)[0]
    written = board_plots.plot_run(rec, force=True)
    assert len(written) == 3
    _assert_figures(tmp_path, [p.name for p in written])
    assert SEEN[written[1].name][2] == 1  # the curves' legend (beside the axes)


def test_leaderboard_figures_with_chance_and_majority(tmp_path, checked):
    board = build_leaderboard(_records(tmp_path), tmp_path / "runs", n_resamples=100)
    (group,) = board.groups
    refs = board_plots.group_references(group)
    assert set(refs) == {"chance", "majority"} and all(0 < v < 0.5 for v in refs.values())
    board_plots.plot_group(group, tmp_path / "b.weighted_f1.png", tmp_path / "b.per_class_f1.png")
    _assert_figures(tmp_path, ["b.weighted_f1.png", "b.per_class_f1.png"])


def test_baselines_match_their_definitions():
    # Three classes with 50/30/20 test utterances.
    refs = board_plots.baselines([50, 30, 20], "accuracy")
    assert refs == pytest.approx({"chance": 1 / 3, "majority": 0.5})
    wf1 = board_plots.baselines([50, 30, 20], "weighted_f1")
    p = np.array([0.5, 0.3, 0.2])
    assert wf1["chance"] == pytest.approx(float((p * 2 * p / (1 + 3 * p)).sum()))
    assert wf1["majority"] == pytest.approx(0.5 * (2 * 0.5 / 1.5))
    assert board_plots.baselines([5, 5], "mae") == {}
    lo, hi = board_plots.interval95(0.8, 0.01, 5)
    assert hi - 0.8 == pytest.approx(2.776 * 0.01 / np.sqrt(5), rel=1e-3) and lo < 0.8


def test_robustness_figures_name_dataset_protocol_and_seeds(tmp_path, checked):
    records = _records(tmp_path)
    for i, rec in enumerate(records):
        rec["robustness"] = {
            "metric": "weighted_f1",
            "noise": {"levels": [0, 0.5, 1, 2], "curves": {"all": [0.8, 0.7 - i * 0.01, 0.5, 0.3]}},
            "contributions": {
                "shapley": {"text": 0.3 + 0.01 * i, "audio": 0.1, "visual": -0.02},
                "no_input": 0.1,
            },
        }
    robustness_plots.plot_noise_curves(records, tmp_path / "noise.png")
    robustness_plots.plot_contributions(records, tmp_path / "contributions.png")
    _assert_figures(tmp_path, ["noise.png", "contributions.png"])
    assert (
        robustness_plots.context_title(records)
        == f"synthetic:mixed · protocol {records[0]['protocol_fingerprint'][:8]}"
    )


def test_optuna_figures_in_the_house_style(tmp_path, checked):
    optuna = pytest.importorskip("optuna")
    from mmbench.tuning.study import save_plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="demo", direction="maximize")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-2, log=True) + t.suggest_int("d", 1, 4) / 10, 12)
    written = save_plots(study, tmp_path)
    assert [p.name for p in written] == ["demo-optimization_history.png", "demo-param_importances.png"]
    _assert_figures(tmp_path, [p.name for p in written])


def test_inspect_class_chart_legend_beside_the_bars(monkeypatch):
    seen = []
    monkeypatch.setattr(inspect_report, "_png", lambda fig: seen.append(fig) or b"")
    names = ["neu", "ang", "sad"]
    counts = {s: dict(zip(names, [30, 20, 10], strict=True)) for s in ("train", "dev", "test")}
    inspect_report.class_chart(
        {"dataset": "demo", "classes": {"names": names, "counts": counts, "imbalance_ratio": 3.0}}
    )
    assert legend_overlaps(seen[0]) == []


def test_the_overlap_check_catches_a_legend_over_data():
    with house_style():
        fig, ax = figure(4, 3)
        ax.plot([0, 1], [0, 1], label="line")
        ax.legend(loc="center")
        assert legend_overlaps(fig)
