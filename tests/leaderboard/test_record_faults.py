"""Records are checked on load (issue 19, kind 4): a bad record is skipped with one warning naming
it (``--strict`` stops instead), only regular files are read, ``reproduce`` of a malformed record
exits 2, and data paths are recorded absolutely with the data's content hash."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.registry.manager import build_registry
from mmbench.runner.run import RunRequest, data_identity, run_benchmark

runner = CliRunner()


def _message(result) -> str:
    return " ".join(((result.stdout or "") + (result.stderr or "")).split())


@pytest.fixture(scope="module")
def good_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("good")
    request = RunRequest(
        fusions=["concat"], seeds=[0, 1], overrides=["data.n_samples=300"], out_dir=out, device="cpu"
    )
    request.max_epochs = 1
    run_benchmark(request, build_registry()[0])
    return out


def _forge(folder: Path, source: dict, name: str, edit) -> Path:
    rec = json.loads(json.dumps(source))
    text = edit(rec)
    path = folder / f"{name}.json"
    path.write_text(text if isinstance(text, str) else json.dumps(rec))
    return path


BAD = {
    "nan_metric": lambda r: json.dumps(r).replace(
        f'"weighted_f1": {json.dumps(r["metrics"]["test"]["weighted_f1"])}', '"weighted_f1": NaN', 1
    ),
    "huge_metric": lambda r: r["metrics"]["test"].update(weighted_f1=1e308),
    "inf_metric": lambda r: json.dumps(r).replace(
        f'"accuracy": {json.dumps(r["metrics"]["test"]["accuracy"])}', '"accuracy": 1e400', 1
    ),
    "missing_seed": lambda r: r.pop("seed"),
    "string_seed": lambda r: r.update(seed="zero"),
    "list_protocol": lambda r: r.update(protocol=[1, 2]),
}
WHY = {
    "nan_metric": "metrics.test.weighted_f1: Input should be a finite number, got nan",
    "huge_metric": "metrics.test.weighted_f1: Input should be less than or equal to 1, got 1e+308",
    "inf_metric": "metrics.test.accuracy: Input should be a finite number, got inf",
    "missing_seed": "seed: Field required",
    "string_seed": "seed: Input should be a valid integer, got 'zero'",
    "list_protocol": "protocol: Input should be a valid dictionary, got [1, 2]",
}


@pytest.fixture
def mixed_runs(good_runs, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(good_runs, runs)
    source = json.loads(next(runs.glob("*seed0.json")).read_text())
    for name, edit in BAD.items():
        _forge(runs, source, f"zz_{name}", edit)
    (runs / "notes.json").write_text('{"author": "me"}')  # not a record: no warning
    return runs


def test_bad_records_are_skipped_with_one_warning_each(mixed_runs):
    res = runner.invoke(
        app, ["leaderboard", "--runs", str(mixed_runs), "--format", "json", "--include-budget-cut"]
    )
    assert res.exit_code == 0, _message(res)
    board = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON output"))
    text = json.dumps(board)
    assert "1e+308" not in text and "zz_" not in text
    message = _message(res)
    for name, why in WHY.items():
        assert message.count(f"zz_{name}.json") == 1, name
        assert why in message, name
    assert "notes.json" not in message
    assert message.count("warning: skipped") == len(BAD)


def test_strict_stops_at_the_first_bad_record(mixed_runs):
    res = runner.invoke(app, ["leaderboard", "--runs", str(mixed_runs), "--strict", "--include-budget-cut"])
    assert res.exit_code == 2
    assert "zz_huge_metric.json: not a valid mmbench run record: metrics.test.weighted_f1" in _message(res)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_json_does_not_hang_the_leaderboard(good_runs, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(good_runs, runs)
    os.mkfifo(runs / "zz_pipe.json")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmbench",
            "leaderboard",
            "--runs",
            str(runs),
            "--format",
            "json",
            "--include-budget-cut",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "zz_pipe.json: not a readable mmbench run record (not a regular file)" in " ".join(
        proc.stderr.split()
    )
    assert json.loads(proc.stdout)


@pytest.mark.parametrize("name", ["missing_protocol", "string_seed", "list_protocol", "nan_metric"])
def test_reproduce_of_a_malformed_record_exits_2_naming_it(name, good_runs, tmp_path):
    source = json.loads(next(good_runs.glob("*seed0.json")).read_text())
    edit = BAD.get(name) or (lambda r: r.pop("protocol"))
    path = _forge(tmp_path, source, name, edit)
    res = runner.invoke(app, ["reproduce", str(path)])
    message = _message(res)
    assert res.exit_code == 2, message
    assert f"{path}: not a valid mmbench run record" in message and "Traceback" not in message


def test_data_path_is_absolute_with_the_content_hash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x\n1\n")
    (tmp_path / "d" / "b.csv").write_text("x\n2\n")
    (tmp_path / "d" / ".hidden").write_text("ignored")
    one = data_identity(Path("d/a.csv"))
    assert one == {
        "data_path": str(tmp_path / "d" / "a.csv"),
        "data_sha256": hashlib.sha256(b"x\n1\n").hexdigest(),
    }
    folder = data_identity(Path("d"))
    lines = "".join(
        f"{n} {hashlib.sha256(t).hexdigest()}\n" for n, t in (("a.csv", b"x\n1\n"), ("b.csv", b"x\n2\n"))
    )
    assert folder["data_path"] == str(tmp_path / "d")
    assert folder["data_sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert data_identity(None) == {"data_path": None, "data_sha256": None}
