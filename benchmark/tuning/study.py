"""Optuna tuning studies: search spaces, storage, the dev-only objective, study summaries.

* The objective is the best epoch's score on the **dev** split under the protocol's metric.
  Only the train and dev tensors are built, so no test row is seen while tuning.
* Every epoch reports the best dev score so far (``trial.report``) and asks the pruner.
* A new study first evaluates the default parameters (an enqueued trial), so its summary can
  say whether tuning improved on them.
* The study's name comes from dataset, fusion and protocol fingerprint: re-running the same
  command resumes it. Storage is SQLite (one process), a journal file (several processes on one
  machine) or any SQLAlchemy URL such as PostgreSQL (workers on several machines).
* Search spaces: the trainer's common space (learning rate, weight decay, batch size), each
  fusion's ``search_space(trial)`` (plus ``dropout`` where a fusion has one but does not search
  it), narrowed or replaced by a user file (``--space``, see :func:`load_space`).
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmbench.errors import RunFailed, UsageError
from mmbench.runner.run import Prepared, Reporter, RunRequest, SilentReporter
from mmbench.tuning.space import (
    SearchSpace,
    SpaceTrial,
    check_space,
    default_trial_params,
    default_values,
    load_space,
    suggest_all,
)
from mmbench.tuning.storage import (
    DEFAULT_ATTR,
    INTERRUPTED,
    ensure_default_trial,
    fail_orphans,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    quiet_optuna_warnings,
    storage_label,
    storage_target,
    study_key,
    study_name_for,
    tuning_seed,
    worker_id,
)
from mmbench.tuning.tuned_params import tuned_relpath


class InterruptGuard:
    """Ctrl-C handling that keeps the storage consistent.

    During training, Ctrl-C interrupts the trial at once (it is recorded as failed, reason
    ``interrupted``). During Optuna's own bookkeeping it only asks the study to stop after the
    current step, so no trial is left half-recorded; a second Ctrl-C forces the stop.
    """

    def __init__(self) -> None:
        self.training = False
        self.requested = 0

    def _handler(self, signum: int, frame: Any) -> None:
        self.requested += 1
        if self.training or self.requested > 1:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[InterruptGuard]:
        try:
            previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: keep Python's default behaviour
            yield self
            return
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    def stop_if_requested(self, study: Any, trial: Any) -> None:
        """An Optuna callback: stop the study after a trial when Ctrl-C came in between."""
        if self.requested:
            study.stop()


# -------------------------------------------------------------------------------- objective
class TrialFailed(Exception):
    """A trial that produced no dev score (diverged, out of memory, invalid parameters...)."""


class TrialReporter:
    """The reporter the trainer sees during one trial: progress, ``trial.report``, pruning."""

    def __init__(self, trial: Any, metric: str, prune: bool, progress: Reporter) -> None:
        self.trial, self.metric, self.prune, self.progress = trial, metric, prune, progress
        self.best = -math.inf
        self.max_epochs = 0

    def log(self, message: str) -> None:
        self.progress.log(message)

    def run_started(self, label: str, max_epochs: int) -> None:
        self.best = -math.inf  # a retry (out of memory) starts over
        self.max_epochs = max_epochs
        self.progress.run_started(f"trial {self.trial.number}", max_epochs)

    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None:
        import optuna

        self.progress.epoch_ended(epoch, logs)
        self.best = max(self.best, float(logs[f"dev_{self.metric}"]))
        # The best dev score so far is what the trial would end with if it stopped now.
        self.trial.report(self.best, epoch)
        # Pruning after the last epoch would save nothing and lose a finished result.
        if self.prune and epoch < self.max_epochs and self.trial.should_prune():
            self.trial.set_user_attr("pruned_at_epoch", epoch)
            raise optuna.TrialPruned(f"pruned at epoch {epoch} (best dev {self.metric} {self.best:.4f})")

    def run_ended(self, label: str, record: dict[str, Any]) -> None:
        pass


def _fail(trial: Any, reason: str) -> None:
    trial.set_user_attr("fail_reason", reason)
    raise TrialFailed(reason)


@dataclass
class TuneSetup:
    """Everything one process needs to evaluate trials (data prepared once)."""

    prep: Prepared
    fusion: str
    plugin: Any
    space: SearchSpace
    seed: int
    device: str
    progress: Reporter = field(default_factory=SilentReporter)
    guard: InterruptGuard = field(default_factory=InterruptGuard)

    @property
    def fixed(self) -> dict[str, Any]:
        return dict(self.prep.protocol["fusion"])

    @property
    def defaults(self) -> dict[str, Any]:
        return default_values(self.plugin, self.prep.protocol)


def make_objective(setup: TuneSetup) -> Callable[[Any], float]:
    """The study's objective: train on train with one seed, return the best dev score."""
    import optuna
    import torch

    from mmbench.runner.run import fit_run, is_out_of_memory
    from mmbench.training import tensors as tensor_mod

    prep, plugin = setup.prep, setup.plugin
    dev_t = torch.device(setup.device)
    # Only train and dev are built: tuning never touches a test row.
    tensors = {s: tensor_mod.split_tensors(prep.data, s, dev_t) for s in ("train", "dev")}
    spec = prep.data.input_spec()
    fixed, defaults = setup.fixed, setup.defaults
    metric = prep.protocol["metric"]

    def objective(trial: Any) -> float:
        trial.set_user_attr("worker", worker_id())
        if setup.guard.requested:  # Ctrl-C arrived while Optuna started this trial
            trial.set_user_attr("fail_reason", INTERRUPTED)
            raise KeyboardInterrupt
        is_default = bool(trial.user_attrs.get(DEFAULT_ATTR))
        space_trial = SpaceTrial(trial, setup.space, fixed, defaults, default_trial=is_default)
        try:
            fusion_values, train_values = suggest_all(space_trial, plugin)
            params = plugin.resolve_params({**fusion_values, **fixed})
            plugin.validate(spec, params)
        except UsageError as exc:
            _fail(trial, f"invalid parameters: {exc}")
        trial.set_user_attr("fusion_params", params)
        trial.set_user_attr("train_params", train_values)
        reporter = TrialReporter(trial, metric, prune=not is_default, progress=setup.progress)
        run_info = {
            "dataset": prep.data.name,
            "fusion": setup.fusion,
            "seed": setup.seed,
            "protocol": prep.protocol,
            "protocol_fingerprint": prep.protocol_fingerprint,
            "tuning_trial": trial.number,
        }
        outcome = None
        setup.guard.training = True
        try:
            outcome = fit_run(
                prep, plugin, spec, params, setup.seed, dev_t, tensors, reporter, run_info, train_values
            )
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", INTERRUPTED)
            raise
        except Exception as exc:
            reason = "out of memory" if is_out_of_memory(exc) else f"{type(exc).__name__}: {exc}"
            _fail(trial, reason)
        finally:
            setup.guard.training = False
            ended = getattr(setup.progress, "trial_ended", None)
            if callable(ended):
                ended()
            if dev_t.type == "cuda":
                torch.cuda.empty_cache()
        if outcome.failure is not None:
            _fail(trial, outcome.failure["reason"])
        fit = outcome.fit
        trial.set_user_attr("best_epoch", fit.best_epoch)
        trial.set_user_attr("epochs_run", fit.epochs_run)
        trial.set_user_attr("train_seconds", round(fit.train_seconds, 3))
        trial.set_user_attr("n_params", outcome.n_params)
        if outcome.oom_retries:
            trial.set_user_attr("oom_retries", outcome.oom_retries)
        return float(fit.best_dev_score)

    return objective


