"""Hostile input found in the second reliability round (issue 19), end to end through the CLI.

Each case: exit code 2, one message with the expected fragment (the option, key or file), no
traceback, and nothing written into the working folder. Grouped by the issue's kinds; counted in
docs/RELIABILITY.md.
"""

import pytest
from typer.testing import CliRunner

from mmbench.cli import app

RUN = ["run", "--set", "data.n_samples=300", "--max-epochs", "1", "--device", "cpu", "--out", "out"]

FUSION_PARAMS = [  # kind 1: typed, ranged fusion parameters, checked before any training
    (
        ["--fusion", "concat", "--set", "fusion.dropout=1.5"],
        "fusion.dropout=1.5: Input should be less than 1",
    ),
    (["--fusion", "concat", "--set", "fusion.dropout=1.5"], "(allowed: float >= 0.0 and < 1.0)"),
    (
        ["--fusion", "concat", "--set", "fusion.hidden=big"],
        "fusion.hidden='big': Input should be a valid integer",
    ),
    (
        ["--fusion", "concat", "--set", "fusion.hidden=0"],
        "fusion.hidden=0: Input should be greater than or equal to 1",
    ),
    (["--fusion", "concat", "--set", "fusion.hidden=true"], "fusion.hidden=True"),
    (["--fusion", "concat", "--set", "fusion.dropout=.nan"], "fusion.dropout=nan"),
    (["--fusion", "concat", "--set", "fusion.modalities=text"], "fusion.modalities='text'"),
    (["--fusion", "late", "--set", "fusion.combine=max"], "fusion.combine='max'"),
    (["--fusion", "late", "--set", "fusion.combine=max"], "allowed: 'mean' or 'learned'"),
    (["--fusion", "gated", "--set", "fusion.gate=relu"], "allowed: 'softmax' or 'sigmoid'"),
    (["--fusion", "unimodal", "--set", "fusion.hidden=-4"], "fusion.hidden=-4"),
    (["--fusion", "low_rank", "--set", "fusion.rank=0"], "fusion.rank=0"),
    (["--fusion", "tensor", "--set", "fusion.proj_dim=wide"], "allowed: int >= 1 and <= 4096 or 'auto'"),
    (
        ["--fusion", "mult", "--set", "fusion.heads=3"],
        "fusion.d_model=32 must be divisible by fusion.heads=3",
    ),
    (
        ["--fusion", "mult", "--set", "fusion.conv_kernel=2"],
        "fusion.conv_kernel must be a positive odd integer",
    ),
    (["--fusion", "mult", "--set", "fusion.embed_scale=-1"], "fusion.embed_scale=-1"),
    (["--fusion", "cross_attention", "--set", "fusion.locality=1e9"], "allowed: float >= 0.0 and <= 10000.0"),
    (["--fusion", "cross_attention", "--set", "fusion.heads=7"], "must be divisible by fusion.heads=7"),
    # a bad value for the second fusion of a grid stops the command before the first one trains
    (["--fusion", "concat,late", "--set", "fusion.combine=max"], "late: fusion.combine='max'"),
]

CASES = [([*RUN, *args], fragment) for args, fragment in FUSION_PARAMS]

runner = CliRunner()


def _message(result) -> str:
    return " ".join(((result.stdout or "") + (getattr(result, "stderr", "") or "")).split())


@pytest.mark.parametrize(("args", "fragment"), CASES, ids=[" ".join(c[0][len(RUN) :])[:70] for c in CASES])
def test_hostile_input_exits_2_naming_it(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, args)
    message = _message(result)
    assert result.exit_code == 2, message
    assert fragment in message
    assert "Traceback" not in message and "internal error" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing may be written on bad input"

