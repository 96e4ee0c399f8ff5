"""The ray executor: a sweep on a private local Ray instance; a worker killed mid-cell is rerun."""

from __future__ import annotations

import pytest

pytest.importorskip("ray", reason="Ray is not installed (pip install 'mmbench[ray]'; .ci/run installs it)")

pytestmark = pytest.mark.distributed


def test_ray_sweep_reruns_a_killed_worker(tmp_path):
    from tests.runner.executor_kill import kill_a_worker_mid_cell

    out = tmp_path / "runs"
    args = ["sweep", "--fusion", "concat", "--seeds", "0-1", "--max-epochs", "6", "--device", "cpu"]
    args += ["--set", "data.n_samples=300", "--set", "train.patience=100", "--no-checkpoints"]
    args += ["--out", str(out), "--format", "json", "--executor", "ray", "--workers", "2", "--threads", "1"]
    report = kill_a_worker_mid_cell(args, out / "synthetic")
    assert "worker lost (Ray: " in report["log"]  # Ray's own error type, mapped to a lost worker
