"""Leaderboards from records: mean ± std against numpy, ties, fingerprints, failures, formats, bytes.

Records here are written by ``make_record`` (metrics computed from fabricated predictions with
``mmbench.metrics``), so these tests are fast; ``test_leaderboard_sweep.py`` uses real runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.leaderboard.build import build_leaderboard
from mmbench.leaderboard.render import footer_lines, render_csv, render_json, render_markdown
from mmbench.leaderboard.significance import cluster_bootstrap, cluster_codes, cluster_counts, holm
from mmbench.metrics import classification_metrics
from mmbench.protocol import fingerprint, load_protocol
from mmbench.records import (
    atomic_write_json,
    load_records,
    predictions_path,
    record_path,
    record_stem,
    write_record,
)

CLASSES = ["neg", "neu", "pos"]
N_TEST = 240
Y_TRUE = np.random.default_rng(123).choice(3, size=N_TEST, p=[0.5, 0.3, 0.2])


def noisy(accuracy: float, seed: int, base: np.ndarray = Y_TRUE) -> np.ndarray:
    """``base`` with about ``1 - accuracy`` of the labels moved to another class."""
    rng = np.random.default_rng(seed)
    pred = base.copy()
    flip = rng.random(len(base)) > accuracy
    pred[flip] = (pred[flip] + rng.integers(1, 3, size=flip.sum())) % 3
    return pred


def protocol(*overrides: str) -> dict:
    return load_protocol("synthetic", overrides=list(overrides))


def make_record(
    out: Path,
    fusion: str,
    seed: int,
    y_pred: np.ndarray,
    *,
    proto: dict | None = None,
    dataset_fp: str = "d" * 16,
    status: str = "ok",
    budget_cut: bool = False,
    tuning: dict | None = None,
    params_tag: str | None = None,
    predictions: bool = True,
    clusters: list[str] | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a record (and its predictions) like the runner does; return the record path."""
    proto = proto or protocol()
    fp = fingerprint(proto)
    tag = params_tag or hashlib.sha256(fusion.encode()).hexdigest()[:8]
    ok = status == "ok"
    rec = {
        "schema_version": 1,
        "status": status,
        "dataset": "synthetic",
        "fusion": fusion,
        "fusion_params": {},
        "tuning": tuning,
        "params_tag": tag,
        "encoders": {"text": {"name": "precomputed"}},
        "seed": seed,
        "protocol": proto,
        "protocol_fingerprint": fp,
        "dataset_fingerprint": dataset_fp,
        "budget_cut": budget_cut,
        "class_names": CLASSES,
        "n_train": 1000,
        "n_dev": 100,
        "n_test": N_TEST,
        "metrics": (
            {
                "dev": classification_metrics(Y_TRUE, y_pred, CLASSES),
                "test": classification_metrics(Y_TRUE, y_pred, CLASSES),
            }
            if ok
            else {}
        ),
        "best_epoch": 3 if ok else None,
        "history": [
            {"epoch": e, "train_loss": 1.0 / e, "dev_weighted_f1": 0.5 + 0.05 * e} for e in (1, 2, 3)
        ],
        "efficiency": {
            "params": 1000 + len(fusion),
            "train_seconds": 2.0 + seed,
            "train_samples_per_second": 500.0 - seed,
            "peak_memory_bytes": 2**20 * (10 + seed),
            "inference_ms_per_sample": 0.01 * (1 + seed),
        },
        "environment": {
            "python": "3.11.7",
            "torch": "2.13.0",
            "mmbench": "0.1.0",
            "device": "cpu",
            "device_name": "x86_64",
            "cpu_count": 2,
            "torch_threads": 2,
            "command": "mmbench sweep --fusion all",
            "plugins": [{"name": "builtin-fusions", "distribution": "mmbench", "version": "0.1.0"}],
        },
        "created_at": f"2026-01-0{1 + seed}T00:00:00+00:00",
    }
    if not ok:
        rec["failure"] = {"reason": "training diverged: loss is nan at epoch 2", "epoch": 2}
    rec.update(extra or {})
    stem = record_stem("synthetic", fusion, fp, tag, seed)
    if predictions:
        preds = {"ids": None, "y_true": Y_TRUE.tolist(), "y_pred": y_pred.tolist()} if ok else {}
        if clusters is not None and ok:
            preds["clusters"] = clusters
            rec["cluster_unit"] = "dialogue"
        return write_record(out, stem, rec, preds)
    atomic_write_json(record_path(out, stem), rec)
    return record_path(out, stem)