# --------------------------------------------------------------------------------- the study
@dataclass
class TuneRequest:
    """What ``mmbench tune`` was asked for."""

    run: RunRequest
    fusion: str
    trials: int | None = 20  # trials to add in this invocation (None with a timeout: until it)
    total: int | None = None  # or: finish when the study has this many finished trials
    timeout: float | None = None
    storage: str | None = None
    study_name: str | None = None
    space_file: Path | None = None
    pruner: str = "median"
    seed: int | None = None  # training seed of every trial (default: storage.tuning_seed, no protocol seed)
    sampler_seed: int | None = None


@dataclass
class TuneResult:
    study: Any
    storage: str
    created: bool
    interrupted: bool
    ran: int  # trials this invocation finished
    prep: Prepared
    failed_here: list[str] = field(default_factory=list)


def finished_count(study: Any) -> int:
    """Trials that ended (complete, pruned or failed), over all workers."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=done))


def tune(
    request: TuneRequest,
    registry: Any,
    reporter: Reporter | None = None,
    callbacks: list[Callable[[Any, Any], None]] | None = None,
) -> TuneResult:
    """Prepare the data once, open (or resume) the study and run this invocation's trials."""
    import optuna
    from optuna.trial import TrialState

    from mmbench.runner.run import prepare, resolve_device

    reporter = reporter or SilentReporter()
    if request.trials is not None and request.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {request.trials}")
    if request.total is not None and request.total < 1:
        raise UsageError(f"--total must be at least 1, got {request.total}")
    if request.timeout is not None and request.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {request.timeout}")
    registry.get("fusion", request.fusion)
    make_pruner(request.pruner, 1)  # reject a bad --pruner before any data is loaded
    space = load_space(request.space_file) if request.space_file else SearchSpace()
    storage_target(request.storage)
    device = resolve_device(request.run.device)

    plugin = registry.create("fusion", request.fusion)
    check_space(space, plugin, request.fusion)
    prep = prepare(request.run, registry, reporter)
    seed = request.seed if request.seed is not None else tuning_seed(list(prep.protocol["seeds"]))
    setup = TuneSetup(prep, request.fusion, plugin, space, seed, device, reporter)
    # Unknown --set fusion.* keys and defaults this data cannot use fail before any trial runs.
    plugin.validate(prep.data.input_spec(), plugin.resolve_params(setup.fixed))
    storage = open_storage(request.storage)

    encoders = {m: e["identity"] for m, e in prep.encoders.items()}
    key = study_key(
        prep.protocol_fingerprint, prep.data.fingerprint, prep.protocol.get("data") or {}, encoders
    )
    name = request.study_name or study_name_for(
        request.run.dataset, request.fusion, prep.protocol_fingerprint, key
    )
    attrs = {
        "dataset": request.run.dataset,
        "data_name": prep.data.name,
        "fusion": request.fusion,
        "protocol_fingerprint": prep.protocol_fingerprint,
        "dataset_fingerprint": prep.data.fingerprint,
        "study_key": key,
        "encoders": encoders,
        "data_options": prep.protocol.get("data") or {},
        "metric": prep.protocol["metric"],
        "seed": seed,
        "max_epochs": prep.protocol["train"]["max_epochs"],
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    objective = make_objective(setup)
    finished_here: list[Any] = []  # this process's trials (other workers may share the study)
    extra: list[Callable[[Any, Any], None]] = list(callbacks or [])
    extra += [lambda _study, trial: finished_here.append(trial), setup.guard.stop_if_requested]
    interrupted = False
    with setup.guard.installed():
        study, created = open_study(
            storage,
            name,
            attrs,
            sampler=make_sampler(request.sampler_seed),
            pruner=make_pruner(request.pruner, prep.protocol["train"]["max_epochs"]),
        )
        label = storage_label(request.storage)
        reporter.log(f"{'created' if created else 'resuming'} study {name} in {label}")
        orphans = fail_orphans(study)
        if orphans:
            reporter.log(f"marked trials {orphans} as failed: their worker process on this machine died")
        enqueued = default_trial_params(plugin, space, setup.fixed, setup.defaults)
        if ensure_default_trial(study, enqueued, created):
            reporter.log("the next trial evaluates the default parameters")
        n_trials = request.trials
        if request.total is not None:
            n_trials = max(0, request.total - finished_count(study))
            states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
            extra.append(optuna.study.MaxTrialsCallback(request.total, states=states))
        try:
            # No trial count but a timeout: run until the timeout.
            if (n_trials or (n_trials is None and request.timeout)) and not setup.guard.requested:
                with quiet_optuna_warnings():
                    study.optimize(
                        objective,
                        n_trials=n_trials,
                        timeout=request.timeout,
                        catch=(TrialFailed,),
                        callbacks=extra,
                        gc_after_trial=True,
                    )
        except KeyboardInterrupt:
            interrupted = True
        interrupted = interrupted or bool(setup.guard.requested)
    failed_here = [
        f"trial {t.number}: {t.user_attrs.get('fail_reason', '?')}"
        for t in finished_here
        if t.state == TrialState.FAIL
    ]
    if finished_here and len(failed_here) == len(finished_here) and not interrupted:
        raise RunFailed(f"every trial of this run failed ({'; '.join(failed_here[:3])})")
    return TuneResult(study, label, created, interrupted, len(finished_here), prep, failed_here)


# ------------------------------------------------------------------------------- summaries
def _trial_row(t: Any) -> dict[str, Any]:
    duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "value": t.value,
        "default": bool(t.user_attrs.get(DEFAULT_ATTR)),
        "params": dict(t.params),
        "fusion_params": t.user_attrs.get("fusion_params"),
        "train_params": t.user_attrs.get("train_params"),
        "best_epoch": t.user_attrs.get("best_epoch"),
        "pruned_at_epoch": t.user_attrs.get("pruned_at_epoch"),
        "fail_reason": t.user_attrs.get("fail_reason"),
        "seconds": round(duration, 2) if duration is not None else None,
    }


