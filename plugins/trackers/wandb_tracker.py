"""Weights & Biases tracker, offline by default: files under ``<out>/wandb`` (``wandb sync`` uploads them).

``WANDB_MODE`` (``online``, ``offline``, ``disabled``) and ``WANDB_PROJECT`` are honoured; the project
defaults to ``mmbench-<dataset>``. Config: the run's identity and resolved protocol; history per epoch
(step = epoch); the final dev/test scores in the run summary.
"""

from __future__ import annotations

import os
from typing import Any

from mmbench.runner.tracking import Tracker, final_metrics, flat_params, run_name


class WandbTracker(Tracker):
    requires = "wandb"
    extra = "wandb"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run: Any = None

    def start(self, run: dict[str, Any]) -> None:
        import wandb

        self.close()
        folder = self.out_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or f"mmbench-{run['dataset']}",
            name=run_name(run),
            config=flat_params(run),
            dir=str(folder),
            mode=os.environ.get("WANDB_MODE") or "offline",
            reinit="create_new",
        )

    def epoch(self, run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
        self.run.log({k: v for k, v in logs.items() if k != "epoch"}, step=epoch)

    def end(self, run: dict[str, Any], record: dict[str, Any]) -> None:
        self.run.summary.update({**final_metrics(record), "status": record.get("status")})
        self.close(exit_code=0 if record.get("status") == "ok" else 1)

    def close(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