def three_by_three(out: Path) -> None:
    """Fusions ``good`` (~0.85), ``close`` (good + 2 errors per seed) and ``bad`` (~0.4) x 3 seeds."""
    for seed in (0, 1, 2):
        good = noisy(0.85, seed)
        close = good.copy()
        wrong = np.flatnonzero(good == Y_TRUE)[:2]
        close[wrong] = (close[wrong] + 1) % 3
        make_record(out, "good", seed, good)
        make_record(out, "close", seed, close)
        make_record(out, "bad", seed, noisy(0.4, 100 + seed))


def board_of(runs: Path, **kw):
    return build_leaderboard(load_records(runs), runs, **kw)


def test_mean_std_match_numpy(tmp_path):
    three_by_three(tmp_path)
    board = board_of(tmp_path)
    (group,) = board.groups
    assert [r.fusion for r in group.rows] == ["good", "close", "bad"]
    records = load_records(tmp_path)
    for row in group.rows:
        mine = [r for r in records if r["fusion"] == row.fusion]
        assert row.summary["n_seeds"] == 3
        for metric in ("weighted_f1", "accuracy", "macro_f1"):
            values = np.array([r["metrics"]["test"][metric] for r in mine])
            assert row.mean(metric) == pytest.approx(values.mean(), abs=1e-12)
            assert row.std(metric) == pytest.approx(values.std(ddof=1), abs=1e-12)
        for name in CLASSES:
            f1 = [r["metrics"]["test"]["per_class"][name]["f1"] for r in mine]
            assert row.per_class[name]["mean"] == pytest.approx(np.mean(f1))
        secs = [r["efficiency"]["train_seconds"] for r in mine]
        assert row.efficiency["train_seconds"] == pytest.approx(np.mean(secs))
    md = render_markdown(board)
    good = group.rows[0]
    assert f"**{good.mean('weighted_f1'):.4f} ± {good.std('weighted_f1'):.4f}**" in md
    assert [r.rank for r in group.rows] == [1, 2, 3]


def test_ties_follow_a_seeded_cluster_bootstrap_with_holm(tmp_path):
    three_by_three(tmp_path)
    board = board_of(tmp_path)
    rows = {r.fusion: r for r in board.groups[0].rows}
    assert rows["good"].best and rows["close"].tied and not rows["bad"].tied
    assert rows["bad"].p_value < 0.01 < rows["close"].p_value
    # The same p-values from the stats module directly: runs paired by seed, every pair of rows
    # tested, Holm over the three pairs; no cluster ids in these records: utterances are the unit.
    records = load_records(tmp_path)
    codes = cluster_codes(None, N_TEST)

    def counts(fusion):
        recs = sorted((r for r in records if r["fusion"] == fusion), key=lambda r: r["seed"])
        preds = [json.loads(predictions_path(Path(r["_path"])).read_text()) for r in recs]
        return np.stack([cluster_counts(Y_TRUE, np.array(p["y_pred"]), codes, 3) for p in preds])

    raw = {
        pair: cluster_bootstrap(counts(pair[0]), counts(pair[1]), "weighted_f1", 1000, 0).p_value
        for pair in (("good", "close"), ("good", "bad"), ("close", "bad"))
    }
    assert rows["close"].p_raw == raw[("good", "close")]
    assert rows["close"].p_value == pytest.approx(holm(list(raw.values()))[0])
    assert rows["bad"].p_value == pytest.approx(holm(list(raw.values()))[1])
    md = render_markdown(board)
    assert "≈ tied (p=" in md.split("| close")[1].splitlines()[0]
    assert (
        "p<0.001" in md.split("| bad")[1].splitlines()[0] or "p=0.00" in md.split("| bad")[1].splitlines()[0]
    )
    assert "Holm-adjusted over all 3 pairwise comparisons" in md
    assert "hierarchical bootstrap of test weighted F1 (1000 resamples, seed 0)" in md
    assert "cluster unit: utterance (the records carry no cluster ids), 240 clusters" in md
    assert "smallest attainable p 0.0010" in md


