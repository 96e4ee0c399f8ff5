"""The seeds of one (dataset, fusion, context, protocol) cell: trained together where that applies.

``run_seeds`` trains the seeds as one stacked model (``mmbench.training.vectorised``) when
``train.seed_batching`` asks for it and the cell allows it, and otherwise one seed at a time
(``run_one``). Either way each seed gets its own record, predictions and checkpoint, written by the
same code (``runner.run.finish_run``), with ``execution.seed_batching`` = ``vectorised`` or
``sequential`` and, when a cell that asked for vectorised seeds fell back,
``execution.seed_batching_fallback`` = the reason. ``train.seed_batching`` is an execution setting,
not part of the protocol fingerprint: ``true`` (wherever the cell allows), ``false`` (never), or
``auto`` (the default: on CUDA devices; on CPU the stacked model measured slower than one seed at a
time on the reference 2-core machine, docs/PERFORMANCE.md, since small CPU models are bound by
their matrix products, which batching does not reduce).

Cost fields of a vectorised seed (``efficiency.cost_basis: vectorised cell``): ``train_seconds`` is
the seed's share of the cell's training wall time (each epoch divided equally among the seeds that
trained in it), ``peak_memory_bytes`` is the peak of the whole cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.errors import RunFailed, UsageError
from mmbench.runner.fitting import FitOutcome, build_model, is_out_of_memory, make_trainer
from mmbench.runner.methods import NO_CONTEXT, method_label
from mmbench.training.vectorised import DIALOGUE_REASON

if TYPE_CHECKING:
    from mmbench.runner.run import Prepared, Reporter, RunSetup

VECTORISED, SEQUENTIAL = "vectorised", "sequential"
CPU_REASON = (
    "train.seed_batching=auto trains one seed at a time on CPU, where vectorised seeds measured slower "
    "(docs/PERFORMANCE.md); train.seed_batching=true vectorises them"
)


def run_seeds(
    prep: Prepared,
    fusion: str,
    seeds: list[int],
    device: str,
    reporter: Reporter,
    tensors: dict | None = None,
    context: str = NO_CONTEXT,
) -> list[dict[str, Any]]:
    """Train and evaluate every seed of one (fusion, context) cell; their records in seed order."""
    from mmbench.runner.run import existing_record, finish_run, run_one, setup_run

    setups = [setup_run(prep, fusion, s, device, tensors, context) for s in seeds]
    done = {s.seed: existing_record(prep, s, reporter) for s in setups}
    pending = [s for s in setups if done[s.seed] is None]
    reason = static_reason(prep, pending)
    if reason is None:
        outcomes = fit_together(prep, pending, reporter)
        if isinstance(outcomes, str):
            reason = outcomes
            reporter.log(f"{method_label(fusion, context)}: seeds trained one at a time ({reason})")
        else:
            execution = {"seed_batching": VECTORISED, "seed_batch": [s.seed for s in pending]}
            for setup, outcome in zip(pending, outcomes, strict=True):
                done[setup.seed] = finish_run(prep, setup, outcome, reporter, execution, "vectorised cell")
    if reason is not None:
        execution = {"seed_batching": SEQUENTIAL, "seed_batching_fallback": reason}
        for setup in pending:
            done[setup.seed] = run_one(
                prep, fusion, setup.seed, device, reporter, tensors, context, execution
            )
    return [done[s] for s in seeds]


def static_reason(prep: Prepared, pending: list[RunSetup]) -> str | None:
    """Why the pending seeds train one at a time, known before any model is built (None: try)."""
    setting = prep.execution.get("seed_batching", "auto")
    if setting is False:
        return "train.seed_batching=false"
    if len(pending) < 2:
        return "one seed to train"
    if setting == "auto" and pending[0].device.type == "cpu":
        return CPU_REASON
    if prep.request.compile:
        return "--compile wraps each model's forward (torch.compile and vmap are not combined)"
    if prep.data.in_model:
        return "an encoder is trained inside the model"
    if getattr(pending[0].context_plugin, "uses_dialogues", False):
        return DIALOGUE_REASON
    return None


def fit_together(prep: Prepared, setups: list[RunSetup], reporter: Reporter) -> list[FitOutcome] | str:
    """Build each seed's model under its seed and train them as one stacked model; the outcomes in
    order, or the reason they cannot be (the caller then trains them one at a time)."""
    import torch

    from mmbench.registry.manager import call_lifecycle
    from mmbench.training.memory import PeakMemory
    from mmbench.training.trainer import TrainingDiverged
    from mmbench.training.vectorised import SeedBatch, vectorise_blocker

    first = setups[0]
    train_cfg = {**prep.protocol["train"], **first.train_overrides}
    peak = PeakMemory(str(first.device)).start()
    trainers = []
    try:
        for setup in setups:
            torch.manual_seed(setup.seed)  # exactly as fit_run: the members start from its weights
            np.random.seed(setup.seed)
            model = build_model(
                setup.plugin, setup.spec, setup.params, prep.data, prep.registry,
                (setup.context_plugin, setup.context_params),
            )  # fmt: skip
            trainers.append(trainer_for(prep, setup, model, train_cfg))
    except (UsageError, RunFailed):
        raise
    except Exception as exc:  # the fusion's own code: the sequential path fails each run alone
        peak.stop()
        return f"building a model raised {type(exc).__name__}"
    tensors = first.tensors
    reason = vectorise_blocker(trainers, tensors["train"])
    batch = None
    if reason is None:
        batch = SeedBatch(trainers, [s.seed for s in setups])
        reason = batch.probe(tensors["train"])
    if reason is not None or batch is None:
        peak.stop()
        return reason or "not vectorisable"
    seeds = ",".join(str(s.seed) for s in setups)
    reporter.run_started(f"{first.label} seeds {seeds} (vectorised)", int(train_cfg["max_epochs"]))
    for setup in setups:
        call_lifecycle("mmbench_run_start", run=setup.run_info)

    def on_epoch(epoch: int, logs: dict[int, dict[str, float]]) -> None:
        reporter.epoch_ended(epoch, logs[min(logs)])

    try:
        results = batch.fit(tensors["train"], tensors["dev"], on_epoch)
    except (UsageError, RunFailed):
        raise
    except Exception as exc:
        what = "ran out of memory" if is_out_of_memory(exc) else f"raised {type(exc).__name__}: {exc}"
        return f"the stacked model {what}"[:300]
    finally:
        peak.stop()
    n_params = sum(p.numel() for p in trainers[0].model.parameters())
    outcomes = []
    for trainer, result in zip(trainers, results, strict=True):
        fit, failure = result, None
        if isinstance(result, TrainingDiverged):
            fit, failure = None, {"reason": str(result), "epoch": result.epoch}
        outcomes.append(
            FitOutcome(trainer, fit, failure, n_params, peak.bytes, dict(train_cfg), 0, peak.source)
        )
    return outcomes


def trainer_for(prep: Prepared, setup: RunSetup, model: Any, train_cfg: dict[str, Any]) -> Any:
    """The member's :class:`Trainer` (its epoch callback calls the plugins' epoch hook)."""
    from mmbench.registry.manager import call_lifecycle

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        call_lifecycle("mmbench_epoch_end", run=setup.run_info, epoch=epoch, logs=logs)

    return make_trainer(prep, model, train_cfg, setup.spec, setup.device, on_epoch)


class _Locks:
    """The locks of the cells whose seeds train together: one heartbeat touches them all."""

    def __init__(self, locks: list[Any]) -> None:
        self.locks = locks

    def heartbeat(self) -> None:
        for lock in self.locks:
            lock.heartbeat()

    def release(self) -> None:
        for lock in self.locks:
            lock.release()


def sweep_cells_together(
    prep: Prepared, cells: list[Any], request: Any, device: str, tensors: Any, reporter: Any
) -> list[Any]:
    """A sweep's cells of one dataset spec, the unfinished seeds of each (fusion, context) trained
    together (``run_seeds``) while this worker holds their cells' locks; results in cell order.

    A cell another worker holds is left to it (``busy``); one finished meanwhile is ``existing``.
    """
    from mmbench.records import load_record
    from mmbench.runner.run import run_record_path
    from mmbench.runner.sweep import CellLock, CellResult, Heartbeat, cell_result, finished_record, lock_path

    results: dict[Any, Any] = {}
    groups: dict[tuple[str, str], list[Any]] = {}
    for cell in cells:
        groups.setdefault((cell.fusion, cell.context), []).append(cell)
    for (fusion, context), group in groups.items():
        claimed, locks = [], _Locks([])
        for cell in group:
            path = run_record_path(prep, fusion, cell.seed, context)
            done = finished_record(load_record(path), request.retry_failed, prep.data.fingerprint)
            if done is not None:
                results[cell] = cell_result(cell, "existing", done)
                continue
            lock = CellLock(lock_path(path), request.stale_after_hours)
            if not lock.acquire():
                reporter.log(f"{cell.label()}: held by another worker ({lock.path.name}), left to it")
                results[cell] = CellResult(cell, "busy", note="locked by another worker")
                continue
            if lock.took_over is not None:
                reporter.log(f"{cell.label()}: took over a stale lock ({lock.took_over})")
            # Another worker may have finished the cell between our check and our lock.
            done = finished_record(load_record(path), request.retry_failed, prep.data.fingerprint)
            if done is not None:
                lock.release()
                results[cell] = cell_result(cell, "existing", done)
                continue
            claimed.append(cell)
            locks.locks.append(lock)
        if not claimed:
            continue
        seeds = [c.seed for c in claimed]
        reporter.log(f"{claimed[0].dataset} {claimed[0].method} seeds {', '.join(map(str, seeds))}")
        try:
            records = run_seeds(prep, fusion, seeds, device, Heartbeat(reporter, locks), tensors(), context)
        finally:
            locks.release()
        for cell, record in zip(claimed, records, strict=True):
            results[cell] = cell_result(cell, "trained" if record.get("status") == "ok" else "failed", record)
    return [results[c] for c in cells]
