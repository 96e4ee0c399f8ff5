"""`mmbench tune` end to end: export, --show, --params tuned, bad input, shared journals, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.tuning.storage import DEFAULT_ATTR, INTERRUPTED, open_storage

TINY = ["--set", "data.n_samples=300", "--device", "cpu"]
runner = CliRunner()


def _message(result) -> str:
    return " ".join(((result.stdout or "") + (result.stderr or "")).split())


def test_tune_show_and_run_with_tuned_params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["tune", "--fusion", "concat", "--trials", "3", "--max-epochs", "2", *TINY]
    res = runner.invoke(app, [*args, "--format", "json", "--plots", "plots", "--sampler-seed", "1"])
    assert res.exit_code == 0, _message(res)
    out = json.loads(res.stdout)
    assert out["n_trials"] == 3 and out["trials_this_run"] == 3 and out["split"] == "dev"
    assert out["default"]["number"] == 0 and out["comparison"]["text"]
    exported = tmp_path / "configs" / "tuned" / "synthetic" / "concat.yaml"
    assert out["exported"] == "configs/tuned/synthetic/concat.yaml" and exported.is_file()
    doc = yaml.safe_load(exported.read_text())
    # The study name: dataset, fusion, protocol fingerprint and the study key (encoders, data options,
    # dataset fingerprint, which the protocol fingerprint leaves out).
    assert (
        doc["study_name"]
        == out["study_name"]
        == f"synthetic-concat-{out['protocol_fingerprint']}-{doc['study_key']}"
    )
    assert doc["seed"] == 1000 and doc["encoders"] == {
        m: {"name": "precomputed"} for m in ("audio", "text", "visual")
    }
    assert doc["storage"] == "runs/tuning/mmbench-tuning.db" and (tmp_path / doc["storage"]).is_file()
    assert doc["n_trials"] == 3 and sum(doc["trials"].values()) == 3
    assert doc["protocol_fingerprint"] == out["protocol_fingerprint"]
    assert doc["params"] == out["best"]["fusion_params"] and set(doc["train"]) == {
        "lr",
        "weight_decay",
        "batch_size",
    }
    assert [p.endswith(".png") for p in out["plots"]] == [True] * len(out["plots"]) and out["plots"]
    assert all((tmp_path / p).stat().st_size > 1000 for p in out["plots"])

    shown = runner.invoke(app, ["tune", "--fusion", "concat", "--show", "--format", "json"])
    assert shown.exit_code == 0, _message(shown)
    again = json.loads(shown.stdout)
    assert again["n_trials"] == 3 and again["best"] == out["best"] and again["trials_this_run"] is None
    table = runner.invoke(app, ["tune", "--fusion", "concat", "--show"])
    assert "best parameters" in table.stdout and "default parameters" in table.stdout

    run = ["run", "--fusion", "concat", "--params", "tuned", "--seeds", "0", "--max-epochs", "2", *TINY]
    ran = runner.invoke(app, [*run, "--format", "json"])
    assert ran.exit_code == 0, _message(ran)
    result = json.loads(ran.stdout)
    assert result["protocol_fingerprint"] == out["protocol_fingerprint"]
    record = json.loads(open(result["results"][0]["records"][0]).read())  # noqa: SIM115
    assert record["tuning"]["n_trials"] == 3 and record["tuning"]["study_name"] == out["study_name"]
    assert record["fusion_params"] == doc["params"] and record["train_overrides"] == doc["train"]
    # The retrain's seed 0 is not the trials' seed: it does not repeat the best trial.
    assert record["seed"] == 0 and record["tuning"]["seed"] == 1000
    refused = runner.invoke(app, [*run[:6], "1000", *run[7:]])
    assert refused.exit_code == 2 and "seed 1000 is the training seed of every trial" in _message(refused)

    # One more trial, as a table: the retrain hint keeps --max-epochs, unset parameters get no row,
    # and 4 finished trials are too few for an importance plot (said on stderr).
    more = runner.invoke(
        app, [*args[:3], "--trials", "1", *args[5:], "--plots", "plots2"], env={"COLUMNS": "200"}
    )
    assert more.exit_code == 0, _message(more)
    hint = " ".join(more.stdout.split())
    assert (
        "retrain on every protocol seed with: mmbench run --fusion concat --dataset synthetic --max-epochs 2"
        in hint
    )
    assert not re.search(r"\w+\s+None\s+None", more.stdout)
    assert "no parameter-importance plot: 4 completed trial(s)" in " ".join(more.stderr.split())
    assert sorted(p.name for p in (tmp_path / "plots2").glob("*.png")) == [
        f"{out['study_name']}-optimization_history.png"
    ]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--trials", "0"], "--trials must be at least 1"),
        (["--trials", "2", "--total", "4"], "not both"),
        (["--pruner", "asha"], "--pruner must be one of"),
        (["--storage", "study.txt"], "journal file"),
        (["--space", "missing.yaml"], "no such file"),
        (["--fusion", "concatt"], "Did you mean 'concat'"),
        (["--set", "fusion.nothing=1"], "fusion.nothing"),
        (["--show", "--storage", "none.log"], "no tuning storage"),
        (["--export", "x.yaml", "--no-export"], "contradict"),
    ],
)
def test_bad_tune_input_exits_2(tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    base = ["tune", "--fusion", "concat", "--max-epochs", "1", *TINY]
    res = runner.invoke(app, [*base, *args])
    message = _message(res)
    assert res.exit_code == 2, message
    assert fragment in message and "Traceback" not in message
    assert list(tmp_path.iterdir()) == [], "nothing may be written on bad input"


def test_space_naming_an_unknown_parameter_exits_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text("hiden: [64]\n")
    res = runner.invoke(app, ["tune", "--fusion", "concat", "--space", "space.yaml", *TINY])
    assert res.exit_code == 2 and "has no parameter 'hiden'" in _message(res)
    assert not (tmp_path / "runs").exists()


def test_tune_help_does_not_import_torch():
    probe = (
        "import sys\nfrom mmbench.cli import main\nsys.argv = ['mmbench', 'tune', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'optuna', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "--trials" in proc.stdout
    assert [line for line in proc.stderr.splitlines() if line.startswith("HEAVY=")] == ["HEAVY="], proc.stderr


def _tune_cmd(storage, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mmbench",
        "tune",
        "--fusion",
        "concat",
        "--storage",
        str(storage),
        *TINY,
        *extra,
    ]


def _study(storage):
    store = open_storage(storage)
    (name,) = optuna.get_all_study_names(store)
    return optuna.load_study(study_name=name, storage=store)


@pytest.mark.slow
def test_two_processes_share_one_journal(tmp_path):
    journal = tmp_path / "study.log"
    cmd = _tune_cmd(journal, "--trials", "5", "--max-epochs", "1", "--no-export", "--format", "json")
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in "ab"
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-500:] for _, e in outs]
    assert sorted(json.loads(o)["trials_this_run"] for o, _ in outs) == [5, 5]
    study = _study(journal)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 10 and sorted(t.number for t in trials) == list(range(10))
    assert all(t.state.is_finished() for t in trials)
    assert sum(bool(t.user_attrs.get(DEFAULT_ATTR)) for t in trials) == 1
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2  # both processes ran trials of the one study


@pytest.mark.slow
def test_ctrl_c_keeps_the_study_consistent_and_rerun_resumes(tmp_path):
    journal = tmp_path / "study.log"
    cmd = _tune_cmd(journal, "--trials", "500", "--max-epochs", "4", "--no-export")
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline:  # wait until the study has two finished trials
        time.sleep(0.5)
        if not (journal.exists() and optuna.get_all_study_names(open_storage(journal))):
            continue
        if sum(t.state.is_finished() for t in _study(journal).get_trials(deepcopy=False)) >= 2:
            break
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-1000:]
    assert "run the same command again to resume" in " ".join(err.split())
    trials = _study(journal).get_trials(deepcopy=False)
    assert all(t.state.is_finished() for t in trials), [t.state for t in trials]
    assert all(t.user_attrs.get("fail_reason") == INTERRUPTED for t in trials if t.state.name == "FAIL")
    before = len(trials)

    rerun = subprocess.run(
        _tune_cmd(journal, "--trials", "2", "--max-epochs", "4", "--no-export"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr[-1000:]
    assert "resuming study" in rerun.stderr
    study = _study(journal)
    assert len(study.get_trials(deepcopy=False)) == before + 2
    assert all(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def test_journal_cut_mid_record_is_repaired_with_one_warning(tmp_path, monkeypatch):
    """A journal whose last record was cut off mid-line (a killed worker): the damaged tail is
    dropped with one warning naming the file, finished trials stay reachable and tuning goes on
    (issue 19, kind 7)."""
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "study.log"
    args = [
        "tune",
        "--fusion",
        "concat",
        "--storage",
        str(journal),
        "--max-epochs",
        "1",
        "--no-export",
        *TINY,
    ]
    first = runner.invoke(app, [*args, "--trials", "2", "--format", "json"])
    assert first.exit_code == 0, _message(first)
    raw = journal.read_bytes()
    journal.write_bytes(raw[:-7])  # the last record loses its end (and its newline)
    more = runner.invoke(app, [*args, "--trials", "1", "--format", "json"])
    assert more.exit_code == 0, _message(more)
    assert f"warning: {journal}: repaired the tuning journal: 1 damaged record(s) removed" in _message(more)
    shown = runner.invoke(app, ["tune", "--fusion", "concat", "--storage", str(journal), "--show", *TINY])
    assert shown.exit_code == 0, _message(shown)
    assert "repaired" not in _message(shown), "a repaired journal is not repaired again"
    trials = _study(journal).get_trials(deepcopy=False)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) >= 2
    assert len(trials) == 3


def test_journal_record_appended_onto_a_damaged_line_is_recovered(tmp_path):
    from mmbench.tuning.storage import repair_journal

    good = [b'{"op_code":0,"worker_id":"a","study_name":"s","directions":[1]}\n', b'{"op_code":4,"x":1}\n']
    damaged = good[0] + b'{"op_code":5,"worker_id":"a","tri' + good[1] + b'{"op_code":6,"va'
    journal = tmp_path / "j.log"
    journal.write_bytes(damaged)
    assert repair_journal(journal) == 1
    assert journal.read_bytes() == b"".join(good)
    assert repair_journal(journal) == 0
