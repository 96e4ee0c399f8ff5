"""Runs with dialogue context models: records, names, errors, the synthetic context preset, sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmbench.errors import UsageError
from mmbench.leaderboard.build import build_leaderboard, load_predictions
from mmbench.leaderboard.render import render_markdown
from mmbench.protocol import params_tag
from mmbench.records import load_records
from mmbench.registry.manager import build_registry
from mmbench.runner.run import RunRequest, run_benchmark
from mmbench.runner.sweep import SweepRequest, run_sweep

REGISTRY, _ = build_registry()
CONTEXT = ["data.preset=context", "data.n_samples=400", "train.max_epochs=2"]


def run(tmp_path, **kw):
    kw.setdefault("seeds", [0])
    kw.setdefault("save_checkpoints", False)
    req = RunRequest(out_dir=tmp_path / "runs", device="cpu", **kw)
    return run_benchmark(req, REGISTRY)


def test_utterance_level_records_are_unchanged_by_context_none(tmp_path):
    """Data without dialogues, context none: no `context` entry, the params tag and file name of a run
    made before context models existed."""
    prep, (rec,) = run(tmp_path, fusions=["concat"], max_epochs=1, overrides=["data.n_samples=300"])
    assert "context" not in rec
    old_tag = params_tag(
        {"fusion": rec["fusion_params"], "encoders": {m: e["identity"] for m, e in prep.encoders.items()}}
    )
    assert rec["params_tag"] == old_tag
    assert "+" not in rec["_path"].split("__")[1]


def test_context_record_names_the_method_and_its_parameters(tmp_path):
    _, (none, ctx) = run(
        tmp_path,
        fusions=["concat"],
        contexts=["none", "dialoguernn"],
        overrides=[*CONTEXT, "context.causal=true", "context.hidden=16"],
    )
    assert none["context"] == {"name": "none", "params": {}, "causal": False}  # data with dialogues
    assert ctx["context"]["name"] == "dialoguernn" and ctx["context"]["causal"] is True
    assert ctx["context"]["params"]["hidden"] == 16
    assert ctx["fusion"] == "concat" and "__concat+dialoguernn__" in ctx["_path"]
    assert ctx["params_tag"] != none["params_tag"]
    assert ctx["protocol_fingerprint"] == none["protocol_fingerprint"]  # same table, other rows
    pred = load_predictions(ctx)
    assert len(pred.y_pred) == ctx["n_test"]  # metrics per utterance, in the split's order


def test_context_model_on_data_without_dialogues_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no dialogue ids"):
        run(tmp_path, fusions=["concat"], contexts=["bigru"], overrides=["data.n_samples=300"])


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["context.no_such=1"], "no requested context model"),
        (["context.hidden=-3"], "context.hidden"),
        (["train.imbalance=oversample"], "oversample"),
    ],
)
def test_bad_context_settings_fail_before_training(tmp_path, overrides, fragment):
    with pytest.raises(UsageError, match=fragment):
        run(tmp_path, fusions=["concat"], contexts=["bigru"], overrides=[*CONTEXT, *overrides])


@pytest.mark.slow
def test_synthetic_context_preset_needs_a_context_model(tmp_path):
    """On context-dependent test utterances `none` stays near chance (4 balanced classes) and every
    built-in context model is at least 0.25 above it."""
    prep, records = run(
        tmp_path,
        fusions=["concat"],
        contexts=["none", "bigru", "transformer", "dialoguernn"],
        overrides=["data.preset=context", "data.n_samples=1200", "train.max_epochs=8", "train.batch_size=32"],
    )
    dependent = prep.data.meta["context_dependent"][prep.data.splits["test"]]
    assert 40 < dependent.sum() < len(dependent) - 40
    acc = {}
    for rec in records:
        pred = load_predictions(rec)
        acc[rec["context"]["name"]] = float((pred.y_true == pred.y_pred)[dependent].mean())
    assert acc["none"] < 0.40, acc
    for name in ("bigru", "transformer", "dialoguernn"):
        assert acc[name] >= acc["none"] + 0.25, acc


def test_fusion_by_context_sweep_gives_one_board_with_a_row_per_combination(tmp_path):
    out = tmp_path / "sweep"
    request = SweepRequest(
        datasets=["synthetic"],
        fusions=["concat", "late"],
        contexts=["none", "bigru", "transformer"],
        seeds=[0, 1, 2],
        overrides=["data.preset=context", "data.n_samples=200", "train.max_epochs=1", "context.hidden=8"],
        device="cpu",
        out_dir=out,
        save_checkpoints=False,
    )
    result = run_sweep(request, REGISTRY)
    assert result.grid_size == 18 and result.count("trained") == 18
    board = build_leaderboard(load_records(out), out)
    (group,) = board.groups
    labels = sorted(row.label for row in group.rows)
    assert labels == sorted(f"{f}{c}" for f in ("concat", "late") for c in ("", " + bigru", " + transformer"))
    assert all(len(row.records) == 3 for row in group.rows)
    text = render_markdown(board)
    assert "rows without `+` use no dialogue context" in text
    again = run_sweep(request, REGISTRY)  # resumable: every cell of the crossed grid is found
    assert again.count("existing") == 18


def test_footer_says_plainly_when_no_row_uses_dialogue_context(tmp_path):
    run(tmp_path, fusions=["concat", "late"], overrides=CONTEXT)
    board = build_leaderboard(load_records(tmp_path / "runs"), tmp_path / "runs", include_budget_cut=True)
    text = render_markdown(board)
    assert "uses no dialogue context" in text
    # data without dialogues (the published boards): no context line at all
    run(tmp_path / "plain", fusions=["concat"], overrides=["data.n_samples=300", "train.max_epochs=1"])
    plain = build_leaderboard(load_records(tmp_path / "plain" / "runs"), tmp_path / "plain" / "runs")
    assert "dialogue context" not in render_markdown(plain).lower()


def test_causal_runs_are_their_own_labelled_rows(tmp_path):
    run(tmp_path, fusions=["concat"], contexts=["bigru"], overrides=CONTEXT)
    run(tmp_path, fusions=["concat"], contexts=["bigru"], overrides=[*CONTEXT, "context.causal=true"])
    board = build_leaderboard(load_records(tmp_path / "runs"), tmp_path / "runs", include_budget_cut=True)
    labels = sorted(row.label.replace(" †", "") for row in board.groups[0].rows)
    assert labels == ["concat + bigru", "concat + bigru (causal)"]
    assert "causal (past utterances only): bigru" in render_markdown(board)


def test_robustness_removes_modalities_per_utterance_inside_dialogues(tmp_path):
    from mmbench.robustness.runs import analyse_records

    _, (rec,) = run(
        tmp_path, fusions=["concat"], contexts=["bigru"], overrides=CONTEXT, save_checkpoints=True
    )
    (done,) = analyse_records([rec], REGISTRY, levels=(0.0, 1.0))
    result = done["robustness"]
    assert result["clean"] == pytest.approx(rec["metrics"]["test"]["weighted_f1"], abs=1e-9)
    assert {"text", "audio", "visual"} <= set(json.dumps(result["missing"]).replace('"', " ").split())
    on_disk = json.loads(Path(rec["_path"]).read_text())
    assert on_disk["robustness"]["missing"] == result["missing"]
    assert np.isfinite(list(_numbers(result["missing"]))).all()


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def test_reproduce_rebuilds_the_context_model(tmp_path):
    from mmbench.runner.reproduce import reproduce

    _, (rec,) = run(
        tmp_path, fusions=["concat"], contexts=["transformer"], overrides=[*CONTEXT, "context.heads=2"]
    )
    result = reproduce(Path(rec["_path"]), REGISTRY, device="cpu")
    assert result["match"], result["metrics"]
