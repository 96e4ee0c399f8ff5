"""Built-in experiment trackers (``--track NAME``), each behind an optional pip extra.

* ``tensorboard``: event files under ``<out>/tensorboard/<run>/`` (``pip install 'mmbench[tensorboard]'``);
* ``mlflow``: one MLflow run per mmbench run in ``$MLFLOW_TRACKING_URI``, by default the local file
  store ``<out>/mlruns`` (``pip install 'mmbench[mlflow]'``);
* ``wandb``: Weights & Biases in offline mode unless ``WANDB_MODE`` says otherwise, files under
  ``<out>/wandb`` (``pip install 'mmbench[wandb]'``; ``wandb sync`` uploads them later).
"""

from mmbench.registry import Registry, hookimpl

_PKG = "mmbench.plugins.trackers"


@hookimpl
def mmbench_register_trackers(registry: Registry) -> None:
    registry.add_tracker(
        "tensorboard", f"{_PKG}.tensorboard_tracker:TensorBoardTracker", "TensorBoard event files per run"
    )
    registry.add_tracker(
        "mlflow", f"{_PKG}.mlflow_tracker:MLflowTracker", "MLflow runs (local file store by default)"
    )
    registry.add_tracker("wandb", f"{_PKG}.wandb_tracker:WandbTracker", "Weights & Biases, offline mode")
