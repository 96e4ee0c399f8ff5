"""``mmbench list [KIND] [PATTERN]``: shell-style wildcards over registered names."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mmbench.cli import app


def _json(*args: str) -> dict:
    res = CliRunner().invoke(app, ["list", *args, "--format", "json"])
    assert res.exit_code == 0, res.output
    return {k: [e["name"] for e in v] for k, v in json.loads(res.stdout).items() if k != "problems"}


def test_a_pattern_alone_searches_every_kind():
    assert _json("synth*") == {"datasets": ["synthetic"]}
    matched = _json("*feat*")
    assert matched["datasets"] == ["mfeat"] and "fusions" not in matched  # kinds without a match left out


def test_a_kind_then_a_pattern():
    assert _json("fusions", "*attention*") == {"fusions": ["cross_attention"]}
    assert _json("fusion", "c*") == {"fusions": ["concat", "cross_attention"]}  # singular accepted
    assert _json("plugins", "builtin-f*") == {"plugins": ["builtin-fusions"]}
    assert _json("trackers") == {"trackers": ["mlflow", "tensorboard", "wandb"]}


def test_no_match_says_so_and_a_bad_kind_with_a_pattern_is_a_usage_error():
    res = CliRunner().invoke(app, ["list", "zzz*"])
    assert res.exit_code == 0 and "nothing registered matches 'zzz*'" in res.stderr
    for args in (["fusoins", "c*"], ["fusoins"]):  # a misspelt kind is not taken for a pattern
        bad = CliRunner().invoke(app, ["list", *args])
        assert bad.exit_code == 2 and "is not something to list" in " ".join(bad.output.split())
    assert _json("concat") == {"fusions": ["concat"]}  # a registered name is a pattern of itself
