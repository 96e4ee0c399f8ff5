"""Failures become failed runs with reasons, never crashes or fake results."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from mmbench.contracts import FusionPlugin
from mmbench.errors import RunFailed
from mmbench.registry import Registry, hookimpl
from mmbench.registry.manager import build_registry, set_registry
from mmbench.runner.run import RunRequest, run_benchmark

SMALL = ["data.n_samples=400"]


class _NaNModel(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.lin = nn.Linear(spec["text"].dim, spec.num_classes)
        self.calls = 0

    def forward(self, batch):
        self.calls += 1
        out = self.lin(batch["text"])
        # Diverge in the second epoch (epoch 1 has ceil(n_train/128) steps).
        return out * float("nan") if self.calls > 3 else out


class NaNFusion(FusionPlugin):
    def build(self, spec, params):
        return _NaNModel(spec)


class _MemoryHungry(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.lin = nn.Linear(spec["text"].dim, spec.num_classes)

    def forward(self, batch):
        if self.training and batch["text"].shape[0] > 32:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.lin(batch["text"])


class HungryFusion(FusionPlugin):
    def build(self, spec, params):
        return _MemoryHungry(spec)


class _Plugins:
    @hookimpl
    def mmbench_register_fusions(self, registry: Registry) -> None:
        registry.add_fusion("nan_fusion", "tests.runner.test_failures:NaNFusion", "diverges")
        registry.add_fusion("hungry", "tests.runner.test_failures:HungryFusion", "needs small batches")


class _FaultyTracker:
    @hookimpl
    def mmbench_epoch_end(self, run, epoch, logs):
        if run["fusion"] == "late":
            raise RuntimeError("tracker lost its connection")


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    reg, pm = build_registry([("test-fusions", _Plugins()), ("faulty-tracker", _FaultyTracker())])
    set_registry(reg, pm)
    yield reg
    build_registry()  # leave no test plugin behind
    set_registry(*build_registry())


def _run(tmp_path, registry, fusions, **kw):
    req = RunRequest(fusions=fusions, seeds=[0], overrides=SMALL, out_dir=tmp_path, device="cpu", **kw)
    return run_benchmark(req, registry)


def test_nan_loss_fails_the_run_with_its_epoch(tmp_path, registry):
    with pytest.raises(RunFailed, match="epoch 2"):
        _run(tmp_path, registry, ["nan_fusion"], max_epochs=3)
    rec = json.loads(next(tmp_path.glob("*nan_fusion*seed0.json")).read_text())
    assert rec["status"] == "failed" and rec["failure"]["epoch"] == 2
    assert rec["metrics"] == {}


def test_failed_run_does_not_stop_the_others(tmp_path, registry):
    _, records = _run(tmp_path, registry, ["nan_fusion", "concat"], max_epochs=3)
    status = {r["fusion"]: r["status"] for r in records}
    assert status == {"nan_fusion": "failed", "concat": "ok"}


def test_out_of_memory_halves_batch_keeps_effective_batch(tmp_path, registry):
    _, records = _run(tmp_path, registry, ["hungry"], max_epochs=1)
    rec = records[0]
    assert rec["status"] == "ok"
    assert rec["oom_retries"] == 2
    cfg = rec["train_config"]
    assert (cfg["batch_size"], cfg["grad_accum"]) == (32, 4)
    assert cfg["batch_size"] * cfg["grad_accum"] == rec["protocol"]["train"]["batch_size"]
    # The batch the retries ended with changes the numbers: it is in the protocol and its fingerprint,
    # while the file keeps the requested protocol's name (a sweep finds the cell).
    from mmbench.protocol import fingerprint

    assert rec["protocol"]["numerics"]["after_oom"] == {"batch_size": 32, "grad_accum": 4}
    assert rec["protocol_fingerprint"] == fingerprint(rec["protocol"])
    requested = {
        **rec["protocol"],
        "numerics": {k: v for k, v in rec["protocol"]["numerics"].items() if k != "after_oom"},
    }
    assert fingerprint(requested) in Path(rec["_path"]).name != rec["protocol_fingerprint"]


def test_plugin_raising_in_hook_fails_that_run_only(tmp_path, registry):
    _, records = _run(tmp_path, registry, ["late", "concat"], max_epochs=2)
    by = {r["fusion"]: r for r in records}
    assert by["concat"]["status"] == "ok"
    assert by["late"]["status"] == "failed"
    assert "faulty-tracker" in by["late"]["failure"]["reason"]
    assert "tracker lost its connection" in by["late"]["failure"]["reason"]


def test_checkpoint_is_safetensors_and_matches_predictions(tmp_path):
    from safetensors.torch import load_file

    reg, _ = build_registry()
    _, records = run_benchmark(
        RunRequest(
            fusions=["concat"], seeds=[0], overrides=SMALL, max_epochs=2, out_dir=tmp_path, device="cpu"
        ),
        reg,
    )
    rec = records[0]
    state = load_file(tmp_path / rec["checkpoint_file"])
    model = reg.create("fusion", "concat").build(
        __import__("mmbench.plugins.datasets.synthetic", fromlist=["generate"])
        .generate(n_samples=400)
        .input_spec(),
        rec["fusion_params"],
    )
    model.load_state_dict(state)
    assert set(state) == set(model.state_dict())


def test_reproduce_matches_exactly(tmp_path):
    from mmbench.runner.reproduce import reproduce

    reg, _ = build_registry()
    _, records = run_benchmark(
        RunRequest(
            fusions=["cross_attention"],
            seeds=[1],
            overrides=SMALL,
            max_epochs=2,
            out_dir=tmp_path,
            device="cpu",
        ),
        reg,
    )
    result = reproduce(Path(records[0]["_path"]), reg)
    assert result["match"] is True
    assert result["protocol_fingerprint"]["original"] == result["protocol_fingerprint"]["reproduced"]
    # A tampered record no longer matches.
    rec = json.loads(Path(records[0]["_path"]).read_text())
    rec["metrics"]["test"]["accuracy"] += 0.01
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(rec))
    assert reproduce(tampered, reg)["match"] is False


def test_reproduce_cli_from_another_folder_with_an_empty_cache(tmp_path):
    """`python -m mmbench reproduce` needs only the record: another folder, an empty cache, exit 0."""
    reg, _ = build_registry()
    _, records = run_benchmark(
        RunRequest(
            fusions=["cross_attention"],
            seeds=[1],
            overrides=SMALL,
            max_epochs=2,
            out_dir=tmp_path / "made",
            device="cpu",
        ),
        reg,
    )
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "cwd").mkdir(parents=True)
    (elsewhere / "cache").mkdir()
    record = elsewhere / "record.json"
    shutil.copyfile(records[0]["_path"], record)  # the record alone: no predictions, no checkpoint
    env = {k: v for k, v in os.environ.items() if k not in ("MMBENCH_DATA", "MMBENCH_DEBUG")}
    env.update(MMBENCH_CACHE=str(elsewhere / "cache"), OMP_NUM_THREADS="1", COLUMNS="200", NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mmbench", "reproduce", str(record)],
        cwd=elsewhere / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "all metrics match" in output
    assert "MISMATCH" not in output and "Traceback" not in output
    assert json.loads(record.read_text()) == json.loads(Path(records[0]["_path"]).read_text())


def _small_run(tmp_path, reg, **kw):
    request = RunRequest(
        fusions=["concat"], seeds=[1], overrides=SMALL, max_epochs=2, out_dir=tmp_path, device="cpu"
    )
    for key, value in kw.items():
        setattr(request, key, value)
    return run_benchmark(request, reg)[1][0]


def test_reproduce_restores_cpu_bf16(tmp_path):
    from mmbench.runner.reproduce import reproduce

    reg, _ = build_registry()
    record = _small_run(tmp_path, reg, precision="bf16")
    assert record["execution"]["effective_precision"] == "bf16"
    result = reproduce(Path(record["_path"]), reg)
    assert result["restored"]["precision"] == "bf16" and result["match"] is True
    # The same run in fp32 gives other numbers: the precision was really restored, not ignored.
    fp32 = _small_run(tmp_path / "fp32", reg, precision="fp32")
    assert fp32["metrics"]["dev"]["confusion_matrix"] != record["metrics"]["dev"]["confusion_matrix"] or (
        fp32["history"] != record["history"]
    )


def test_reproduce_restores_tuned_values_and_threads(tmp_path):
    import torch
    import yaml

    from mmbench.runner.reproduce import reproduce

    reg, _ = build_registry()
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text(
        yaml.safe_dump(
            {
                "fusion": "concat",
                "params": {"hidden": 48},
                "train": {"lr": 0.003, "batch_size": 64},
                "n_trials": 7,
            }
        )
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        record = _small_run(tmp_path / "runs", reg, params=str(tuned))
    finally:
        torch.set_num_threads(before)
    assert record["train_overrides"] == {"lr": 0.003, "batch_size": 64}
    assert record["environment"]["torch_threads"] == 1
    tuned.unlink()  # the record alone must be enough
    result = reproduce(Path(record["_path"]), reg)
    assert result["match"] is True, result["differences"]
    assert result["restored"]["tuned"] and result["restored"]["torch_threads"] == 1
    assert result["environment"]["reproduced"]["torch_threads"] == 1
    assert torch.get_num_threads() == before  # restored afterwards


def test_reproduce_names_the_recorded_setting_that_differs(tmp_path):
    from mmbench.runner.reproduce import reproduce

    reg, _ = build_registry()
    record = _small_run(tmp_path, reg)
    rec = json.loads(Path(record["_path"]).read_text())
    rec["metrics"]["test"]["accuracy"] += 0.01
    rec["environment"]["torch"] = "1.0.0"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(rec))
    result = reproduce(tampered, reg)
    assert result["match"] is False
    assert {
        "setting": "environment.torch",
        "original": "1.0.0",
        "reproduced": record["environment"]["torch"],
    } in (result["differences"])
