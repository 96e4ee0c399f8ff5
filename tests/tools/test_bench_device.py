"""The device check (``mmbench bench --numerics``) and ``scripts/gpu_check.sh``'s CPU branch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmbench.errors import UsageError
from mmbench.tools.bench_device import count_host_syncs, parse_configs

ROOT = Path(__file__).resolve().parents[2]
LINE_KEYS = {
    "config",
    "fusion",
    "device",
    "precision",
    "compile",
    "samples_per_second",
    "step_ms",
    "host_syncs_per_step",
    "host_syncs_per_epoch",
    "host_syncs_epoch_end",
    "peak_memory_bytes",
    "n_train",
    "batch_size",
}


def test_host_reads_are_counted_and_restored():
    x = torch.arange(4.0)
    with count_host_syncs(torch.device("cpu")) as syncs:
        float(x.sum()), x[0].item(), bool(x.any()), x.tolist()
        y = x * 2  # device work: no read
    assert syncs["n"] == 4 and y.shape == (4,)
    float(x.sum())
    assert syncs["n"] == 4  # the originals are back after the block


def test_numerics_names_are_checked():
    assert parse_configs("fp32,compile", "cpu") == ["fp32", "compile"]
    assert parse_configs("all", "cpu") == ["fp32", "bf16"]
    with pytest.raises(UsageError, match="unknown configuration"):
        parse_configs("fp8", "cpu")
    with pytest.raises(UsageError, match="needs --device cuda"):
        parse_configs("fp16", "cpu")


def test_gpu_check_cpu_branch_prints_one_json_line_per_configuration():
    env = {
        **os.environ,
        "MMBENCH": f"{sys.executable} -m mmbench",
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "cpu"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    checks = [line for line in lines if line["config"] != "vectorised_seeds"]
    assert [line["config"] for line in checks] == ["fp32", "bf16"]
    for line in checks:
        assert set(line) >= LINE_KEYS, LINE_KEYS - set(line)
        assert line["device"] == "cpu" and line["samples_per_second"] > 0 and line["step_ms"] > 0
        assert line["host_syncs_per_epoch"] == 0  # the trainer reads nothing back inside an epoch
        assert line["host_syncs_epoch_end"] >= 1  # the divergence check reads the epoch's loss
    assert checks[1]["precision"] == "bf16"