def summarize_study(study: Any, storage: str, top: int = 10) -> dict[str, Any]:
    """A finished (or running) study as plain data: counts, best and default trials, top trials."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "running": sum(t.state == TrialState.RUNNING for t in trials),
        "waiting": sum(t.state == TrialState.WAITING for t in trials),
    }
    complete = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: (-t.value, t.number)
    )
    defaults = [t for t in trials if t.user_attrs.get(DEFAULT_ATTR)]
    default = next((t for t in defaults if t.state == TrialState.COMPLETE), defaults[0] if defaults else None)
    best = complete[0] if complete else None
    attrs = study.user_attrs
    summary = {
        "study_name": study.study_name,
        "storage": storage,
        "dataset": attrs.get("dataset"),
        "data_name": attrs.get("data_name", attrs.get("dataset")),
        "fusion": attrs.get("fusion"),
        "metric": attrs.get("metric", "value"),
        "split": "dev",
        "seed": attrs.get("seed"),
        "protocol_fingerprint": attrs.get("protocol_fingerprint"),
        "dataset_fingerprint": attrs.get("dataset_fingerprint"),
        "study_key": attrs.get("study_key"),
        "encoders": attrs.get("encoders"),
        "counts": counts,
        "n_trials": counts["complete"] + counts["pruned"] + counts["failed"],
        "best": _trial_row(best) if best else None,
        "default": _trial_row(default) if default else None,
        "top": [_trial_row(t) for t in complete[:top]],
        "failures": [
            {"number": t.number, "reason": t.user_attrs.get("fail_reason", "?")}
            for t in trials
            if t.state == TrialState.FAIL
        ],
    }
    summary["comparison"] = compare_with_default(summary)
    return summary


def compare_with_default(summary: dict[str, Any]) -> dict[str, Any]:
    """Whether the best trial beats the default parameters on dev, and by how much."""
    best, default, metric = summary["best"], summary["default"], summary["metric"]
    if best is None:
        return {"improved": None, "delta": None, "text": "no trial completed; there is no best parameter set"}
    if default is None or default["state"] != "complete":
        if default is None:
            how = "were not evaluated"
        else:
            reason = f", {default['fail_reason']}" if default["fail_reason"] else ""
            how = f"did not complete (trial {default['number']}: {default['state']}{reason})"
        text = f"best dev {metric} {best['value']:.4f} (trial {best['number']}); the default parameters {how}"
        return {"improved": None, "delta": None, "text": text}
    delta = best["value"] - default["value"]
    if delta > 0:
        text = (
            f"tuning improved dev {metric} from {default['value']:.4f} (default parameters, trial "
            f"{default['number']}) to {best['value']:.4f} (trial {best['number']}): {delta:+.4f}"
        )
    else:
        text = (
            f"tuning did not improve on the default parameters: their dev {metric} "
            f"{default['value']:.4f} (trial {default['number']}) is the best of "
            f"{summary['counts']['complete']} completed trials"
        )
    return {"improved": delta > 0, "delta": delta, "text": text}


def export_tuned(summary: dict[str, Any], path: Path) -> Path:
    """Write the best trial's parameters and their provenance (the file ``--params tuned`` reads)."""
    import yaml

    from mmbench import __version__
    from mmbench.records import atomic_write_text

    best = summary["best"]
    if best is None:
        raise UsageError(f"study {summary['study_name']} has no completed trial to export")
    counts = summary["counts"]
    doc = {
        "dataset": summary["data_name"],
        "fusion": summary["fusion"],
        "metric": summary["metric"],
        "split": "dev",
        "best_value": round(float(best["value"]), 6),
        "best_trial": best["number"],
        "default_value": round(float(summary["default"]["value"]), 6)
        if summary["default"] and summary["default"]["value"] is not None
        else None,
        "params": best["fusion_params"] or {},
        "train": best["train_params"] or {},
        "study_name": summary["study_name"],
        "storage": summary["storage"],
        "n_trials": summary["n_trials"],
        "trials": {k: counts[k] for k in ("complete", "pruned", "failed")},
        "protocol_fingerprint": summary["protocol_fingerprint"],
        "dataset_fingerprint": summary["dataset_fingerprint"],
        "study_key": summary.get("study_key"),
        "encoders": summary.get("encoders"),
        "seed": summary["seed"],
        "mmbench_version": __version__,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    header = (
        f"# Tuned by `mmbench tune` (study {summary['study_name']}); selected on the dev split.\n"
        f"# Retrain on every protocol seed and evaluate test once:\n"
        f"#   mmbench run --fusion {summary['fusion']} --dataset {summary['dataset']} --params tuned\n"
    )
    path = Path(path)
    atomic_write_text(path, header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return path


def default_export_path(summary: dict[str, Any]) -> Path:
    """``configs/tuned/<dataset>/<fusion>.yaml``, where ``--params tuned`` looks first."""
    return tuned_relpath(summary["data_name"], summary["fusion"])


def find_study_name(storage: Any, dataset: str, fusion: str) -> str:
    """The study of (dataset, fusion) in ``storage``; the most recent one if there are several."""
    import optuna

    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    matching = [
        s
        for s in summaries
        if s.user_attrs.get("dataset") == dataset and s.user_attrs.get("fusion") == fusion
    ]
    if not matching:
        names = ", ".join(sorted(s.study_name for s in summaries)) or "(none)"
        raise UsageError(
            f"no study of fusion {fusion!r} on dataset {dataset!r} in this storage; studies: {names}"
        )
    matching.sort(key=lambda s: (s.datetime_start is not None, s.datetime_start or datetime.min))
    return matching[-1].study_name


def load_study(storage: Any, name: str) -> Any:
    """The study ``name``; an unknown name is a usage error listing the studies there."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = ", ".join(sorted(optuna.get_all_study_names(storage))) or "(none)"
        raise UsageError(f"no study named {name!r} in this storage; studies: {names}") from None


# ------------------------------------------------------------------------------------ plots
#: Finished trials below which parameter importances (fANOVA over the trials) are not drawn: with
#: fewer, the importances mostly reflect the sampler's first random draws.
MIN_TRIALS_FOR_IMPORTANCES = 10


def save_plots(study: Any, directory: Path, log: Any = None) -> list[Path]:
    """Optimisation history and parameter importances as PNG + SVG, drawn by Optuna's matplotlib
    backend and brought into the house style (``mmbench.ui.plot_style``).

    Importances are drawn only from at least ``MIN_TRIALS_FOR_IMPORTANCES`` completed trials; with
    fewer, ``log`` (a callable) is told why they are missing."""
    import matplotlib
    from optuna.trial import TrialState

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    from mmbench.ui.plot_style import house_style, restyle, save_figure

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    safe_name = re.sub(r"[^\w.-]", "_", study.study_name)
    plots = (
        ("optimization_history", ovm.plot_optimization_history),
        ("param_importances", ovm.plot_param_importances),
    )
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if complete < MIN_TRIALS_FOR_IMPORTANCES:
        plots = plots[:1]
        if log is not None:
            log(
                f"no parameter-importance plot: {complete} completed trial(s), importances need at "
                f"least {MIN_TRIALS_FOR_IMPORTANCES}"
            )
    for name, draw in plots:
        with house_style():
            try:
                with quiet_optuna_warnings(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ax = draw(study)
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue  # e.g. importances need two completed trials with different parameters
            axes = [ax] if hasattr(ax, "figure") else list(ax.flat)
            if name == "optimization_history":
                axes[0].set_ylabel(f"dev {study.user_attrs.get('metric', 'objective')}")
                axes[0].set_title(f"{study.study_name}: optimisation history")
            for each in axes:
                restyle(each)
            fig = axes[0].figure
            fig.set_size_inches(7.2, 4.2)
            fig.tight_layout()
            written.append(save_figure(fig, directory / f"{safe_name}-{name}.png"))
            plt.close(fig)
    return written
