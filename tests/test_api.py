"""The Python API: the docs/api.md example runs, and the API is what the CLI calls."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mmbench
from mmbench.errors import UsageError

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_docs_api_example_runs(tmp_path, monkeypatch, capsys):
    (block,) = _python_blocks(DOC.read_text())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    result, board = namespace["result"], namespace["board"]
    assert len(result.records) == 4 and not result.failed
    assert {r["fusion"] for r in result.records} == {"concat", "late"}
    assert len(list((tmp_path / "runs").glob("*__seed*.json"))) == 8  # 4 records + 4 predictions
    (group,) = board.groups
    assert sorted(row.fusion for row in group.rows) == ["concat", "late"]
    assert group.protocol_fingerprint == result.protocol_fingerprint
    assert "Leaderboard" in capsys.readouterr().out


def test_import_mmbench_is_light_and_exports_the_api():
    probe = (
        "import sys, mmbench\n"
        "names = ['run', 'sweep', 'tune', 'leaderboard', 'load_records', 'RunRecord']\n"
        "assert all(n in dir(mmbench) for n in names)\n"
        "print(sorted(m for m in ('torch', 'pydantic', 'numpy') if m in sys.modules))\n"
        "mmbench.load_records\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "False"]


def test_api_functions_are_the_api_modules():
    from mmbench import api

    for name in ("run", "sweep", "tune", "load_records"):
        assert getattr(mmbench, name) is getattr(api, name)
    # mmbench.leaderboard is also the subpackage; calling it calls the API function.
    importlib.import_module("mmbench.leaderboard.build")
    with pytest.raises(UsageError, match="--alpha"):
        mmbench.leaderboard(".", alpha=2.0)
    with pytest.raises(AttributeError):
        mmbench.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: mmbench.run("concat", precision="fp8"), "--precision must be"),
        (lambda: mmbench.run("nope"), "unknown fusion 'nope'"),
        (lambda: mmbench.sweep("concat", stale_after_hours=0), "--stale-after must be positive"),
        (lambda: mmbench.tune("concat", trials=2, total=3), "not both"),
        (lambda: mmbench.leaderboard("no-such-folder"), "no such folder"),
        (lambda: mmbench.leaderboard(".", alpha=2.0), "--alpha"),
    ],
)
def test_api_refuses_bad_arguments_before_any_work(call, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=re.escape(fragment)):
        call()
    assert list(tmp_path.iterdir()) == []


def test_cli_commands_call_the_api(monkeypatch, tmp_path):
    """`mmbench run` is a thin layer: it hands its parsed options to ``mmbench.api.run``."""
    from typer.testing import CliRunner

    from mmbench import api
    from mmbench.cli import app

    seen = {}

    def fake_run(fusion, dataset, **kw):
        seen.update(fusion=fusion, dataset=dataset, **kw)
        raise UsageError("stop here")

    monkeypatch.setattr(api, "run", fake_run)
    args = ["run", "-f", "concat,late", "--seeds", "0-2", "--set", "train.lr=5e-4", "--precision", "fp32"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o"), "--compile", "-e", "text=tfidf"])
    assert result.exit_code == 2 and "stop here" in result.output
    assert seen["fusion"] == "concat,late" and seen["seeds"] == [0, 1, 2]
    assert seen["overrides"] == ["train.lr=5e-4"] and seen["encoders"] == {"text": "tfidf"}
    assert seen["precision"] == "fp32" and seen["compile"] is True and seen["out"] == tmp_path / "o"


def test_sweep_and_tune_carry_precision_and_compile_to_the_runs(tmp_path, monkeypatch):
    """--precision/--compile of sweep and tune reach the run request (and so the records)."""
    monkeypatch.chdir(tmp_path)
    small = ["data.n_samples=300"]
    result = mmbench.sweep(
        "concat", "synthetic", seeds=[0], max_epochs=1, overrides=small, device="cpu", precision="fp32"
    )
    (cell,) = result.cells
    record = mmbench.load_records(tmp_path / "runs")[0]
    assert cell.status == "trained"
    assert record["execution"] == {
        "precision": "fp32",
        "effective_precision": "fp32",
        "compile": False,
        "seed_batching": "sequential",
        "seed_batching_fallback": "one seed to train",
    }
    assert (record["protocol"]["numerics"]["precision"], record["protocol"]["numerics"]["compile"]) == (
        "fp32",
        False,
    )
    tuned = mmbench.tune(
        "concat",
        trials=1,
        max_epochs=1,
        overrides=small,
        device="cpu",
        precision="fp32",
        storage=str(tmp_path / "study.db"),
    )
    assert tuned.ran == 1 and tuned.prep.request.precision == "fp32" and tuned.prep.request.compile is False


@pytest.mark.parametrize("function", ["sweep", "tune"])
def test_compile_reaches_the_request(function, monkeypatch):
    import mmbench.runner.sweep as sweep_mod
    import mmbench.tuning.study as study_mod

    seen = []

    def capture(request, *args, **kwargs):
        seen.append(request)
        raise UsageError("captured")

    monkeypatch.setattr(sweep_mod, "run_sweep", capture)
    monkeypatch.setattr(study_mod, "tune", capture)
    with pytest.raises(UsageError, match="captured"):
        getattr(mmbench, function)("concat", compile=True, precision="bf16")
    run = seen[0] if function == "sweep" else seen[0].run
    assert (run.compile, run.precision) == (True, "bf16")
