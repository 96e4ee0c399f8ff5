"""MLflow tracker: one MLflow run per mmbench run, in experiment ``mmbench-<dataset>``.

The tracking URI is ``$MLFLOW_TRACKING_URI`` when set, else the local file store ``<out>/mlruns``
(MLflow 3 keeps file stores in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``, which this tracker
sets for its own file URI only). Params: the run's identity and resolved protocol (``protocol.train.lr``
...); metrics per epoch (step = epoch) and the final dev/test scores; status FINISHED or FAILED.
Uses ``MlflowClient`` (no global active run), so several runs of one command never mix.
"""

from __future__ import annotations

import os
from typing import Any

from mmbench.runner.tracking import Tracker, final_metrics, flat_params, run_name


class MLflowTracker(Tracker):
    requires = "mlflow"
    extra = "mlflow"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client: Any = None
        self.run_id: str | None = None

    @property
    def uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or (self.out_dir / "mlruns").resolve().as_uri()

    def _client(self) -> Any:
        if self.client is None:
            if self.uri.startswith("file:"):
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            from mlflow.tracking import MlflowClient

            self.client = MlflowClient(tracking_uri=self.uri)
        return self.client

    def start(self, run: dict[str, Any]) -> None:
        from mlflow.entities import Param

        client = self._client()
        name = f"mmbench-{run['dataset']}"
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        tags = {"mmbench.fusion": str(run["fusion"]), "mmbench.seed": str(run["seed"])}
        self.run_id = client.create_run(experiment_id, run_name=run_name(run), tags=tags).info.run_id
        params = [Param(k, v[:6000]) for k, v in flat_params(run).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            client.log_batch(self.run_id, params=params[i : i + 100])

    def epoch(self, run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
        from mlflow.entities import Metric

        stamp = 0
        metrics = [Metric(k, float(v), stamp, epoch) for k, v in logs.items() if k != "epoch"]
        self._client().log_batch(self.run_id, metrics=metrics)

    def end(self, run: dict[str, Any], record: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        client = self._client()
        step = int(record.get("best_epoch") or 0)
        metrics = [Metric(k, v, 0, step) for k, v in final_metrics(record).items()]
        if metrics:
            client.log_batch(self.run_id, metrics=metrics)
        client.set_terminated(self.run_id, "FINISHED" if record.get("status") == "ok" else "FAILED")
        self.run_id = None

    def close(self) -> None:
        if self.run_id is not None and self.client is not None:  # a run interrupted mid-way
            self.client.set_terminated(self.run_id, "KILLED")
            self.run_id = None