def test_cluster_ids_in_the_predictions_set_the_resampled_unit(tmp_path):
    dialogues = [f"dia{i // 12}" for i in range(N_TEST)]
    for seed in (0, 1):
        make_record(tmp_path, "good", seed, noisy(0.85, seed), clusters=dialogues)
        make_record(tmp_path, "bad", seed, noisy(0.6, 10 + seed), clusters=dialogues)
    board = board_of(tmp_path)
    sig = board.groups[0].significance
    assert (sig["cluster_unit"], sig["n_clusters"]) == ("dialogue", 20)
    assert "cluster unit: dialogue, 20 clusters" in render_markdown(board)
    # export keeps the cluster ids, so a published board re-tests the same way
    from mmbench.leaderboard.render import export_runs

    export_runs(board, tmp_path / "export")
    again = board_of(tmp_path / "export")
    assert again.groups[0].significance == sig
    assert [r.p_value for r in again.groups[0].rows] == [r.p_value for r in board.groups[0].rows]


def test_same_records_same_bytes_whatever_the_file_or_key_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    three_by_three(a)
    make_record(a, "bad", 3, noisy(0.4, 7), status="failed")
    first = render_markdown(board_of(a), "cmd")
    assert first == render_markdown(board_of(a), "cmd")
    # Copy with every JSON object's keys reversed, into differently named files and folders.
    for path in sorted(a.glob("*.json")):
        obj = json.loads(path.read_text())

        def rev(o):
            return {k: rev(o[k]) for k in reversed(list(o))} if isinstance(o, dict) else o

        target = b / ("x" if "__good__" in path.name else "a") / path.name  # record and predictions together
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(rev(obj)))
    assert render_markdown(board_of(b), "cmd") == first
    ja, jb = render_json(board_of(a), "cmd"), render_json(board_of(b), "cmd")
    assert jb == ja.replace(json.dumps(a.as_posix()), json.dumps(b.as_posix()))
    assert render_csv(board_of(b)) == render_csv(board_of(a))


def test_fingerprints_never_share_a_table(tmp_path):
    lr = protocol("train.lr=0.0005")
    for seed in (0, 1):
        make_record(tmp_path, "concat", seed, noisy(0.8, seed))
        make_record(tmp_path, "concat", seed, noisy(0.5, seed), proto=lr)
        make_record(tmp_path, "late", seed, noisy(0.7, seed), dataset_fp="e" * 16)
    board = board_of(tmp_path)
    assert len(board.groups) == 3
    for group in board.groups:
        fps = {
            (r["protocol_fingerprint"], r["dataset_fingerprint"]) for row in group.rows for r in row.records
        }
        assert fps == {(group.protocol_fingerprint, group.dataset_fingerprint)}
    titles = sorted(g.title for g in board.groups)
    assert any("train.lr=0.0005" in t for t in titles) and any("train.lr=0.001" in t for t in titles)
    assert any("dataset fingerprint eeeeeeeeeeeeeeee" in t for t in titles)
    md = render_markdown(board)
    assert md.count("\n## ") == 3 and len(re.findall(r"^\|\s+rank \|", md, flags=re.M)) == 3
    with pytest.raises(Exception, match="train.lr=0.0005"):
        render_csv(board)
    result = CliRunner().invoke(app, ["leaderboard", "--runs", str(tmp_path), "--format", "csv"])
    assert result.exit_code == 2 and "several groups" in result.output
    only = board_of(tmp_path, fingerprint=fingerprint(lr)[:6])
    assert len(only.groups) == 1 and only.groups[0].protocol["train"]["lr"] == 0.0005


def test_failed_runs_listed_not_averaged(tmp_path):
    for seed in (0, 1):
        make_record(tmp_path, "concat", seed, noisy(0.8, seed))
    make_record(tmp_path, "concat", 2, noisy(0.8, 2), status="failed")
    make_record(tmp_path, "tensor", 0, noisy(0.8, 2), status="failed")
    board = board_of(tmp_path)
    (group,) = board.groups
    (row,) = group.rows
    assert row.summary["n_seeds"] == 2 and row.summary["failed_seeds"] == [2] and row.seeds == [0, 1]
    md = render_markdown(board)
    assert "**Failed runs (2, not averaged)**: concat seed 2: training diverged" in md
    assert "tensor seed 0" in md and "| tensor" not in md


