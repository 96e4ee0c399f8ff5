"""Vectorised seeds: the seeds of one (dataset, fusion, protocol) cell trained as one stacked model.

Each member is the model the sequential path trains for its seed: built under
``torch.manual_seed(seed)`` (by the runner), wrapped in its own
:class:`~mmbench.training.trainer.Trainer` (same loss, dev score, selection and scheduler seams).
The members' parameters and buffers are stacked along a new leading axis (``[S, ...]``) and one
forward/backward runs all of them through ``torch.func.vmap`` over ``torch.func.functional_call``
(dropout masks differ per member: ``randomness="different"``). Per member, exactly as in
:meth:`Trainer.fit`:

* its own ``torch.Generator().manual_seed(seed)`` draws the epoch order and the modality-dropout
  masks with the same call sequence, so its batches are those of its sequential run;
* its own fused AdamW and ReduceLROnPlateau over its own parameters, which are views of one row of
  the stacked tensors (the optimizer updates the stacked model in place); gradient clipping per
  member;
* its own early stopping, best checkpoint and history; a member that stops (patience, or a NaN/inf
  training loss, which fails that member only) leaves the stack: it is no longer computed or updated.

Numbers equal the sequential path's up to float reassociation (batched matrix products); dropout
masks come from the global generator in another order, so with dropout > 0 members are valid but not
bitwise the sequential runs. Time: each epoch's wall time is divided equally among the members that
trained in it (``train_seconds`` of a member is its share of the cell).

What cannot be vectorised is refused by :func:`vectorise_blocker` / :meth:`SeedBatch.probe` with a
reason; the runner then trains the seeds one at a time (``runner.seed_batching``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from mmbench.training.dialogue import DialogueSplit
from mmbench.training.tensors import TensorSplit
from mmbench.training.trainer import (
    FitResult,
    Trainer,
    TrainingDiverged,
    is_step_end,
    loss_weights,
    make_adamw,
)

#: Called after each epoch with the epoch and ``{member index: logs}`` of the members that trained.
CellCallback = Callable[[int, dict[int, dict[str, float]]], None]
DIALOGUE_REASON = (
    "dialogue batches: each seed shuffles whole dialogues, so the members' batches differ in size"
)
#: Largest difference between a member's vmapped and its own eval-mode outputs that the probe accepts.
PROBE_TOLERANCE = 1e-3


def vectorise_blocker(trainers: list[Trainer], train: TensorSplit) -> str | None:
    """Why these members cannot train as one stacked model, or None (checks without running them).

    Refused: fewer than two members; ``--compile``; fp16 (loss scaling is per run); dialogue batches
    (each seed shuffles whole dialogues, so members' batches differ in size); a model with its own
    optimizer groups (an in-model encoder); members whose parameters or buffers differ in name, shape
    or dtype (a fusion whose architecture depends on the seed).
    """
    if len(trainers) < 2:
        return "one seed to train"
    first = trainers[0]
    if first.forward is not first.model:
        return "--compile wraps each model's forward (torch.compile and vmap are not combined)"
    if first.amp_dtype == torch.float16:
        return "fp16 trains with a loss scaler per run"
    if isinstance(train, DialogueSplit):
        return DIALOGUE_REASON
    if first.cfg.get("length_bucketing"):
        return "train.length_bucketing orders each epoch by text length"
    if any(callable(getattr(t.model, "optimizer_groups", None)) for t in trainers):
        return "the model has its own optimizer groups (an encoder trained inside it)"
    layout = _layout(first.model)
    if any(_layout(t.model) != layout for t in trainers[1:]):
        return "the members' parameters differ in name, shape or dtype (the architecture depends on the seed)"
    return None


def _layout(model: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return [(n, tuple(t.shape), t.dtype) for n, t in tensors]


class SeedBatch:
    """Trains ``trainers`` (one per seed, models built under their seeds) as one stacked model.

    ``fit`` returns, per member in order, its :class:`FitResult` or the :class:`TrainingDiverged`
    that ended it. Afterwards every member's model holds its best-dev weights in its own memory.
    """

    def __init__(self, trainers: list[Trainer], seeds: list[int]) -> None:
        if len(trainers) != len(seeds):
            raise ValueError("one seed per member")
        self.trainers, self.seeds = trainers, list(seeds)
        first = trainers[0]
        self.cfg, self.device = first.cfg, first.device
        # The module functional_call runs with the stacked tensors (a copy: the members' own modules
        # keep their parameter objects, which become views of the stacked rows below).
        self.base = copy.deepcopy(first.model)
        self.param_names = [n for n, _ in first.model.named_parameters()]
        self.buffer_names = [n for n, _ in first.model.named_buffers()]
        self.params = {n: self._stack(n, "named_parameters").requires_grad_() for n in self.param_names}
        self.buffers = {n: self._stack(n, "named_buffers") for n in self.buffer_names}
        for i, t in enumerate(trainers):
            for n, p in t.model.named_parameters():
                p.data = self.params[n].detach()[i]
            for n, b in t.model.named_buffers():
                b.data = self.buffers[n][i]

    def _stack(self, name: str, kind: str) -> Tensor:
        return torch.stack([dict(getattr(t.model, kind)())[name].detach() for t in self.trainers])

    # ----------------------------------------------------------------- the stacked model
    def _state(self, active: list[int]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Parameters and buffers of the ``active`` members (all: the stacked tensors themselves)."""
        if len(active) == len(self.trainers):
            return self.params, self.buffers
        idx = torch.tensor(active, device=self.device)
        params = {n: p.index_select(0, idx) for n, p in self.params.items()}
        return params, {n: b.index_select(0, idx) for n, b in self.buffers.items()}

    def _keep_buffers(self, active: list[int], buffers: dict[str, Tensor]) -> None:
        """Write the updated buffers (BatchNorm statistics) of a subset back into the stack."""
        if len(active) < len(self.trainers) and buffers:
            idx = torch.tensor(active, device=self.device)
            for n, b in buffers.items():
                self.buffers[n].index_copy_(0, idx, b)

    def _outputs(
        self, params: dict[str, Tensor], buffers: dict[str, Tensor], batch: dict[str, Tensor]
    ) -> Tensor:
        with self.trainers[0].autocast():
            return functional_call(self.base, {**params, **buffers}, (batch,)).float()

    def _losses(
        self, params: dict[str, Tensor], buffers: dict[str, Tensor], batch: dict[str, Tensor], target: Tensor
    ) -> Tensor:
        """Per-member training losses ``[A]`` of a stacked batch (inputs ``[A, B, ...]``)."""

        def member(p: dict[str, Tensor], b: dict[str, Tensor], x: dict[str, Tensor], y: Tensor) -> Tensor:
            return self.criterion(self._outputs(p, b, x), y)

        return vmap(member, randomness="different")(params, buffers, batch, target)

    @torch.no_grad()
    def _dev_logits(self, active: list[int], split: TensorSplit) -> Tensor:
        """Eval-mode logits ``[A, N, C]`` of the active members for a whole split (shared inputs)."""
        self.base.eval()
        params, buffers = self._state(active)
        run = vmap(self._outputs, in_dims=(0, 0, None), randomness="different")
        eval_bs = self.trainers[0].eval_rows(split)
        out = [run(params, buffers, split.batch(a, b)[0]) for a, b in split.batch_ranges(eval_bs)]
        return torch.cat(out, dim=1)

    def probe(self, train: TensorSplit) -> str | None:
        """Run the stacked model once on a few train rows; a reason when vmap cannot run it or its
        eval-mode outputs differ from the members' own (None: it can be vectorised).

        The training-mode pass works on copies of the buffers, so BatchNorm statistics are untouched.
        """
        rows = min(len(train), 8)
        batch, target = train.batch(0, rows)
        members = list(range(len(self.trainers)))
        self.criterion = self.trainers[0].criterion(train)
        try:
            self.base.train()
            stacked = {k: v.expand(len(members), *v.shape) for k, v in batch.items()}
            buffers = {n: b.clone() for n, b in self.buffers.items()}
            losses = self._losses(self.params, buffers, stacked, target.expand(len(members), -1))
            torch.autograd.grad(losses.sum(), list(self.params.values()), allow_unused=True)
            together = self._dev_logits(members, TensorSplit(batch, target))
        except Exception as exc:  # the model does something vmap cannot batch (data-dependent shapes...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"torch.vmap cannot run this model ({type(exc).__name__}: {first[:160]})"
        with torch.no_grad():
            for i, t in enumerate(self.trainers):
                alone = t.predict_logits(TensorSplit(batch, target))
                diff = float((together[i] - alone).abs().max()) if alone.numel() else 0.0
                if not diff <= PROBE_TOLERANCE:
                    return f"the stacked model's outputs differ from seed {self.seeds[i]}'s own by {diff:.3g}"
        return None

    # ----------------------------------------------------------------------------- fit
    def fit(
        self, train: TensorSplit, dev: TensorSplit, on_epoch_end: CellCallback | None = None
    ) -> list[FitResult | TrainingDiverged]:
        """Train every member on ``train``, select each on ``dev``; see the module docstring."""
        cfg, trainers = self.cfg, self.trainers
        n = len(trainers)
        self.criterion = trainers[0].criterion(train)
        generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        lr, wd = float(cfg["lr"]), float(cfg["weight_decay"])
        optimizers = [make_adamw(t.model.parameters(), lr, wd) for t in trainers]
        schedulers = [t.make_scheduler(o) for t, o in zip(trainers, optimizers, strict=True)]
        member_params = [list(t.model.named_parameters()) for t in trainers]
        batch_size, accum, clip = int(cfg["batch_size"]), int(cfg["grad_accum"]), float(cfg["grad_clip"])
        dev_labels = dev.labels.cpu().numpy()
        dropping = trainers[0].dropout_rates is not None or float(cfg.get("modality_dropout", 0.0)) > 0
        states = [_Member(t.worst_score()) for t in trainers]
        active = list(range(n))
        for epoch in range(1, int(cfg["max_epochs"]) + 1):
            t0 = time.perf_counter()
            self.base.train()
            orders = torch.stack([trainers[i].epoch_order(train.labels, generators[i]) for i in active])
            orders = orders.to(train.labels.device)
            # BatchNorm cannot train on a batch of one: a trailing single row is dropped.
            ranges = train.batch_ranges(batch_size, training=True)
            weights = loss_weights(ranges, accum)
            running = torch.zeros(len(active), device=self.device)
            for i, (start, end) in enumerate(ranges):
                # One gather per batch: each member's rows, contiguous ``[A, B, ...]``.
                rows = orders[:, start:end]
                batch = {k: _gather(v, rows) for k, v in train.inputs.items()}
                if dropping:
                    batch = self._modality_dropout(batch, active, generators)
                params, buffers = self._state(active)
                losses = self._losses(params, buffers, batch, _gather(train.labels, rows))
                (losses * weights[i]).sum().backward()
                self._keep_buffers(active, buffers)
                running += losses.detach()
                if is_step_end(i, len(ranges), accum):
                    self._step(active, member_params, optimizers, clip)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            step_seconds = time.perf_counter() - t0
            mean_losses = (running / max(len(ranges), 1)).tolist()
            trained = list(active)
            for j, m in enumerate(trained):
                states[m].epochs_run, states[m].samples_seen = epoch, states[m].samples_seen + ranges[-1][1]
                states[m].step_seconds += step_seconds / len(trained)
                if not math.isfinite(mean_losses[j]):
                    states[m].failure = TrainingDiverged(epoch, mean_losses[j])
                    active.remove(m)
            losses_of = dict(zip(trained, mean_losses, strict=True))
            logs = self._select(epoch, active, dev, dev_labels, losses_of, optimizers, schedulers, states)
            seconds = time.perf_counter() - t0
            for m in trained:
                states[m].train_seconds += seconds / len(trained)
            if on_epoch_end is not None and logs:
                on_epoch_end(epoch, logs)
            active = [m for m in active if not states[m].stopped_early]
            if not active:
                break
        return self._finish(states)

    def _modality_dropout(
        self, batch: dict[str, Tensor], active: list[int], generators: list[torch.Generator]
    ) -> dict[str, Tensor]:
        """Each member's own modality-dropout draws (its trainer's helper, its generator)."""
        rows = []
        for j, m in enumerate(active):
            own = {k: v[j] for k, v in batch.items()}
            self.trainers[m].modality_dropout(own, generators[m])
            rows.append(own)
        return {k: torch.stack([r[k] for r in rows]) for k in batch}

    def _step(
        self,
        active: list[int],
        member_params: list[list[tuple[str, nn.Parameter]]],
        optimizers: list[torch.optim.Optimizer],
        clip: float,
    ) -> None:
        """One optimizer step per active member on its row of the stacked gradients."""
        for m in active:
            for name, p in member_params[m]:
                grad = self.params[name].grad
                p.grad = None if grad is None else grad[m]
            if clip > 0:
                nn.utils.clip_grad_norm_([p for _, p in member_params[m]], clip)
            optimizers[m].step()
            optimizers[m].zero_grad(set_to_none=True)
        for p in self.params.values():
            p.grad = None

    def _select(
        self,
        epoch: int,
        active: list[int],
        dev: TensorSplit,
        dev_labels: Any,
        losses_of: dict[int, float],
        optimizers: list[torch.optim.Optimizer],
        schedulers: list[Any],
        states: list[_Member],
    ) -> dict[int, dict[str, float]]:
        """Dev score, scheduler, history, best checkpoint and patience of each active member."""
        if not active:
            return {}
        dev_logits = self._dev_logits(active, dev)
        out: dict[int, dict[str, float]] = {}
        for j, m in enumerate(active):
            t, state = self.trainers[m], states[m]
            logits = dev.in_split_order(dev_logits[j])
            score = t.dev_score(logits, dev_labels)
            with torch.no_grad():
                dev_loss = float(self.criterion(logits, dev.labels))
            lr = optimizers[m].param_groups[0]["lr"]
            if schedulers[m] is not None:
                schedulers[m].step(score)
            logs = {
                "epoch": epoch,
                "train_loss": losses_of[m],
                f"dev_{t.metric}": score,
                "dev_loss": dev_loss,
                "lr": lr,
            }
            state.history.append(logs)
            if t.on_epoch_end is not None:
                t.on_epoch_end(epoch, logs)
            out[m] = logs
            if t.is_better(score, state.best_score):
                state.best_score, state.best_epoch, state.bad_epochs = score, epoch, 0
                state.best_state = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
            else:
                state.bad_epochs += 1
                state.stopped_early = state.bad_epochs >= int(self.cfg["patience"])
        return out

    def _finish(self, states: list[_Member]) -> list[FitResult | TrainingDiverged]:
        """Give every member its own memory back, holding its best-dev weights; the results."""
        results: list[FitResult | TrainingDiverged] = []
        for t, state in zip(self.trainers, states, strict=True):
            for p in t.model.parameters():
                p.data = p.data.clone()
            for b in t.model.buffers():
                b.data = b.data.clone()
            if state.failure is not None:
                results.append(state.failure)
                continue
            if state.best_state:
                t.model.load_state_dict(state.best_state)
            results.append(
                FitResult(
                    best_epoch=state.best_epoch,
                    best_dev_score=state.best_score,
                    history=state.history,
                    train_seconds=state.train_seconds,
                    step_seconds=state.step_seconds,
                    samples_seen=state.samples_seen,
                    epochs_run=state.epochs_run,
                    stopped_early=state.stopped_early,
                    best_state=state.best_state,
                )
            )
        self.params, self.buffers = {}, {}
        return results


def _gather(values: Tensor, rows: Tensor) -> Tensor:
    """``values[rows]`` for a ``[A, B]`` index: ``[A, B, ...]``, contiguous."""
    return values.index_select(0, rows.reshape(-1)).view(*rows.shape, *values.shape[1:])


class _Member:
    """One member's selection state (as the locals of :meth:`Trainer.fit`)."""

    def __init__(self, worst_score: float) -> None:
        self.best_score, self.best_epoch, self.bad_epochs = worst_score, 0, 0
        self.best_state: dict[str, Tensor] = {}
        self.history: list[dict[str, float]] = []
        self.train_seconds = self.step_seconds = 0.0
        self.samples_seen = self.epochs_run = 0
        self.stopped_early = False
        self.failure: TrainingDiverged | None = None
