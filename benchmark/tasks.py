"""Task types: what a dataset's target is, and everything that follows from it.

A dataset declares its task in ``MultimodalData.task``: ``"classification"`` (integer labels into
``class_names``) or ``"regression"`` (a real-valued target, e.g. sentiment in [-3, 3], bounded by
``MultimodalData.target_range``). ``task_of(data)`` gives the task object; the core asks it, and
never the task's name, for what differs between the two:

* ``num_outputs``: the width of a fusion's output (classes, or 1);
* ``make_loss``: the protocol's loss (cross-entropy/focal with class weights, or L1/MSE);
* ``predictions``: model outputs ``[N, num_outputs]`` -> predictions ``[N]`` (argmax, or the value);
* ``metrics`` / ``score``: a split's full metrics for a record, and one metric cheaply per epoch;
* ``higher_is_better`` / ``is_better`` / ``worst``: the direction of model selection, ranking and
  tuning (MAE is lower-is-better);
* ``check_protocol``: the protocol's metric, loss and imbalance handling fit the task.

Sources: regression metrics and the L1 loss as MMSA (``thuiar/MMSA``) uses them for CMU-MOSI,
CMU-MOSEI and CH-SIMS; see :mod:`mmbench.metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mmbench.errors import UsageError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from mmbench.data import MultimodalData

#: Classification metrics a protocol may select on (all higher is better); ``mmbench.metrics``.
CLASSIFICATION_METRICS = ("weighted_f1", "macro_f1", "accuracy", "unweighted_accuracy", "weighted_accuracy")
#: Every regression metric ``mmbench.metrics.regression_metrics`` may report.
REGRESSION_METRICS = (
    "mae",
    "corr",
    "acc2_has0",
    "f1_has0",
    "acc2_non0",
    "f1_non0",
    "acc5",
    "acc7",
    "acc2",
    "acc3",
    "f1",
)
#: Metrics where a smaller value is better (every other metric: larger is better).
LOWER_IS_BETTER = frozenset({"mae"})
#: Display names as papers print them.
METRIC_LABELS = {
    "weighted_f1": "weighted F1",
    "macro_f1": "macro F1",
    "accuracy": "accuracy",
    "unweighted_accuracy": "UA",
    "weighted_accuracy": "WA",
    "mae": "MAE",
    "corr": "Corr",
    "acc2_has0": "Acc-2 (has0)",
    "f1_has0": "F1 (has0)",
    "acc2_non0": "Acc-2 (non0)",
    "f1_non0": "F1 (non0)",
    "acc5": "Acc-5",
    "acc7": "Acc-7",
    "acc2": "Acc-2",
    "acc3": "Acc-3",
    "f1": "F1",
}
TASK_KINDS = ("classification", "regression")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (false for error metrics such as MAE)."""
    return metric not in LOWER_IS_BETTER


def metric_label(metric: str) -> str:
    """The name papers print for ``metric`` (``mae`` -> ``MAE``)."""
    return METRIC_LABELS.get(metric, metric)


def direction_arrow(metric: str) -> str:
    """``↑`` when larger values of ``metric`` are better, ``↓`` when smaller are (MAE)."""
    return "↑" if higher_is_better(metric) else "↓"