def test_budget_cut_excluded_unless_asked(tmp_path):
    make_record(tmp_path, "concat", 0, noisy(0.8, 0))
    make_record(tmp_path, "concat", 0, noisy(0.6, 0), proto=protocol("train.max_epochs=2"), budget_cut=True)
    board = board_of(tmp_path)
    assert len(board.groups) == 1 and board.excluded_budget_cut == 1
    assert "Not shown: 1 budget-cut run(s)" in render_markdown(board)
    both = board_of(tmp_path, include_budget_cut=True)
    assert len(both.groups) == 2
    labels = [row.label for g in both.groups for row in g.rows]
    assert sorted(labels) == ["concat", "concat †"]
    only_cut = tmp_path / "cut"
    make_record(only_cut, "concat", 0, noisy(0.6, 0), budget_cut=True)
    with pytest.raises(Exception, match="include-budget-cut"):
        board_of(only_cut)


def test_tuned_runs_are_their_own_row(tmp_path):
    for seed in (0, 1):
        make_record(tmp_path, "concat", seed, noisy(0.7, seed))
        make_record(
            tmp_path,
            "concat",
            seed,
            noisy(0.8, seed),
            tuning={"n_trials": 20, "study_name": "s"},
            params_tag="tuned001",
            extra={"fusion_params": {"hidden": 64}, "train_overrides": {"lr": 0.00042, "batch_size": 32}},
        )
    board = board_of(tmp_path)
    (group,) = board.groups
    assert [r.label for r in group.rows] == ["concat (tuned, 20 trials)", "concat"]
    assert all(r.summary["n_seeds"] == 2 for r in group.rows)
    # The footer prints the values the tuned runs trained with, not only the protocol's.
    footer = dict(footer_lines(group, board))
    tuned = footer["Tuned values (replace the protocol's for these rows)"]
    assert (
        tuned == "concat (tuned, 20 trials): fusion hidden=64; training batch_size=32, lr=0.00042 (study s)"
    )
    assert "lr=0.001" in footer["Selection"]


def test_missing_predictions_fall_back_to_a_seed_test(tmp_path):
    for seed in (0, 1, 2, 3, 4):
        make_record(tmp_path, "good", seed, noisy(0.9, seed), predictions=False)
        make_record(tmp_path, "bad", seed, noisy(0.3, seed), predictions=False)
    (group,) = board_of(tmp_path).groups
    assert group.significance["method"] == "seeds"
    bad = group.rows[1]
    # Five seeds, all differences positive: exact two-sided sign-flip p = 2/32 > α; one pair: no Holm
    # change. The footer says that no row can be marked different with so few seeds.
    assert bad.p_value == pytest.approx(2 / 32) and bad.tied
    md = render_markdown(board_of(tmp_path))
    assert "sign-flip permutation test over seeds" in md and "smallest attainable p 0.0625" in md
    assert "no row can be marked different" in md
    make_record(tmp_path, "good", 5, noisy(0.9, 5), predictions=False)
    make_record(tmp_path, "bad", 5, noisy(0.3, 5), predictions=False)
    (group,) = board_of(tmp_path).groups
    assert group.rows[1].p_value == pytest.approx(2 / 64) and not group.rows[1].tied


def test_dataset_spec_filter(tmp_path):
    make_record(tmp_path, "concat", 0, noisy(0.8, 0), proto=protocol("data.preset=synergy"))
    make_record(tmp_path, "concat", 0, noisy(0.8, 1), proto=protocol("data.preset=redundant"))
    assert len(board_of(tmp_path, datasets=["synthetic"]).groups) == 2
    (group,) = board_of(tmp_path, datasets=["synthetic:synergy"]).groups
    assert group.title == "synthetic · preset=synergy"
    with pytest.raises(Exception, match="no run records of iemocap"):
        board_of(tmp_path, datasets=["iemocap"])


