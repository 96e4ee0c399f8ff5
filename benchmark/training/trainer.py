"""The trainer: AdamW, ReduceLROnPlateau, early stopping on the dev metric, test never seen.

Protocol rules enforced here:
* class weights and over-sampling are computed from the train split only;
* the checkpoint is selected on the dev split's primary metric (best epoch, patience), in the
  metric's direction (the task object: MAE is lower-is-better);
* the trainer never receives the test split; the runner evaluates test once, afterwards.

Speed: whole splits are tensors on the device, an epoch permutes them once (one gather) and
batches are contiguous slices. The running loss stays on the device and is checked for NaN/inf
once per epoch, so CUDA steps never wait for the host.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.data import mask_key
from mmbench.errors import UsageError
from mmbench.protocol import modality_dropout_rates
from mmbench.tasks import ClassificationTask, Task
from mmbench.training.buckets import bucketed_order, bucketing_pool, eval_order, row_lengths
from mmbench.training.dialogue import DialogueSplit
from mmbench.training.tensors import TensorSplit

EpochCallback = Callable[[int, dict[str, float]], None]


#: Time steps (rows x longest sequence) per evaluation batch of sequence inputs (``Trainer.eval_rows``).
EVAL_STEP_BUDGET = 16384


class TrainingDiverged(Exception):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training loss became {loss} in epoch {epoch}")
        self.epoch, self.loss = epoch, loss


@dataclass
class FitResult:
    best_epoch: int
    best_dev_score: float
    history: list[dict[str, float]]
    train_seconds: float
    step_seconds: float
    samples_seen: int
    epochs_run: int
    stopped_early: bool
    best_state: dict[str, Tensor] = field(repr=False, default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / self.step_seconds if self.step_seconds > 0 else 0.0


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """Mixed-precision dtype: bf16 on CUDA when supported, else fp16; none on CPU unless asked.

    fp16 trains with a ``GradScaler`` (CUDA only: the trainer refuses fp16 elsewhere).
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def precision_name(device: torch.device, precision: str) -> str:
    """The precision a run trains in: ``fp32``, ``bf16`` or ``fp16`` (``auto`` resolved for ``device``)."""
    dtype = autocast_dtype(device, precision)
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def make_adamw(params: Any, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with the fused kernel where this torch build has one (CPU and CUDA in torch >= 2.4).

    The default per-parameter loop spends a large share of a small model's step in Python and
    elementwise kernels: on the 2-core reference machine fused AdamW makes the whole training
    step about 1.5x faster (docs/PERFORMANCE.md). Falls back to the multi-tensor implementation.
    """
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)


def loss_weights(ranges: list[tuple[int, int]], accum: int) -> list[float]:
    """Each batch's weight in its accumulation group: its share of the group's rows.

    The group's gradient is then that of the mean loss over the group, also for the epoch's last,
    shorter group (fewer or smaller batches), which ``1 / accum`` would scale down.
    """
    sizes = [b - a for a, b in ranges]
    groups = [sum(sizes[g : g + accum]) for g in range(0, len(sizes), accum)]
    return [size / groups[i // accum] for i, size in enumerate(sizes)]


def is_step_end(i: int, n_batches: int, accum: int) -> bool:
    """Whether the optimizer steps after batch ``i`` (0-based) of ``n_batches``."""
    return (i + 1) % accum == 0 or i == n_batches - 1


class Trainer:
    """Fits a fusion model on train with dev-only model selection.

    ``task`` (``mmbench.tasks``; an int ``C`` means C-class classification) gives the loss, turns
    outputs into predictions, scores the dev split on ``metric`` and says which direction is better.
    """

    def __init__(
        self,
        model: nn.Module,
        train_cfg: dict[str, Any],
        metric: str,
        task: Task | int,
        device: torch.device,
        precision: str = "auto",
        on_epoch_end: EpochCallback | None = None,
        modalities: list[str] | None = None,
        compile: bool = False,
    ) -> None:
        self.model = model.to(device)
        # ``torch.compile`` wraps the forward only: weights, state_dict keys and checkpoints stay
        # those of the plain module. Batch sizes vary (the last batch), hence dynamic shapes.
        self.forward = torch.compile(self.model, dynamic=True) if compile else self.model
        self.cfg = train_cfg
        self.metric = metric
        # An int is the older call form: a classification task with that many classes.
        self.task = task if isinstance(task, Task) else ClassificationTask(tuple(map(str, range(int(task)))))
        self.device = device
        self.amp_dtype = autocast_dtype(device, precision)
        if self.amp_dtype == torch.float16 and device.type != "cuda":
            raise UsageError(
                f"--precision fp16 needs CUDA (loss scaling with a GradScaler); on {device.type} use "
                "bf16 (CPU autocast, no loss scaling needed) or fp32"
            )
        self.on_epoch_end = on_epoch_end
        self.modalities = modalities or []
        self.dropout_rates = self._dropout_rates()
        self.eval_batch_size = max(1024, int(train_cfg["batch_size"]))

    # ------------------------------------------------------------------ helpers
    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def epoch_order(self, labels: Tensor, generator: torch.Generator) -> Tensor:
        """Row order ``[N]`` of one training epoch (over-sampled rows repeat), drawn from ``generator``."""
        n = labels.shape[0]
        if self.cfg["imbalance"] == "oversample":
            w = self.task.oversample_weights(labels)
            return torch.multinomial(w, n, replacement=True, generator=generator)
        return torch.randperm(n, generator=generator)

    def _epoch_data(self, train: TensorSplit, generator: torch.Generator) -> TensorSplit:
        """The training rows of one epoch in their shuffled order (whole dialogues stay together)."""
        if isinstance(train, DialogueSplit):
            return train.take_dialogues(torch.randperm(train.n_dialogues, generator=generator))
        order = self.epoch_order(train.labels, generator).to(train.labels.device)
        pool = bucketing_pool(self.cfg, train)
        if pool:  # train.length_bucketing: batches of similar text length (training.buckets)
            order = bucketed_order(order, row_lengths(train), int(self.cfg["batch_size"]), pool, generator)
        return train.take(order)

    def _dropout_rates(self) -> dict[str, float] | None:
        """The per-modality dropout probabilities of a mapping ``train.modality_dropout``, checked
        against this run's modalities; ``None`` for the single-probability form."""
        rates = modality_dropout_rates(self.cfg.get("modality_dropout", 0.0))
        if not isinstance(rates, dict):
            return None
        unknown = sorted(set(rates) - set(self.modalities))
        if unknown:
            raise UsageError(
                f"train.modality_dropout names modality {unknown[0]!r}, which this run does not have "
                f"(modalities: {', '.join(self.modalities) or 'none'})"
            )
        return rates

    def modality_dropout(self, batch: dict[str, Tensor], generator: torch.Generator) -> None:
        """Zero whole modalities of training samples (``train.modality_dropout``), in place.

        A float ``p``: with probability ``p`` one uniformly chosen modality of a sample is zeroed.
        A mapping: each listed modality is zeroed independently with its own probability; a sample
        that would lose every modality keeps one, chosen uniformly at random.
        """
        if self.dropout_rates is not None:
            self._per_modality_dropout(batch, generator, self.dropout_rates)
            return
        p = float(self.cfg.get("modality_dropout", 0.0))
        if p <= 0 or len(self.modalities) < 2:
            return
        b = next(iter(batch.values())).shape[0]
        drop = torch.rand(b, generator=generator) < p
        which = torch.randint(len(self.modalities), (b,), generator=generator)
        for i, m in enumerate(self.modalities):
            if m not in batch:  # computed inside the model (an in-model encoder)
                continue
            zero = (drop & (which == i)).to(self.device)
            keep = (~zero).to(batch[m].dtype).view(-1, *([1] * (batch[m].dim() - 1)))
            batch[m] = batch[m] * keep

    def _per_modality_dropout(
        self, batch: dict[str, Tensor], generator: torch.Generator, rates: dict[str, float]
    ) -> None:
        names = self.modalities
        # A modality computed inside the model (an in-model encoder) is not in the batch: never zeroed.
        p = torch.tensor([rates.get(m, 0.0) if m in batch else 0.0 for m in names])
        if len(names) < 2 or not bool((p > 0).any()):
            return
        b = next(iter(batch.values())).shape[0]
        drop = torch.rand(b, len(names), generator=generator) < p  # rand < 1 always: p = 1 drops always
        every = drop.all(dim=1)
        if bool(every.any()):
            keep = torch.randint(len(names), (b,), generator=generator)
            drop[every, keep[every]] = False
        for i, m in enumerate(names):
            if m not in batch or not bool(drop[:, i].any()):
                continue
            keep_m = (~drop[:, i]).to(self.device, batch[m].dtype).view(-1, *([1] * (batch[m].dim() - 1)))
            batch[m] = batch[m] * keep_m

    # ------------------------------------------- loss, score and selection (one seam per task)
    def criterion(self, train: TensorSplit) -> nn.Module:
        """The task's training loss (class weights, when asked for, from the train labels only)."""
        return self.task.make_loss(self.cfg, train.labels).to(self.device)

    def dev_score(self, dev_outputs: Tensor, dev_labels: np.ndarray) -> float:
        """The primary metric of ``dev_outputs`` (``[N, num_outputs]``) against the dev labels ``[N]``."""
        dev_pred = self.task.predictions(dev_outputs).cpu().numpy()
        return self.task.score(dev_labels, dev_pred, self.metric)

    def worst_score(self) -> float:
        """The best dev score before the first epoch (the worst value of the metric's direction)."""
        return self.task.worst(self.metric)

    def is_better(self, score: float, best: float) -> bool:
        """Whether a dev score beats the best so far, in the metric's direction (model selection)."""
        return self.task.is_better(score, best, self.metric)

    def make_scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        """ReduceLROnPlateau on the dev metric in its direction (``train.scheduler: plateau``), or None."""
        cfg = self.cfg
        if cfg["scheduler"] != "plateau":
            return None
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max" if self.task.higher_is_better(self.metric) else "min",
            factor=float(cfg["scheduler_factor"]),
            patience=int(cfg["scheduler_patience"]),
        )

    def eval_rows(self, split: TensorSplit) -> int:
        """Rows per evaluation batch: ``eval_batch_size`` (1,024) for utterance-level inputs; for
        sequences at most :data:`EVAL_STEP_BUDGET` time steps of the longest modality per batch (an
        attention fusion's activations grow with rows x steps^2; CMU-MOSI's unaligned files hold up
        to 500 steps), never fewer than the training batch. Outputs do not depend on it beyond
        rounding."""
        masks = [v for k, v in split.inputs.items() if k.startswith(mask_key(""))]
        steps = max((int(m.shape[1]) for m in masks), default=1)
        by_steps = max(int(self.cfg["batch_size"]), EVAL_STEP_BUDGET // max(steps, 1))
        return max(1, min(self.eval_batch_size, by_steps))

    @torch.inference_mode()
    def predict_logits(self, split: TensorSplit) -> Tensor:
        """Outputs ``[N, num_outputs]`` (logits, or regression values) for a whole split in large
        batches (eval mode, no autograd)."""
        self.model.eval()
        # In-model text encoders: longest texts first, in training-sized batches (dynamic padding
        # then trims each batch to similar lengths); outputs go back to split order below.
        order = None if isinstance(split, DialogueSplit) else eval_order(split)
        batch_size = self.eval_rows(split) if order is None else int(self.cfg["batch_size"])
        rows = split if order is None else split.take(order)
        out = []
        for start, stop in rows.batch_ranges(batch_size):
            with self.autocast():
                out.append(self.forward(rows.batch(start, stop)[0]).float())
        if not out:
            return torch.empty(0, self.task.num_outputs)
        logits = torch.cat(out)
        if order is not None:
            logits = torch.empty_like(logits).index_copy_(0, order, logits)
        return split.in_split_order(logits)

    def predict(self, split: TensorSplit) -> np.ndarray:
        """Predictions ``[N]``: class indices, or regression values."""
        return self.task.predictions(self.predict_logits(split)).cpu().numpy()

    # --------------------------------------------------------------------- fit
    def fit(self, train: TensorSplit, dev: TensorSplit, seed: int) -> FitResult:
        cfg = self.cfg
        generator = torch.Generator().manual_seed(seed)
        criterion = self.criterion(train)
        # A model may ask for parameter groups (an in-model encoder with its own learning rate).
        groups = getattr(self.model, "optimizer_groups", None)
        params = groups(float(cfg["lr"])) if callable(groups) else self.model.parameters()
        optimizer = make_adamw(params, float(cfg["lr"]), float(cfg["weight_decay"]))
        scheduler = self.make_scheduler(optimizer)
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        batch_size, accum = int(cfg["batch_size"]), int(cfg["grad_accum"])
        clip = float(cfg["grad_clip"])
        dev_labels = dev.labels.cpu().numpy()

        best_score, best_epoch, bad_epochs = self.worst_score(), 0, 0
        best_state: dict[str, Tensor] = {}
        history: list[dict[str, float]] = []
        samples_seen, step_seconds = 0, 0.0
        fit_start = time.perf_counter()
        stopped_early = False
        epoch = 0
        for epoch in range(1, int(cfg["max_epochs"]) + 1):
            self.model.train()
            t0 = time.perf_counter()
            epoch_data = self._epoch_data(train, generator)
            # BatchNorm cannot train on a batch of one: a trailing single row is dropped.
            ranges = epoch_data.batch_ranges(batch_size, training=True)
            running = torch.zeros((), device=self.device)
            steps = 0
            optimizer.zero_grad(set_to_none=True)
            weights = loss_weights(ranges, accum)
            for i, (start, end) in enumerate(ranges):
                batch, target = epoch_data.batch(start, end)
                self.modality_dropout(batch, generator)
                with self.autocast():
                    loss = criterion(self.forward(batch).float(), target)
                scaler.scale(loss * weights[i]).backward()
                running += loss.detach()
                steps += 1
                if is_step_end(i, len(ranges), accum):
                    if clip > 0:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(self.model.parameters(), clip)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            step_seconds += time.perf_counter() - t0
            samples_seen += sum(b - a for a, b in ranges)
            train_loss = float(running) / max(steps, 1)
            if not math.isfinite(train_loss):
                raise TrainingDiverged(epoch, train_loss)

            dev_logits = self.predict_logits(dev)
            dev_score = self.dev_score(dev_logits, dev_labels)
            with torch.no_grad():  # the training loss on dev (for curves; selection uses the metric)
                dev_loss = float(criterion(dev_logits, dev.labels))
            lr = optimizer.param_groups[0]["lr"]
            if scheduler is not None:
                scheduler.step(dev_score)
            logs = {
                "epoch": epoch,
                "train_loss": train_loss,
                f"dev_{self.metric}": dev_score,
                "dev_loss": dev_loss,
                "lr": lr,
            }
            history.append(logs)
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch, logs)
            if self.is_better(dev_score, best_score):
                best_score, best_epoch, bad_epochs = dev_score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                bad_epochs += 1
                if bad_epochs >= int(cfg["patience"]):  # patience epochs without improvement
                    stopped_early = True
                    break
        if best_state:
            self.model.load_state_dict(best_state)
        return FitResult(
            best_epoch=best_epoch,
            best_dev_score=best_score,
            history=history,
            train_seconds=time.perf_counter() - fit_start,
            step_seconds=step_seconds,
            samples_seen=samples_seen,
            epochs_run=epoch,
            stopped_early=stopped_early,
            best_state=best_state,
        )
