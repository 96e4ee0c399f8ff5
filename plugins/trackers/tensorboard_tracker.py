"""TensorBoard tracker: one event-file folder per run, ``<out>/tensorboard/<run name>/``.

Scalars per epoch (step = epoch): ``train/loss``, ``dev/loss``, ``dev/<metric>``, ``lr``; at the end
(step = best epoch): ``test/<metric>``, ``dev_final/<metric>``, and the protocol as text. Written with
``torch.utils.tensorboard.SummaryWriter`` (needs the ``tensorboard`` package).
"""

from __future__ import annotations

import json
from typing import Any

from mmbench.runner.tracking import Tracker, final_metrics, flat_params, run_name


class TensorBoardTracker(Tracker):
    requires = "tensorboard"
    extra = "tensorboard"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writer: Any = None

    def start(self, run: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.close()
        self.writer = SummaryWriter(log_dir=str(self.out_dir / "tensorboard" / run_name(run)))
        self.writer.add_text(
            "params", "    " + json.dumps(flat_params(run), indent=1).replace("\n", "\n    ")
        )

    def epoch(self, run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            if key == "epoch":
                continue
            tag = {"train_loss": "train/loss", "lr": "lr"}.get(key, key.replace("dev_", "dev/", 1))
            self.writer.add_scalar(tag, value, epoch)

    def end(self, run: dict[str, Any], record: dict[str, Any]) -> None:
        step = int(record.get("best_epoch") or 0)
        for key, value in final_metrics(record).items():
            split, _, name = key.partition("_")
            tag = {"test": f"test/{name}", "dev": f"dev_final/{name}"}.get(split, key)
            self.writer.add_scalar(tag, value, step)
        self.writer.add_text("status", str(record.get("status")))
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
