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
from mmbench.runner.context import single_context
from mmbench.runner.run import Prepared, Reporter, RunRequest, SilentReporter
from mmbench.tasks import higher_is_better
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

# summaries, comparisons and the exported file live in mmbench.tuning.summary (re-exported)
from mmbench.tuning.summary import compare_with_default as compare_with_default
from mmbench.tuning.summary import default_export_path as default_export_path
from mmbench.tuning.summary import export_tuned as export_tuned
from mmbench.tuning.summary import find_study_name as find_study_name
from mmbench.tuning.summary import load_study as load_study
from mmbench.tuning.summary import summarize_study as summarize_study


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
        # The best dev score so far, in the metric's direction (the lowest MAE).
        self.pick = max if higher_is_better(metric) else min
        self.best = -math.inf if self.pick is max else math.inf
        self.max_epochs = 0

    def log(self, message: str) -> None:
        self.progress.log(message)

    def run_started(self, label: str, max_epochs: int) -> None:
        self.best = -math.inf if self.pick is max else math.inf  # a retry (out of memory) starts over
        self.max_epochs = max_epochs
        self.progress.run_started(f"trial {self.trial.number}", max_epochs)

    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None:
        import optuna

        self.progress.epoch_ended(epoch, logs)
        self.best = self.pick(self.best, float(logs[f"dev_{self.metric}"]))
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
    #: The dialogue context model tuned with the fusion (its search space joins the fusion's).
    context: str = "none"

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

    from mmbench.runner.context import suggest_context, tuning_context
    from mmbench.runner.run import fit_run, is_out_of_memory
    from mmbench.training import tensors as tensor_mod

    prep, plugin = setup.prep, setup.plugin
    dev_t = torch.device(setup.device)
    # Only train and dev are built: tuning never touches a test row.
    tensors = {s: tensor_mod.split_tensors(prep.data, s, dev_t) for s in ("train", "dev")}
    context_plugin, tensors = tuning_context(prep, setup.context, tensors)
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
            ctx = (context_plugin, suggest_context(prep, context_plugin, trial, is_default))
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
                prep, plugin, spec, params, setup.seed, dev_t, tensors, reporter, run_info, train_values, ctx
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
    context = single_context(request.run.contexts)
    setup = TuneSetup(prep, request.fusion, plugin, space, seed, device, reporter, context=context)
    # Unknown --set fusion.* keys and defaults this data cannot use fail before any trial runs.
    plugin.validate(prep.data.input_spec(), plugin.resolve_params(setup.fixed))
    storage = open_storage(request.storage)

    encoders = {m: e["identity"] for m, e in prep.encoders.items()}
    key = study_key(
        prep.protocol_fingerprint, prep.data.fingerprint, prep.protocol.get("data") or {}, encoders
    )
    method = request.fusion if context == "none" else f"{request.fusion}+{context}"
    name = request.study_name or study_name_for(request.run.dataset, method, prep.protocol_fingerprint, key)
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