def test_cli_formats_and_output(tmp_path):
    runs = tmp_path / "runs"
    three_by_three(runs)
    runner = CliRunner()
    out_md = tmp_path / "board.md"
    res = runner.invoke(app, ["leaderboard", "--runs", str(runs), "--output", str(out_md)])
    assert res.exit_code == 0, res.output
    text = out_md.read_text()
    assert text.startswith("# Leaderboard: all datasets")
    assert (
        f"Regenerate: `mmbench leaderboard --runs {runs.as_posix()} --format md --output {out_md.as_posix()}`"
        in text
    )
    res = runner.invoke(app, ["leaderboard", "--runs", str(runs), "--format", "json"])
    data = json.loads(res.stdout)
    assert [r["fusion"] for r in data["groups"][0]["rows"]] == ["good", "close", "bad"]
    res = runner.invoke(
        app, ["leaderboard", "--runs", str(runs), "--format", "csv", "--dataset", "synthetic"]
    )
    header, *lines = res.stdout.strip().splitlines()
    assert header.startswith("dataset,protocol_fingerprint") and len(lines) == 3
    assert "weighted_f1_mean" in header and "f1_neg" in header
    res = runner.invoke(app, ["leaderboard", "--runs", str(runs)])
    # 160 columns hold the table with its headers wrapped: "weighted F1 ↑" may span two lines
    assert res.exit_code == 0 and "weighted" in res.stdout and "vs best" in res.stdout
    res = runner.invoke(app, ["leaderboard", "--runs", str(runs), "--plots"])
    assert res.exit_code == 2 and "--plots" in res.output
    res = runner.invoke(app, ["leaderboard", "--runs", str(tmp_path / "nope")])
    assert res.exit_code == 2


def test_export_runs_regenerates_the_same_table(tmp_path):
    runs = tmp_path / "runs"
    three_by_three(runs)
    board = board_of(runs)
    from mmbench.leaderboard.render import export_runs

    written = export_runs(board, tmp_path / "export")
    assert len(written) == 9
    preds = json.loads(next((tmp_path / "export").glob("*.predictions.json")).read_text())
    assert set(preds) == {"y_true", "y_pred"}
    assert render_markdown(board_of(tmp_path / "export"), "c") == render_markdown(board, "c")


def test_leaderboard_never_imports_torch(tmp_path):
    three_by_three(tmp_path)
    probe = (
        "import sys\nfrom mmbench.cli import main\n"
        f"sys.argv = ['mmbench', 'leaderboard', '--runs', {str(tmp_path)!r}, '--format', 'md']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "assert 'torch' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stderr
    assert "| good" in proc.stdout


def test_same_fusion_with_other_parameters_gets_its_params_tag(tmp_path):
    for seed in (0, 1):
        make_record(tmp_path, "concat", seed, noisy(0.7, seed), params_tag="aaaa1111")
        make_record(tmp_path, "concat", seed, noisy(0.8, seed), params_tag="bbbb2222")
    (group,) = board_of(tmp_path).groups
    assert [r.label for r in group.rows] == ["concat [bbbb2222]", "concat [aaaa1111]"]
    res = CliRunner().invoke(app, ["leaderboard", "--runs", str(tmp_path)])
    assert res.exit_code == 0 and "concat [bbbb2222]" in res.stdout  # not eaten as rich markup


def test_ua_column_and_a_class_without_f1_shown_as_a_dash(tmp_path):
    from sklearn.metrics import balanced_accuracy_score

    for seed in (0, 1):
        pred = noisy(0.8, seed)
        pred[pred == 2] = 0  # class "pos" never predicted: F1 0, still in macro F1 (it has test samples)
        make_record(tmp_path, "good", seed, pred)
    board = board_of(tmp_path)
    (row,) = board.groups[0].rows
    preds = [json.loads(predictions_path(Path(r["_path"])).read_text()) for r in row.records]
    uas = [balanced_accuracy_score(p["y_true"], p["y_pred"]) for p in preds]
    assert row.mean("unweighted_accuracy") == pytest.approx(np.mean(uas))
    md = render_markdown(board)
    assert "UA ↑" in md and "WA (accuracy) ↑" in md
    assert row.per_class["pos"]["mean"] == 0.0
    # A class with neither true nor predicted test samples has no F1: "–", not 0, and not in macro F1.
    from mmbench.leaderboard.build import per_class_f1

    rec = json.loads(json.dumps(row.records[0]))
    cm = np.array(rec["metrics"]["test"]["confusion_matrix"])
    rec["metrics"]["test"]["confusion_matrix"] = np.pad(cm, ((0, 1), (0, 1))).tolist()
    rec["metrics"]["test"]["per_class"]["new"] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    table = per_class_f1([rec], [*CLASSES, "new"])
    assert table["new"]["mean"] is None
    shown = [table[c]["mean"] for c in CLASSES]
    assert np.mean(shown) == pytest.approx(rec["metrics"]["test"]["macro_f1"])
