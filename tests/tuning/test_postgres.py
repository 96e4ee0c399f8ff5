"""Tuning against a real PostgreSQL server: two concurrent workers on one study, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from mmbench.tuning.storage import DEFAULT_ATTR, open_storage

pytestmark = pytest.mark.distributed

STUDY_TWO = f"pg-two-workers-{uuid.uuid4().hex[:8]}"  # a server given by URL may be reused
TINY = ["--fusion", "concat", "--set", "data.n_samples=240", "--no-export", "--format", "json"]


def _tune(url: str, study: str, *extra: str, cwd) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mmbench", "tune", *TINY, "--storage", url, "--study-name", study]
    cmd += ["--device", "cpu", "--executor", "process", "--workers", "2", "--threads", "1", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _trials(url: str, study: str) -> list:
    import optuna

    return optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(deepcopy=False)


def test_two_workers_on_one_study(postgres_url, tmp_path):
    proc = _tune(postgres_url, STUDY_TWO, "--total", "6", "--max-epochs", "2", cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    trials = _trials(postgres_url, STUDY_TWO)
    assert len(trials) >= 6 and all(t.state.is_finished() for t in trials)
    assert summary["counts"]["running"] == 0 and summary["n_trials"] == len(trials)
    # Both workers contributed, and exactly one trial evaluated the default parameters.
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, workers
    assert sum(bool(t.user_attrs.get(DEFAULT_ATTR)) for t in trials) == 1
    assert "tuning worker 0" in err and "tuning worker 1" in err


def test_resume_after_kill(postgres_url, tmp_path):
    study = f"pg-resume-{uuid.uuid4().hex[:8]}"
    args = ["--total", "6", "--max-epochs", "5", "--set", "train.patience=100"]
    proc = _tune(postgres_url, study, *args, cwd=tmp_path)
    try:
        deadline = time.time() + 240
        running = []
        while time.time() < deadline:
            try:
                trials = _trials(postgres_url, study)
            except KeyError:  # not created yet
                trials = []
            running = [t for t in trials if t.state.name == "RUNNING"]
            if sum(t.state.is_finished() for t in trials) >= 1 and running:
                break
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.2)
        assert running, "no trial was running to be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and both workers, mid-trial
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    left = [t for t in _trials(postgres_url, study) if t.state.name == "RUNNING"]
    assert left, "the kill left no trial behind; the test proves nothing"

    again = _tune(postgres_url, study, *args, cwd=tmp_path)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    trials = _trials(postgres_url, study)
    assert all(t.state.is_finished() for t in trials), [t.state for t in trials]
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    killed = [t for t in trials if t.number in {k.number for k in left}]
    assert all(t.state.name == "FAIL" and "died" in t.user_attrs["fail_reason"] for t in killed)
    assert len(finished) + len(killed) >= 6
    assert sum(bool(t.user_attrs.get(DEFAULT_ATTR)) for t in trials) == 1
    summary = json.loads(out)
    assert summary["counts"]["running"] == 0 and summary["trials_this_run"] >= 1  # resumed, not only tidied