class Task:
    """Base of the task types; see the module docstring."""

    kind: ClassVar[str]
    #: ``train.loss`` values this task trains with.
    losses: ClassVar[tuple[str, ...]]
    #: ``train.imbalance`` values this task supports.
    imbalance: ClassVar[tuple[str, ...]]

    @property
    def num_outputs(self) -> int:
        raise NotImplementedError

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metrics a record of this task holds for each split (and a protocol may select on)."""
        raise NotImplementedError

    @property
    def default_metric(self) -> str:
        raise NotImplementedError

    @property
    def summary_metrics(self) -> tuple[str, ...]:
        """The metrics summarised over seeds (run output, leaderboard columns), in display order."""
        return self.metric_names

    @property
    def headline_metrics(self) -> tuple[str, ...]:
        """The test metrics a results table or leaderboard shows as columns, in display order."""
        return self.summary_metrics

    @property
    def compact_metrics(self) -> tuple[str, ...]:
        """The few test metrics a run's console summary table shows."""
        return self.headline_metrics

    # ------------------------------------------------------------ direction
    def higher_is_better(self, metric: str) -> bool:
        return higher_is_better(metric)

    def is_better(self, new: float, best: float, metric: str) -> bool:
        """``new`` strictly improves on ``best`` (``best`` may be :meth:`worst`)."""
        return new > best if self.higher_is_better(metric) else new < best

    def worst(self, metric: str) -> float:
        """The value every real score improves on: -inf, or +inf for lower-is-better metrics."""
        return -math.inf if self.higher_is_better(metric) else math.inf

    # ---------------------------------------------------------------- checks
    def check_protocol(self, protocol: dict[str, Any], dataset: str) -> None:
        """Refuse a protocol whose metric, loss or imbalance handling does not fit this task.

        Raises:
            UsageError: naming the protocol key, the value and what this task accepts.
        """
        metric = protocol.get("metric")
        if metric not in self.metric_names:
            raise UsageError(
                f"protocol metric {metric!r} is not a metric of dataset {dataset!r} ({self.kind}: "
                f"{', '.join(self.metric_names)}); set it with --set metric=... or a --protocol file"
            )
        train = protocol.get("train") or {}
        if train.get("loss") not in self.losses:
            raise UsageError(
                f"train.loss {train.get('loss')!r} does not fit dataset {dataset!r} ({self.kind}: "
                f"{', '.join(self.losses)}); set it with --set train.loss=..."
            )
        if train.get("imbalance", "none") not in self.imbalance:
            raise UsageError(
                f"train.imbalance {train.get('imbalance')!r} does not fit dataset {dataset!r} "
                f"({self.kind}: {', '.join(self.imbalance)}); set it with --set train.imbalance=none"
            )

    # ------------------------------------------------------------- training
    def make_loss(self, train_cfg: dict[str, Any], train_targets: Tensor) -> nn.Module:
        raise NotImplementedError

    def oversample_weights(self, train_targets: Tensor) -> Tensor:
        """Per-row sampling weights for ``train.imbalance: oversample`` ``[N]``."""
        raise UsageError(f"train.imbalance=oversample needs a classification task, not {self.kind}")

    def target_dtype(self) -> np.dtype:
        raise NotImplementedError

    def predictions(self, outputs: Tensor) -> Tensor:
        """Model outputs ``[N, num_outputs]`` -> predictions ``[N]``."""
        raise NotImplementedError

    def output_values(self, outputs: Tensor) -> list | None:
        """What a predictions file keeps beside ``y_pred`` (class probabilities), or ``None``."""
        return None

    def baseline_prediction(self, train_targets: np.ndarray) -> Any:
        """The constant a trivial predictor outputs for every sample, from the train split's targets
        ``[N]``: the majority class, or the median target (the constant with the lowest train MAE)."""
        raise NotImplementedError

    # --------------------------------------------------------------- scoring
    def metrics(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
        """A split's metrics as a record stores them (``metrics.dev`` / ``metrics.test``)."""
        raise NotImplementedError

    def score(self, y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> float:
        """One metric, cheaply (every epoch, for model selection); undefined -> :meth:`worst`."""
        value = self.metrics(y_true, y_pred).get(metric)
        return self.worst(metric) if value is None else float(value)

    def describe(self) -> dict[str, Any]:
        """The record's ``task`` entry."""
        return {"kind": self.kind}

    def target_summary(self) -> str:
        """A few words on the target, for logs (``6 classes``)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ClassificationTask(Task):
    """Single-label classification into ``class_names`` (int64 labels ``[N]``)."""

    class_names: tuple[str, ...]
    kind: ClassVar[str] = "classification"
    losses: ClassVar[tuple[str, ...]] = ("cross_entropy", "focal")
    imbalance: ClassVar[tuple[str, ...]] = ("none", "class_weights", "oversample")

    @property
    def num_outputs(self) -> int:
        return len(self.class_names)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return CLASSIFICATION_METRICS

    @property
    def default_metric(self) -> str:
        return "weighted_f1"

    @property
    def summary_metrics(self) -> tuple[str, ...]:
        return ("accuracy", "unweighted_accuracy", "weighted_f1", "macro_f1", "weighted_accuracy")

    @property
    def headline_metrics(self) -> tuple[str, ...]:
        # WA is accuracy: shown once.
        return ("accuracy", "unweighted_accuracy", "weighted_f1", "macro_f1")

    @property
    def compact_metrics(self) -> tuple[str, ...]:
        return ("accuracy", "weighted_f1", "macro_f1")

    def make_loss(self, train_cfg: dict[str, Any], train_targets: Tensor) -> nn.Module:
        from mmbench.training.losses import inverse_frequency_weights, make_loss

        weights = None
        if train_cfg.get("imbalance") == "class_weights":
            weights = inverse_frequency_weights(train_targets.cpu(), self.num_outputs)
        return make_loss(train_cfg["loss"], float(train_cfg.get("focal_gamma", 2.0)), weights)

    def oversample_weights(self, train_targets: Tensor) -> Tensor:
        # Rows drawn with probability inversely proportional to their class size.
        import torch

        labels = train_targets.cpu()
        counts = torch.bincount(labels, minlength=self.num_outputs).double()
        return (1.0 / counts.clamp_min(1))[labels]

    def target_dtype(self) -> np.dtype:
        return np.dtype(np.int64)

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs.argmax(dim=1)

    def output_values(self, outputs: Tensor) -> list:
        import torch

        return np.round(torch.softmax(outputs.float(), dim=1).cpu().numpy(), 6).tolist()

    def baseline_prediction(self, train_targets: np.ndarray) -> int:
        counts = np.bincount(np.asarray(train_targets, dtype=np.int64), minlength=self.num_outputs)
        return int(counts.argmax())

    def metrics(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
        from mmbench.metrics import classification_metrics

        return classification_metrics(y_true, y_pred, list(self.class_names))

    def score(self, y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> float:
        from mmbench.metrics import primary_score

        return primary_score(y_true, y_pred, self.num_outputs, metric)

    def target_summary(self) -> str:
        return f"{self.num_outputs} classes"


@dataclass(frozen=True)
class RegressionTask(Task):
    """A real-valued target (float32 ``[N]``), e.g. sentiment intensity in [-3, 3].

    ``target_range`` (``(low, high)`` or ``None``) chooses the accuracies reported beside MAE and
    Pearson correlation (:func:`mmbench.metrics.regression_metric_names`).
    """

    target_range: tuple[float, float] | None = None
    kind: ClassVar[str] = "regression"
    losses: ClassVar[tuple[str, ...]] = ("l1", "mse")
    imbalance: ClassVar[tuple[str, ...]] = ("none",)

    @property
    def num_outputs(self) -> int:
        return 1

    @property
    def metric_names(self) -> tuple[str, ...]:
        from mmbench.metrics import regression_metric_names

        return regression_metric_names(self.target_range)

    @property
    def default_metric(self) -> str:
        return "mae"

    @property
    def headline_metrics(self) -> tuple[str, ...]:
        # The columns papers on CMU-MOSI/MOSEI print (MAE, Corr, Acc-2 and F1 both ways, Acc-7); Acc-5
        # stays in the records and the JSON output.
        names = self.metric_names
        return tuple(m for m in names if not (m == "acc5" and "acc7" in names))

    def make_loss(self, train_cfg: dict[str, Any], train_targets: Tensor) -> nn.Module:
        from mmbench.training.losses import RegressionLoss

        return RegressionLoss(train_cfg["loss"])

    def target_dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs.float().reshape(outputs.shape[0], -1)[:, 0]

    def baseline_prediction(self, train_targets: np.ndarray) -> float:
        return float(np.median(np.asarray(train_targets, dtype=np.float64)))

    def metrics(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
        from mmbench.metrics import regression_metrics

        return regression_metrics(y_true, y_pred, self.target_range)

    def describe(self) -> dict[str, Any]:
        rng = None if self.target_range is None else [float(v) for v in self.target_range]
        return {"kind": self.kind, "target_range": rng}

    def target_summary(self) -> str:
        if self.target_range is None:
            return "a regression target"
        return f"a regression target in [{self.target_range[0]:g}, {self.target_range[1]:g}]"


def task_of(data: MultimodalData) -> Task:
    """The task object of a dataset (from ``data.task`` and its labels or range)."""
    if data.task == "regression":
        rng = data.target_range
        return RegressionTask(None if rng is None else (float(rng[0]), float(rng[1])))
    return ClassificationTask(tuple(data.class_names))


def task_from_record(record: dict[str, Any]) -> Task:
    """The task a run record was made for (records before regression tasks are classification)."""
    info = record.get("task") or {}
    if info.get("kind") == "regression":
        rng = info.get("target_range")
        return RegressionTask(None if rng is None else (float(rng[0]), float(rng[1])))
    return ClassificationTask(tuple(record.get("class_names") or ()))
