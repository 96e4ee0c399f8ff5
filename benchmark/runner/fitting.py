"""Training one run: build the fusion's model under the seed, fit it, and turn known failures
(divergence, a plugin's error, out of memory) into a failed run or a retry with a smaller batch.
The run's own peak memory is measured from before the model is built (``training.memory``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.data import MultimodalData
from mmbench.errors import PluginError, RunFailed, UsageError
from mmbench.runner.faults import fusion_origin, plugin_failure
from mmbench.tasks import task_of

if TYPE_CHECKING:
    from mmbench.runner.run import Prepared, Reporter


def build_model(
    plugin: Any, spec: Any, params: dict, data: MultimodalData, registry: Any, context: Any = None
) -> Any:
    """The fusion's model, wrapped with any encoder trained inside it (finetune mode); with a
    context model ``(plugin, params)``, the dialogue model around it (``runner.context``)."""
    from mmbench.runner.context import dialogue_model
    from mmbench.training.in_model import attach_encoders

    if context is None or not context[0].uses_dialogues:
        return attach_encoders(plugin.build(spec, params), data, registry)
    return dialogue_model(plugin, spec, params, data, registry, context)


def make_trainer(
    prep: Prepared,
    model: Any,
    train_cfg: dict[str, Any],
    spec: Any,
    device: Any,
    on_epoch_end: Any = None,
    compile: bool = False,
) -> Any:
    """The :class:`~mmbench.training.trainer.Trainer` of one run: the protocol's metric, the data's
    task, the request's precision, the fusion's modalities."""
    from mmbench.training.trainer import Trainer

    return Trainer(
        model,
        train_cfg,
        prep.protocol["metric"],
        task_of(prep.data),
        device,
        precision=prep.request.precision,
        on_epoch_end=on_epoch_end,
        modalities=spec.names,
        compile=compile,
    )


@dataclass
class FitOutcome:
    trainer: Any
    fit: Any  # FitResult, or None when the run failed
    failure: dict[str, Any] | None
    n_params: int
    peak_bytes: int
    train_cfg: dict[str, Any]
    oom_retries: int
    peak_source: str = ""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's out-of-memory error (CUDA or otherwise)."""
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom_type)


def fit_run(
    prep: Prepared,
    plugin: Any,
    spec: Any,
    params: dict[str, Any],
    seed: int,
    dev_t: Any,
    tensors: dict,
    reporter: Reporter,
    run_info: dict[str, Any],
    train_overrides: dict[str, Any] | None = None,
    context: tuple[Any, dict[str, Any]] | None = None,
) -> FitOutcome:
    """Build the model under the seed and train it, turning known failures into a failed run.

    * NaN/inf loss -> failed, with the epoch.
    * Out of memory -> retry from scratch with half the batch and twice the gradient
      accumulation (the same effective batch), up to batch size 1; recorded in the record.
    * A plugin raising in a lifecycle hook -> failed, naming the plugin.

    ``train_overrides`` (tuned trainer values) update a copy of ``protocol["train"]`` for this
    run only, so the protocol and its fingerprint stay those of the untuned runs.
    """
    import torch

    from mmbench.registry.manager import call_lifecycle
    from mmbench.runner.methods import method_label
    from mmbench.training.memory import PeakMemory
    from mmbench.training.trainer import TrainingDiverged

    protocol = prep.protocol
    train_cfg = {**protocol["train"], **(train_overrides or {})}
    retries = 0

    # What the reporter raises (a tuning pruner's TrialPruned, say) is not the fusion's fault.
    from_reporter: list[BaseException] = []

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        try:
            reporter.epoch_ended(epoch, logs)
        except BaseException as exc:
            from_reporter.append(exc)
            raise
        call_lifecycle("mmbench_epoch_end", run=run_info, epoch=epoch, logs=logs)

    origin = fusion_origin(prep.registry, run_info["fusion"])
    while True:
        torch.manual_seed(seed)
        np.random.seed(seed)
        # The run's own memory: from before the model is built (weights, optimizer state,
        # gradients, activations); the data and the runtime are the baseline (training.memory).
        peak = PeakMemory(str(dev_t)).start()
        try:
            model = build_model(plugin, spec, params, prep.data, prep.registry, context)
        except (UsageError, RunFailed):
            raise
        except Exception as exc:  # the fusion's own code: fail this run only
            failure = plugin_failure(origin, "build", exc)
            return FitOutcome(None, None, failure, 0, 0, train_cfg, retries)
        n_params = sum(p.numel() for p in model.parameters())
        trainer = make_trainer(prep, model, train_cfg, spec, dev_t, on_epoch, compile=prep.request.compile)
        failure = None
        fit = None
        label = method_label(run_info["fusion"], run_info.get("context"))
        reporter.run_started(f"{label} seed {seed}", train_cfg["max_epochs"])
        try:
            call_lifecycle("mmbench_run_start", run=run_info)
            fit = trainer.fit(tensors["train"], tensors["dev"], seed)
        except TrainingDiverged as exc:
            failure = {"reason": str(exc), "epoch": exc.epoch}
        except PluginError as exc:
            failure = {"reason": str(exc), "epoch": None}
        except (UsageError, RunFailed):
            raise
        except Exception as exc:
            if exc in from_reporter:
                raise
            if not is_out_of_memory(exc):
                # The fusion's forward or backward (wrong logits shape, a bug): this run fails.
                failure = plugin_failure(origin, "training", exc)
                return FitOutcome(trainer, None, failure, n_params, peak.bytes, train_cfg, retries)
            if train_cfg["batch_size"] <= 1:
                raise
            del model, trainer
            if dev_t.type == "cuda":
                torch.cuda.empty_cache()
            train_cfg["batch_size"] = max(1, train_cfg["batch_size"] // 2)
            train_cfg["grad_accum"] = train_cfg["grad_accum"] * 2
            retries += 1
            reporter.log(
                f"out of memory: retrying with batch_size {train_cfg['batch_size']} x "
                f"grad_accum {train_cfg['grad_accum']} (same effective batch)"
            )
            continue
        finally:
            peak.stop()
        return FitOutcome(trainer, fit, failure, n_params, peak.bytes, train_cfg, retries, peak.source)
