"""The slurm executor: the sbatch file SLURM receives, and a sweep through submitit's local executor."""

from __future__ import annotations

import pytest

from mmbench.registry.manager import build_registry
from mmbench.runner.executor import build_executor

pytest.importorskip("submitit", reason="submitit is not installed (pip install 'mmbench[slurm]')")

REGISTRY, _ = build_registry()


def test_sbatch_parameters_of_an_array_of_cells(tmp_path):
    options = {
        "partition": "gpu",
        "time": "90",
        "mem_gb": "32",
        "account": "lab",
        "constraint": "a100",
        "setup": "module load cuda; source ~/venv/bin/activate",
    }
    executor = build_executor(
        REGISTRY, "slurm", workers=4, gpus=1, threads=8, folder=tmp_path, options=options
    )
    script = executor.sbatch_script(n_cells=40)
    lines = set(script.splitlines())
    log_folder = tmp_path / "slurm" / "%A_%a"  # one folder per array task, under the sweep folder
    expected = {
        "#SBATCH --partition=gpu",
        "#SBATCH --time=90",
        "#SBATCH --mem=32GB",
        "#SBATCH --account=lab",
        "#SBATCH --constraint=a100",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --array=0-39%4",  # 40 cells, at most 4 running at once (--workers)
        "#SBATCH --job-name=mmbench",
        f"#SBATCH --output={log_folder}/%A_%a_0_log.out",
        f"#SBATCH --error={log_folder}/%A_%a_0_log.err",
        "module load cuda",
        "source ~/venv/bin/activate",
    }
    assert expected <= lines, sorted(expected - lines)
    # Setup lines run before the job's command; the job runs the pickled cell through srun.
    assert script.index("module load cuda") < script.index("srun")
    assert executor.slots is None or executor.cluster == "local"


def test_no_gpu_line_on_cpu_cells(tmp_path):
    executor = build_executor(REGISTRY, "slurm", workers=2, gpus=0, threads=2, folder=tmp_path)
    script = executor.sbatch_script(n_cells=3)
    assert "gpus-per-node" not in script and "#SBATCH --array=0-2%2" in script
    assert "#SBATCH --time=240" in script  # the default time limit: 4 hours per cell


@pytest.mark.distributed
def test_sweep_through_submitit_local_executor_reruns_a_killed_job(tmp_path):
    from tests.runner.executor_kill import kill_a_worker_mid_cell

    out = tmp_path / "runs"
    args = ["sweep", "--fusion", "concat", "--seeds", "0-1", "--max-epochs", "6", "--device", "cpu"]
    args += ["--set", "data.n_samples=300", "--set", "train.patience=100", "--no-checkpoints"]
    args += ["--out", str(out), "--format", "json", "--executor", "slurm", "--workers", "2"]
    args += ["--threads", "1", "--executor-opt", "cluster=local", "--executor-opt", "time=10"]
    report = kill_a_worker_mid_cell(args, out / "synthetic")
    assert "SLURM job ended without a result" in report["log"]
    logs = list((out / "slurm").rglob("*_log.out"))
    assert len(logs) == 3  # two cells, one of them submitted twice; logs under the sweep folder
