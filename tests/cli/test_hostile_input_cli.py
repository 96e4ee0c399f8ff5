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

NUMBERS = [  # kind 2: finite, ranged numbers; seeds within the generators' range
    (["--set", "train.lr=.nan"], "train.lr must be a finite number in (0, 10], got nan"),
    (["--set", "train.lr=1e400"], "train.lr must be a finite number in (0, 10], got inf"),
    (["--set", "train.lr=0"], "train.lr must be a finite number in (0, 10]"),
    (["--set", "train.weight_decay=-.inf"], "train.weight_decay must be a finite number"),
    (["--set", "train.grad_clip=.nan"], "train.grad_clip must be a finite number"),
    (["--set", "train.focal_gamma=true"], "train.focal_gamma must be a finite number"),
    (["--set", "train.scheduler_factor=2"], "train.scheduler_factor must be a finite number in (0, 1]"),
    (["--set", "train.scheduler_patience=-1"], "train.scheduler_patience must be an integer in [0, 1000000]"),
    (["--set", "train.batch_size=1e12"], "train.batch_size must be a positive integer"),
    (["--set", "train.max_epochs=100000000"], "train.max_epochs must be a positive integer (at most"),
    (["--seeds", "4294967296"], "--seeds 4294967296: seeds must lie in [0, 4294967295]"),
    (["--seeds", "0-4294967295"], "name at most 10000 seeds"),
    (["--seeds", "5-1"], "a range must increase"),
    (["--set", "seeds=[0, 0]"], "distinct integers in [0, 4294967295], got [0, 0]"),
    (["--set", "seeds=[-1]"], "seeds must be a non-empty list of distinct integers in [0, 4294967295]"),
    (["--set", "seeds=[4294967296]"], "seeds must be a non-empty list of distinct integers"),
]

CASES = [([*RUN, *args], fragment) for args, fragment in FUSION_PARAMS + NUMBERS]

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


def test_repeated_seeds_and_fusions_run_once_with_a_warning(tmp_path):
    """``--seeds 0,0 --fusion concat,concat``: one run, reported as n = 1, and one warning each."""
    import json

    out = tmp_path / "out"
    args = ["run", "--fusion", "concat,concat", "--seeds", "0,0", "--max-epochs", "1", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--set", "data.n_samples=300", "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, _message(result)
    assert "warning: --seeds names 0 more than once" in _message(result)
    assert "warning: --fusion names concat more than once" in _message(result)
    assert len(list(out.glob("*seed0.json"))) == 1
    summary = json.loads(result.stdout[result.stdout.index("{") :])["results"]
    assert [(r["fusion"], r["n_seeds"], r["seeds"]) for r in summary] == [("concat", 1, [0])]


def _read_only_folder(tmp_path):
    """A folder nobody may write into: chmod 555 (not for root, who writes anyway), else /sys."""
    import os
    from pathlib import Path

    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if Path("/sys").is_dir() and not os.access("/sys", os.W_OK):
        return Path("/sys")
    probe = Path("/sys/.mmbench-probe")
    try:
        probe.write_text("")
    except OSError:
        return Path("/sys")  # root, but /sys is read-only: what the check must find
    probe.unlink()
    pytest.skip("running as root with no read-only folder available")


OUTPUT_PATHS = [  # kind 3: output paths checked before any data is loaded or trained
    ("run", "--out", "file", "exists and is not a folder"),
    ("run", "--out", "dangling", "a symbolic link to"),
    ("run", "--out", "under_file", "lies under"),
    ("run", "--out", "read_only", "cannot write into"),
    ("sweep", "--out", "file", "exists and is not a folder"),
    ("sweep", "--out", "under_file", "lies under"),
    ("leaderboard", "--output", "folder", "is a folder; give a file name"),
    ("leaderboard", "--output", "read_only", "cannot write into"),
    ("leaderboard", "--output", "under_file", "lies under"),
    ("inspect", "--output", "file", "exists and is not a folder"),
    ("extract", "--output", "under_file", "lies under"),
]


@pytest.mark.parametrize(("command", "option", "kind", "fragment"), OUTPUT_PATHS)
def test_output_path_is_checked_up_front(command, option, kind, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "runs").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "gone")
    (tmp_path / "manifest.csv").write_text("File Name,Utterance,Emotion\nclip1,hello,happy\n")
    target = {
        "file": tmp_path / "afile",
        "dangling": tmp_path / "dangling",
        "under_file": tmp_path / "afile" / "sub" / ("board.md" if command == "leaderboard" else "out"),
        "folder": tmp_path / "runs",
        "read_only": (
            lambda: _read_only_folder(tmp_path) / ("board.md" if command == "leaderboard" else "out")
        )(),
    }[kind]
    args = {
        "run": ["run", "--set", "data.n_samples=300", "--max-epochs", "1", "--device", "cpu"],
        "sweep": ["sweep", "--set", "data.n_samples=300", "--max-epochs", "1", "--device", "cpu"],
        "leaderboard": ["leaderboard", "--runs", "runs"],
        "inspect": ["inspect", "--set", "data.n_samples=300"],
        "extract": ["extract", "--manifest", "manifest.csv", "--encoder", "audio=mfcc"],
    }[command]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, [*args, option, str(target)])
    message = _message(result)
    assert result.exit_code == 2, message
    assert f"{option} {target}" in message and fragment in message
    assert "loaded" not in message, "the path must be checked before the data is loaded"
    assert "Traceback" not in message and "internal error" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("where", ["--protocol", "--set"])
def test_yaml_alias_bomb_exits_2(where, tmp_path, monkeypatch):
    """kind 6: "billion laughs" (582 bytes) as --protocol or inside --set: refused before expanding."""
    from tests.formats.bombs import billion_laughs_yaml

    monkeypatch.chdir(tmp_path)
    if where == "--protocol":
        (tmp_path / "laughs.yaml").write_text(billion_laughs_yaml())
        extra = ["--protocol", "laughs.yaml"]
    else:
        extra = ["--set", "data.note=" + billion_laughs_yaml(flow=True)]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, [*RUN, *extra])
    message = _message(result)
    assert result.exit_code == 2, message
    assert "refused: expands to 490,329,064 values through YAML aliases" in message
    assert ("laughs.yaml" in message) if where == "--protocol" else ("--set data.note" in message)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
