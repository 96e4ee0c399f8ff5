"""Robustness analysis: Shapley efficiency, exact clean reproduction, preset behaviour."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from mmbench.metrics import classification_metrics
from mmbench.records import predictions_path
from mmbench.registry.manager import build_registry
from mmbench.robustness.analysis import auc, effective_robustness, shapley
from mmbench.robustness.runs import analyse_runs
from mmbench.runner.run import RunRequest, run_benchmark

REGISTRY, _ = build_registry()


def test_shapley_known_game():
    # v(S) = sum of weights plus an interaction bonus for {a, b}: Shapley splits the bonus evenly.
    w = {"a": 1.0, "b": 2.0, "c": 0.5}
    players = list(w)
    values = {}
    for r in range(4):
        for s in itertools.combinations(players, r):
            values[frozenset(s)] = sum(w[p] for p in s) + (3.0 if {"a", "b"} <= set(s) else 0.0)
    phi = shapley(values, players)
    assert phi == pytest.approx({"a": 2.5, "b": 3.5, "c": 0.5})
    assert sum(phi.values()) == pytest.approx(values[frozenset(players)] - values[frozenset()])


def test_auc_and_effective_robustness():
    levels = [0.0, 0.5, 1.0]
    assert auc(levels, [1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert auc(levels, [1.0, 0.5, 0.0]) == pytest.approx(0.5)
    # Same shape as the baseline after scaling -> zero effective robustness.
    assert effective_robustness([0.8, 0.6, 0.4], [0.4, 0.3, 0.2], levels) == pytest.approx(0.0)
    assert effective_robustness([0.8, 0.8, 0.8], [0.4, 0.3, 0.2], levels) > 0


def _train(tmp_path, preset, fusions, n=2000, epochs=12):
    req = RunRequest(
        fusions=fusions,
        seeds=[0],
        overrides=[f"data.preset={preset}", f"data.n_samples={n}"],
        max_epochs=epochs,
        out_dir=tmp_path,
        device="cpu",
    )
    return run_benchmark(req, REGISTRY)[1]


@pytest.fixture(scope="module")
def unique_runs(tmp_path_factory):
    """concat and late trained on the ``unique`` preset and analysed once for this module's tests.

    Each analysis call is recorded (its predictor, test split, modalities and result) so a test can
    re-evaluate the exact quantities the Shapley values were computed from.
    """
    import mmbench.robustness.runs as runs_mod

    out = tmp_path_factory.mktemp("unique")
    records = _train(out, "unique", ["concat", "late"])
    calls = []
    original = runs_mod.evaluate_robustness

    def spy(predict, train, test, modalities, class_names, metric, **kwargs):
        result = original(predict, train, test, modalities, class_names, metric, **kwargs)
        calls.append(
            {
                "predict": predict,
                "test": test,
                "modalities": modalities,
                "classes": class_names,
                "supports_missing": kwargs.get("supports_missing", False),
                "result": result,
            }
        )
        return result

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runs_mod, "evaluate_robustness", spy)
        done = analyse_runs(out, REGISTRY)
    return out, records, done, calls


def test_unique_contributions_and_exact_clean(unique_runs):
    _, records, done, _ = unique_runs
    assert len(done) == 2
    for rec in done:
        rb = rec["robustness"]
        # Noise level 0 and the full subset reproduce the clean test metric exactly.
        clean = next(r for r in records if r["fusion"] == rec["fusion"])["metrics"]["test"]["weighted_f1"]
        assert rb["clean"] == clean
        assert rb["noise"]["curves"]["all"][0] == clean
        c = rb["contributions"]
        assert sum(c["shapley"].values()) == pytest.approx(rb["clean"] - c["no_input"], abs=1e-9)
        for m, phi in c["shapley"].items():
            assert phi > 0.05, (rec["fusion"], m, phi)
        # Over chance (v(∅) = always the train majority class): efficiency against the gain over
        # chance, overall and per class; the chance score is that of the majority predictor.
        test_labels = np.asarray(json.loads(predictions_path(Path(rec["_path"])).read_text())["y_true"])
        assert c["chance"] < c["gain_over_chance"] + c["chance"] == pytest.approx(rb["clean"])
        assert sum(c["shapley_over_chance"].values()) == pytest.approx(rb["clean"] - c["chance"], abs=1e-9)
        assert sum(c["share_over_chance"].values()) == pytest.approx(1.0, abs=1e-9)
        assert 0 <= c["chance"] <= np.bincount(test_labels).max() / len(test_labels)
        per_class_f1 = next(r for r in records if r["fusion"] == rec["fusion"])["metrics"]["test"][
            "per_class"
        ]
        classes = list(c["per_class_over_chance"])
        for j in range(len(classes)):  # the constant predictor whose score is `chance`
            constant = classification_metrics(test_labels, np.full_like(test_labels, j), classes)
            if constant["weighted_f1"] == pytest.approx(c["chance"], abs=1e-12):
                break
        else:
            raise AssertionError("no constant prediction scores the recorded chance")
        for cls in classes:
            want = per_class_f1[cls]["f1"] - constant["per_class"][cls]["f1"]
            assert sum(c["per_class_over_chance"][cls].values()) == pytest.approx(want, abs=1e-9)
        # Written into the record on disk.
        on_disk = json.loads(Path(rec["_path"]).read_text())
        assert on_disk["robustness"]["contributions"]["shapley"] == pytest.approx(c["shapley"])
    late = next(r for r in done if r["fusion"] == "late")
    assert late["robustness"]["noise"]["effective_robustness"]["all"] == pytest.approx(0.0)


def test_unique_leaderboard_has_robustness_section_and_plots(unique_runs, tmp_path):
    from typer.testing import CliRunner

    from mmbench.cli import app

    runs, _, done, _ = unique_runs
    board = tmp_path / "board.md"
    result = CliRunner().invoke(
        app,
        [
            "leaderboard",
            "--runs",
            str(runs),
            "--include-budget-cut",
            "--format",
            "md",
            "--output",
            str(board),
            "--plots",
        ],
    )
    assert result.exit_code == 0, result.output
    text = board.read_text()
    assert "Robustness on test" in text
    header = next(line for line in text.splitlines() if "relative robustness" in line)
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert "effective robustness ↑" in columns
    modalities = list(done[0]["robustness"]["contributions"]["shapley"])
    assert len(modalities) == 3
    assert [c for c in columns if c.startswith("φ")] == [f"φ {m}" for m in modalities]
    section = text.split("Robustness on test")[1].splitlines()
    for fusion in ("concat", "late"):
        assert any(line.startswith(f"| {fusion}") for line in section), fusion
    for kind in ("noise", "contributions"):
        png = tmp_path / f"board.{kind}.png"
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", kind
        assert f"]({png.name})" in text, kind


def test_unique_per_class_shapley_efficiency(unique_runs):
    """Per class, the contributions sum to that class's F1 with every modality minus with none."""
    from mmbench.metrics import classification_metrics
    from mmbench.robustness.analysis import without

    _, records, done, calls = unique_runs
    assert len(calls) == len(done) == 2
    for call, rec in zip(calls, done, strict=True):
        test, mods, classes = call["test"], call["modalities"], call["classes"]
        y = test.labels.cpu().numpy()

        def per_class_f1(split, call=call, y=y, classes=classes):
            m = classification_metrics(y, call["predict"](split), classes)
            return {c: m["per_class"][c]["f1"] for c in classes}

        full = per_class_f1(test)
        empty = per_class_f1(without(test, tuple(mods), call["supports_missing"]))
        # The full model's per-class F1 is the one the run recorded.
        recorded = next(r for r in records if r["fusion"] == rec["fusion"])["metrics"]["test"]["per_class"]
        assert full == {c: recorded[c]["f1"] for c in classes}
        phi = call["result"]["contributions"]["per_class"]
        assert phi == rec["robustness"]["contributions"]["per_class"]
        assert set(phi) == set(classes)
        for c in classes:
            assert set(phi[c]) == set(mods)
            assert sum(phi[c].values()) == pytest.approx(full[c] - empty[c], abs=1e-9), (rec["fusion"], c)
        # Not vacuous: the classes gain something from the modalities.
        assert any(abs(full[c] - empty[c]) > 0.1 for c in classes)


@pytest.mark.slow
def test_synergy_needs_every_modality(tmp_path):
    """Removing any one modality drops concat from far above chance to near it.

    In the synergy preset a pair of modalities still reveals one of the three label bits (see
    the dataset's docstring), so "near chance" allows that one bit: at most 0.12 above the
    majority share, and less than half the clean score.
    """
    records = _train(tmp_path, "synergy", ["concat"], n=3000, epochs=20)
    done = analyse_runs(tmp_path, REGISTRY)
    rb = done[0]["robustness"]
    y = np.array(json.loads((tmp_path / records[0]["predictions_file"]).read_text())["y_true"])
    majority = np.bincount(y).max() / len(y)
    assert rb["clean"] > majority + 0.3
    singles = [row for row in rb["missing"] if len(row["removed"]) == 1]
    assert len(singles) == 3
    for row in singles:
        assert row["weighted_f1"] < majority + 0.12, row
        assert row["weighted_f1"] < rb["clean"] / 2, row
