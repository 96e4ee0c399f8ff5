"""`--context` on the command line: run, list, tune and bench; bad names exit 2 without a traceback."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mmbench.cli import app

runner = CliRunner()
TINY = ["--set", "data.preset=context", "--set", "data.n_samples=300", "--device", "cpu"]


def _message(result) -> str:
    return " ".join(((result.stdout or "") + (result.stderr or "")).split())


def test_list_contexts_shows_the_builtins():
    res = runner.invoke(app, ["list", "contexts", "--format", "json"])
    assert res.exit_code == 0, _message(res)
    names = [e["name"] for e in json.loads(res.stdout)["contexts"]]
    assert names == ["bigru", "dialoguernn", "none", "transformer"]


def test_run_crosses_fusions_and_context_models(tmp_path):
    args = ["run", "--fusion", "concat,late", "--context", "none,bigru", "--seeds", "0", "--max-epochs", "1"]
    res = runner.invoke(app, [*args, *TINY, "--out", str(tmp_path), "--format", "json"])
    assert res.exit_code == 0, _message(res)
    methods = sorted(r["fusion"] for r in json.loads(res.stdout)["results"])
    assert methods == ["concat", "concat + bigru", "late", "late + bigru"]


def test_unknown_context_model_is_a_usage_error(tmp_path):
    res = runner.invoke(app, ["run", "--context", "dialoguern", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "dialoguernn" in _message(res)  # did you mean
    assert "Traceback" not in _message(res)


def test_tune_joins_the_context_search_space(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["tune", "--fusion", "concat", "--context", "bigru", "--trials", "2", "--max-epochs", "1", *TINY]
    res = runner.invoke(app, [*args, "--format", "json", "--no-export", "--sampler-seed", "0"])
    assert res.exit_code == 0, _message(res)
    out = json.loads(res.stdout)
    assert "concat+bigru" in out["study_name"]
    searched = [t for t in out["top"] if t["context_params"] and t["number"] > 0]
    assert searched and {"hidden", "utterance_dim", "cell", "causal"} <= set(searched[0]["context_params"])


def test_bench_reports_samples_per_second_per_context_model():
    args = ["bench", "--fusion", "concat", "--context", "none,dialoguernn", "--epochs", "1", "--repeats", "1"]
    res = runner.invoke(app, [*args, *TINY, "--format", "json"])
    assert res.exit_code == 0, _message(res)
    rows = json.loads(res.stdout)["contexts"]
    assert [r["context"] for r in rows] == ["none", "dialoguernn"]
    assert all(r["trainer_samples_per_second"] > 0 and r["params"] > 0 for r in rows)
    assert rows[0]["dialogues"] is None and rows[1]["dialogues"] > 0
    assert rows[1]["params"] > rows[0]["params"]
