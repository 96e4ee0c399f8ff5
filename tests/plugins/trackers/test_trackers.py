"""Trackers (``--track NAME``) on the lifecycle hooks, tested offline: TensorBoard event files read
back, an MLflow run in a local file store, a W&B offline run; a tracker's error is only a warning."""

from __future__ import annotations

import pytest

from mmbench.errors import UsageError
from mmbench.registry import hookimpl
from mmbench.registry.manager import build_registry, get_plugin_manager, set_registry
from mmbench.runner.run import RunRequest, run_benchmark
from mmbench.runner.tracking import Tracker, tracking

SMALL = ["data.n_samples=300", "train.patience=10"]


class Logs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

    def run_started(self, label, max_epochs):
        pass

    def epoch_ended(self, epoch, logs):
        pass

    def run_ended(self, label, record):
        pass


def _run(tmp_path, trackers, fusions=("concat",), seeds=(0,), reporter=None):
    req = RunRequest(
        fusions=list(fusions),
        seeds=list(seeds),
        overrides=SMALL,
        max_epochs=3,
        out_dir=tmp_path,
        device="cpu",
        trackers=list(trackers),
        save_checkpoints=False,
    )
    return run_benchmark(req, build_registry()[0], reporter)[1]


def test_tensorboard_event_files_hold_the_runs_metrics(tmp_path):
    pytest.importorskip(
        "tensorboard", reason="tensorboard not installed (pip install 'mmbench[tensorboard]')"
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (record,) = _run(tmp_path, ["tensorboard"])
    (folder,) = (tmp_path / "tensorboard").iterdir()
    assert folder.name == f"synthetic_mixed-concat-seed0-{record['protocol_fingerprint'][:8]}"
    events = EventAccumulator(str(folder))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "dev/loss", "dev/weighted_f1", "lr", "test/weighted_f1"} <= set(scalars)
    losses = [(e.step, e.value) for e in events.Scalars("train/loss")]
    expected = [(h["epoch"], h["train_loss"]) for h in record["history"]]
    assert [s for s, _ in losses] == [s for s, _ in expected]
    assert [v for _, v in losses] == pytest.approx([v for _, v in expected], rel=1e-6)
    (final,) = events.Scalars("test/weighted_f1")
    assert final.value == pytest.approx(record["metrics"]["test"]["weighted_f1"], rel=1e-6)
    assert final.step == record["best_epoch"]


def test_mlflow_run_with_params_and_metrics_in_a_local_file_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'mmbench[mlflow]')")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    records = _run(tmp_path, ["mlflow"], seeds=(0, 1))
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("mmbench-synthetic")
    runs = client.search_runs([experiment.experiment_id], order_by=["params.seed ASC"])
    assert [r.data.params["seed"] for r in runs] == ["0", "1"]
    for run, record in zip(runs, records, strict=True):
        assert run.info.status == "FINISHED"
        assert run.data.params["fusion"] == "concat"
        assert run.data.params["protocol_fingerprint"] == record["protocol_fingerprint"]
        assert run.data.params["protocol.train.batch_size"] == str(record["protocol"]["train"]["batch_size"])
        assert run.data.metrics["test_weighted_f1"] == pytest.approx(record["metrics"]["test"]["weighted_f1"])
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert [m.step for m in history] == [h["epoch"] for h in record["history"]]


def test_wandb_offline_run_is_written_under_out(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb not installed (pip install 'mmbench[wandb]')")
    for var in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    (record,) = _run(tmp_path, ["wandb"])
    assert record["status"] == "ok"
    offline = list((tmp_path / "wandb").rglob("offline-run-*"))
    assert offline, "no offline run folder"
    assert list(offline[0].glob("*.wandb"))


class Broken(Tracker):
    calls = 0

    def epoch(self, run, epoch, logs):
        Broken.calls += 1
        raise ConnectionError("server unreachable")


class _BrokenPlugin:
    @hookimpl
    def mmbench_register_trackers(self, registry):
        registry.add_tracker("broken", "tests.plugins.trackers.test_trackers:Broken", "raises")


def test_a_tracker_error_is_a_warning_not_a_failed_run(tmp_path):
    reg, pm = build_registry([("broken-tracker", _BrokenPlugin())])
    set_registry(reg, pm)
    try:
        logs = Logs()
        req = RunRequest(
            fusions=["concat", "late"],
            seeds=[0],
            overrides=SMALL,
            max_epochs=3,
            out_dir=tmp_path,
            device="cpu",
            trackers=["broken"],
            save_checkpoints=False,
        )
        Broken.calls = 0
        _, records = run_benchmark(req, reg, logs)
    finally:
        set_registry(*build_registry())
    assert [r["status"] for r in records] == ["ok", "ok"]
    warnings = [line for line in logs.lines if "tracker 'broken' failed" in line]
    assert len(warnings) == 2 and "server unreachable" in warnings[0]  # once per run, then it sits out
    assert Broken.calls == 2
    assert not [p for p in get_plugin_manager().get_plugins() if isinstance(p, Tracker)]  # unregistered


def test_unknown_or_uninstalled_tracker_is_refused_before_any_run(tmp_path, monkeypatch):
    reg = build_registry()[0]
    with pytest.raises(Exception, match="tensorbord"), tracking(["tensorbord"], reg, tmp_path):
        pass
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb" or name.startswith("wandb."):
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    monkeypatch.delitem(__import__("sys").modules, "wandb", raising=False)
    with (
        pytest.raises(UsageError, match=r"pip install 'mmbench\[wandb\]'"),
        tracking(["wandb"], reg, tmp_path),
    ):
        pass
