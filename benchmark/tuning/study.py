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
import io
import math
import os
import re
import signal
import socket
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmbench.errors import RunFailed, UsageError
from mmbench.runner.run import Prepared, Reporter, RunRequest, SilentReporter
from mmbench.tuning.tuned_params import TUNABLE_TRAIN, tuned_relpath

TRAIN_PREFIX = "train."
#: The SQLite file used when no --storage is given.
DEFAULT_STORAGE = Path("runs") / "tuning" / "mmbench-tuning.db"
JOURNAL_SUFFIXES = (".log", ".journal")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
PRUNERS = ("median", "none", "hyperband")
#: User attribute marking the trial that evaluates the default parameters.
DEFAULT_ATTR = "mmbench_default"
#: Study user attributes that must match when a study is resumed.
IDENTITY_ATTRS = ("dataset", "fusion", "protocol_fingerprint", "metric", "seed")
INTERRUPTED = "interrupted"


# ---------------------------------------------------------------------------- search spaces
@dataclass(frozen=True)
class ParamSpec:
    """One parameter's space: a float or int range, a list of choices, or a fixed value."""

    kind: str  # float | int | categorical | fixed
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None

    def suggest(self, trial: Any, name: str) -> Any:
        """Ask ``trial`` for a value of ``name`` from this space."""
        if self.kind == "float":
            return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log, step=step)
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        return self.value

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in this space (the default trial suggests only such values)."""
        if self.kind == "categorical":
            return any(value == c and type(value) is type(c) for c in self.choices)
        if self.kind == "fixed":
            return value == self.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and int(value) != value:
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step:
            k = (value - self.low) / self.step
            return math.isclose(k, round(k), abs_tol=1e-9)
        return True


@dataclass
class SearchSpace:
    """A user's narrowing or replacement of the declared spaces (``--space FILE``).

    ``params`` maps a fusion parameter name, or ``train.<option>``, to its space. With
    ``replace`` only the listed parameters are searched; the others keep their defaults.
    """

    params: dict[str, ParamSpec] = field(default_factory=dict)
    replace: bool = False
    source: str | None = None


_CATEGORICAL_TYPES = (type(None), bool, int, float, str)


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string; a researcher means the number."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def parse_param_spec(name: str, raw: Any, source: str) -> ParamSpec:
    """Read one entry of a space file: ``{type: float|int, low, high, log, step}``,
    ``{type: categorical, choices: [...]}``, a list (choices) or a scalar (fixed)."""
    where = f"{source}: {name}"
    if isinstance(raw, list):
        raw = {"type": "categorical", "choices": raw}
    if not isinstance(raw, dict):
        if not isinstance(raw, _CATEGORICAL_TYPES):
            raise UsageError(f"{where}: expected a number, string, list of choices or a mapping")
        return ParamSpec("fixed", value=raw)
    kind = raw.get("type")
    if kind == "categorical":
        unknown = set(raw) - {"type", "choices"}
        choices = raw.get("choices")
        if unknown:
            raise UsageError(f"{where}: unknown key {sorted(unknown)[0]!r} (categorical takes choices)")
        if not isinstance(choices, list) or not choices:
            raise UsageError(f"{where}: choices must be a non-empty list")
        if not all(isinstance(c, _CATEGORICAL_TYPES) for c in choices):
            raise UsageError(f"{where}: choices must be numbers, strings, booleans or null")
        return ParamSpec("categorical", choices=tuple(choices))
    if kind not in ("float", "int"):
        raise UsageError(f"{where}: type must be float, int or categorical, got {kind!r}")
    unknown = set(raw) - {"type", "low", "high", "log", "step"}
    if unknown:
        raise UsageError(f"{where}: unknown key {sorted(unknown)[0]!r} (a range takes low, high, log, step)")
    low, high = _number(raw.get("low")), _number(raw.get("high"))
    for key, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise UsageError(f"{where}: {key} must be a number, got {v!r}")
        if kind == "int" and int(v) != v:
            raise UsageError(f"{where}: {key} must be an integer for type int, got {v!r}")
    if low > high:
        raise UsageError(f"{where}: low ({low}) is greater than high ({high})")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise UsageError(f"{where}: log must be true or false")
    if log and low <= 0:
        raise UsageError(f"{where}: a log range needs low > 0, got {low}")
    step = _number(raw.get("step"))
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0):
        raise UsageError(f"{where}: step must be a positive number, got {step!r}")
    if step is not None and log:
        raise UsageError(f"{where}: step and log cannot be combined")
    cast = float if kind == "float" else int
    return ParamSpec(kind, low=cast(low), high=cast(high), log=log, step=step)


def parse_space(doc: Any, source: str) -> SearchSpace:
    """A :class:`SearchSpace` from a parsed space file (a mapping; ``replace`` is reserved)."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise UsageError(f"{source}: a search space file holds a mapping of parameter names")
    replace = doc.get("replace", False)
    if not isinstance(replace, bool):
        raise UsageError(f"{source}: replace must be true or false")
    params = {str(k): parse_param_spec(str(k), v, source) for k, v in doc.items() if k != "replace"}
    return SearchSpace(params=params, replace=replace, source=source)


def load_space(path: Path) -> SearchSpace:
    """Read a ``--space`` YAML file (see docs/tuning.md for the format)."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--space {path}: no such file") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--space {path}: not valid YAML: {exc}") from None
    return parse_space(doc, str(path))


def check_space(space: SearchSpace, plugin: Any, fusion: str) -> None:
    """Every name in the user's space must be a parameter of the fusion or a tunable train option."""
    for name in space.params:
        if name.startswith(TRAIN_PREFIX):
            if name[len(TRAIN_PREFIX) :] not in TUNABLE_TRAIN:
                raise UsageError(
                    f"{space.source}: {name} cannot be tuned (tunable trainer options: "
                    f"{', '.join(TRAIN_PREFIX + k for k in TUNABLE_TRAIN)}); the rest of train is the "
                    "protocol, change it with --set"
                )
        elif name not in plugin.default_params:
            known = ", ".join(sorted(plugin.default_params)) or "(none)"
            raise UsageError(f"{space.source}: {fusion} has no parameter {name!r}; known: {known}")


#: The trainer's common space, searched for every fusion.
COMMON_TRAIN_SPACE = {
    "lr": ParamSpec("float", low=1e-4, high=1e-2, log=True),
    "weight_decay": ParamSpec("float", low=1e-6, high=1e-2, log=True),
    "batch_size": ParamSpec("categorical", choices=(32, 64, 128, 256)),
}
#: Searched for a fusion that has a ``dropout`` parameter its own space leaves out.
COMMON_DROPOUT = ParamSpec("float", low=0.0, high=0.5)


class SpaceTrial:
    """What a fusion's ``search_space`` receives: every suggestion passes through the user's space.

    A name fixed by the protocol (``--set fusion.NAME=...``) or by a plain value in the space
    file is not searched; a name the file redefines uses the file's space; with ``replace`` a
    name the file does not list keeps its default. In the default trial every value is the
    default, suggested (as the enqueued value) where it lies in the space so the sampler learns
    from it. Anything else (``number``, ``report``...) is the wrapped trial's.
    """

    def __init__(
        self,
        trial: Any,
        space: SearchSpace,
        fixed: dict[str, Any],
        defaults: dict[str, Any],
        default_trial: bool = False,
    ) -> None:
        self.trial = trial
        self.space = space
        self.fixed = fixed
        self.defaults = defaults
        self.default_trial = default_trial
        self.values: dict[str, Any] = {}
        #: Names whose value came from the sampler (or the enqueued default), not a fixed value.
        self.searched: dict[str, Any] = {}
        #: Names that keep their default because ``replace`` left them out.
        self.kept_default: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.trial, name)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return self.suggest(name, ParamSpec("float", low=low, high=high, log=log, step=step))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self.suggest(name, ParamSpec("int", low=low, high=high, log=log, step=step))

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.suggest(name, ParamSpec("categorical", choices=tuple(choices)))

    def space_for(self, name: str, declared: ParamSpec) -> ParamSpec:
        if name in self.fixed:
            return ParamSpec("fixed", value=self.fixed[name])
        if name in self.space.params:
            return self.space.params[name]
        if self.space.replace:
            self.kept_default.add(name)
            return ParamSpec("fixed", value=self.defaults.get(name))
        return declared

    def suggest(self, name: str, declared: ParamSpec) -> Any:
        """The value of ``name`` in this trial, given the space its declarer proposed."""
        if name in self.values:
            return self.values[name]
        spec = self.space_for(name, declared)
        if spec.kind == "fixed":
            value = spec.value
        elif self.default_trial and name in self.defaults:
            value = self.defaults[name]
            if spec.contains(value):
                value = self.searched[name] = spec.suggest(self.trial, name)
        else:
            value = self.searched[name] = spec.suggest(self.trial, name)
        self.values[name] = value
        return value


def suggest_all(trial: SpaceTrial, plugin: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """One trial's ``(fusion values, trainer values)`` from the common and the fusion's spaces."""
    train: dict[str, Any] = {}
    for key, spec in COMMON_TRAIN_SPACE.items():
        train[key] = trial.suggest(TRAIN_PREFIX + key, spec)
    fusion = dict(plugin.search_space(trial))
    if "dropout" in plugin.default_params and "dropout" not in trial.values:
        fusion["dropout"] = trial.suggest("dropout", COMMON_DROPOUT)
    for name, spec in trial.space.params.items():  # listed in the file, declared by no space
        if name not in trial.values:
            value = trial.suggest(name, spec)
            if name.startswith(TRAIN_PREFIX):
                train[name[len(TRAIN_PREFIX) :]] = value
            else:
                fusion[name] = value
    # Trainer values left at the protocol's by ``replace`` are not tuned: the protocol applies.
    train = {k: v for k, v in train.items() if TRAIN_PREFIX + k not in trial.kept_default}
    return fusion, train


def default_values(plugin: Any, protocol: dict[str, Any]) -> dict[str, Any]:
    """Each searchable name's default: the fusion's (with ``--set fusion.*``) and the protocol's train."""
    values = dict(plugin.resolve_params(dict(protocol["fusion"])))
    values.update({TRAIN_PREFIX + k: protocol["train"][k] for k in TUNABLE_TRAIN if k in protocol["train"]})
    return values


class _DefaultsProbe:
    """A stand-in trial whose every suggestion is the default: finds the default trial's params."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.defaults[name]

    suggest_int = suggest_float

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.defaults[name]


def default_trial_params(plugin: Any, space: SearchSpace, fixed: dict[str, Any], defaults: dict) -> dict:
    """The parameters to enqueue for the default trial (defaults that lie inside the space)."""
    probe = SpaceTrial(_DefaultsProbe(defaults), space, fixed, defaults, default_trial=True)
    suggest_all(probe, plugin)
    return dict(probe.searched)


# ---------------------------------------------------------------------------------- storage
def mask_url(url: str) -> str:
    """A storage URL with its password hidden (it goes into logs and exported files)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def storage_label(value: str | Path | None) -> str:
    """How the storage is shown and recorded: a masked URL or the file path as given."""
    value = DEFAULT_STORAGE if value is None else value
    return mask_url(str(value)) if "://" in str(value) else str(value)


def storage_target(value: str | Path | None) -> tuple[str, str]:
    """``(kind, target)`` for ``--storage``: ``("url", URL)``, ``("journal", PATH)`` or ``("sqlite", PATH)``.

    Pure (creates nothing), so a bad value is refused before any data is loaded.
    """
    text = str(DEFAULT_STORAGE if value is None else value)
    if "://" in text:
        return "url", text
    path = Path(text).expanduser()
    if path.suffix in JOURNAL_SUFFIXES:
        return "journal", str(path)
    if path.suffix in SQLITE_SUFFIXES:
        return "sqlite", str(path)
    raise UsageError(
        f"--storage {text}: give a database URL (sqlite:///..., postgresql://...), a journal "
        f"file ({', '.join(JOURNAL_SUFFIXES)}) or an SQLite file ({', '.join(SQLITE_SUFFIXES)})"
    )


def open_storage(value: str | Path | None, must_exist: bool = False) -> Any:
    """An Optuna storage for ``--storage``.

    * a URL (``sqlite:///...``, ``postgresql://...``, any SQLAlchemy URL) -> RDB storage with a
      heartbeat: a trial whose worker died is marked failed and retried once;
    * a ``.log``/``.journal`` path -> the journal file backend (several local processes);
    * a ``.db``/``.sqlite`` path (default ``runs/tuning/mmbench-tuning.db``) -> SQLite.
    """
    import optuna

    kind, text = storage_target(value)
    if kind != "url":
        path = Path(text)
        if must_exist and not path.is_file():
            raise UsageError(f"no tuning storage at {path}; run `mmbench tune` first (or give --storage)")
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "journal":
            return optuna.storages.JournalStorage(_journal_backend(str(path.resolve())))
        text = f"sqlite:///{path.resolve()}"
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    kwargs: dict[str, Any] = {"heartbeat_interval": 60, "grace_period": 180}
    try:
        with _quiet_optuna_warnings():
            if retry is not None:
                kwargs["heartbeat_stale_trial_callback"] = retry(max_retry=1)
            else:  # optuna < 4.9
                kwargs["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(max_retry=1)
            return optuna.storages.RDBStorage(text, **kwargs)
    except ImportError as exc:
        raise UsageError(
            f"--storage {mask_url(text)}: the database driver is not installed ({exc})"
        ) from None
    except Exception as exc:  # sqlalchemy's ArgumentError, OperationalError...
        raise UsageError(f"--storage {mask_url(text)}: cannot open the database: {exc}") from None


def _journal_backend(path: str) -> Any:
    try:
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # optuna < 4.0
        from optuna.storages import JournalFileStorage as JournalFileBackend
    return JournalFileBackend(path)


@contextlib.contextmanager
def _quiet_optuna_warnings() -> Iterator[None]:
    """Optuna flags heartbeats, multivariate TPE... as experimental; mmbench relies on them knowingly."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def study_name_for(dataset: str, fusion: str, protocol_fingerprint: str) -> str:
    """The deterministic study name: the same command resumes the same study."""
    return f"{dataset}-{fusion}-{protocol_fingerprint}"


def make_pruner(name: str, max_epochs: int) -> Any:
    """The Optuna pruner for ``--pruner`` (epochs are the steps)."""
    import optuna

    if name == "median":
        # Epoch 1 of any run is noisy: pruning starts at epoch 2, and after the first 5 trials.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, max_epochs))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UsageError(f"--pruner must be one of {', '.join(PRUNERS)}, got {name!r}")


def make_sampler(seed: int | None) -> Any:
    """TPE, multivariate, safe for parallel workers; ``seed`` makes its proposals reproducible."""
    import optuna

    with _quiet_optuna_warnings():
        # constant_liar keeps parallel workers from proposing the same point.
        return optuna.samplers.TPESampler(
            n_startup_trials=5, seed=seed, multivariate=True, constant_liar=True
        )


def open_study(
    storage: Any, name: str, attrs: dict[str, Any], sampler: Any = None, pruner: Any = None
) -> tuple[Any, bool]:
    """Create the study or load it (``(study, created)``); refuse one tuned under other settings.

    Creating with ``load_if_exists=False`` makes exactly one of several simultaneous workers the
    creator, so only that one enqueues the default trial.
    """
    import optuna

    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=False,
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        existing = study.user_attrs
        for key in IDENTITY_ATTRS:
            if key in existing and key in attrs and existing[key] != attrs[key]:
                raise UsageError(
                    f"study {name!r} was tuned with {key}={existing[key]!r}, not {attrs[key]!r}; "
                    "choose another --study-name (or the settings it was tuned with)"
                ) from None
        return study, False
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    return study, True


def ensure_default_trial(study: Any, params: dict[str, Any], created: bool) -> bool:
    """Enqueue the default-parameter trial unless the study has one; return whether it did.

    A worker that did not create the study leaves an empty study alone (its creator is about to
    enqueue); on a study with trials, an interrupted default trial is enqueued again.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if not created and not trials:
        return False
    for t in trials:
        if not t.user_attrs.get(DEFAULT_ATTR):
            continue
        if t.state != TrialState.FAIL or t.user_attrs.get("fail_reason") != INTERRUPTED:
            return False
    study.enqueue_trial(params, user_attrs={DEFAULT_ATTR: True})
    return True


def worker_id() -> str:
    """``host:pid`` of this process, recorded on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def fail_orphans(study: Any) -> list[int]:
    """Mark running trials whose worker process on this host is gone as failed; return their numbers.

    A worker killed outright (SIGKILL, power loss) cannot record its trial's end. RDB storages
    notice through heartbeats; this also covers journal files, for workers on this machine.
    """
    from optuna.trial import TrialState

    host = socket.gethostname()
    orphans = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner_host, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
        if owner_host != host or not pid.isdigit() or _process_alive(int(pid)):
            continue
        # Optuna has no public call to end another worker's trial; the storage API is stable.
        study._storage.set_trial_user_attr(
            t._trial_id, "fail_reason", f"worker {t.user_attrs['worker']} died"
        )
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        orphans.append(t.number)
    return orphans


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

    from mmbench.training import tensors as tensor_mod
    from mmbench.runner.run import _fit, _is_out_of_memory

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
            outcome = _fit(
                prep, plugin, spec, params, setup.seed, dev_t, tensors, reporter, run_info, train_values
            )
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", INTERRUPTED)
            raise
        except Exception as exc:
            reason = "out of memory" if _is_out_of_memory(exc) else f"{type(exc).__name__}: {exc}"
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
    seed: int | None = None  # training seed of every trial (default: the protocol's first)
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
    seed = request.seed if request.seed is not None else int(prep.protocol["seeds"][0])
    setup = TuneSetup(prep, request.fusion, plugin, space, seed, device, reporter)
    # Unknown --set fusion.* keys and defaults this data cannot use fail before any trial runs.
    plugin.validate(prep.data.input_spec(), plugin.resolve_params(setup.fixed))
    storage = open_storage(request.storage)

    name = request.study_name or study_name_for(
        request.run.dataset, request.fusion, prep.protocol_fingerprint
    )
    attrs = {
        "dataset": request.run.dataset,
        "data_name": prep.data.name,
        "fusion": request.fusion,
        "protocol_fingerprint": prep.protocol_fingerprint,
        "dataset_fingerprint": prep.data.fingerprint,
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
                with _quiet_optuna_warnings():
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
def save_plots(study: Any, directory: Path) -> list[Path]:
    """Optimisation history and parameter importances as PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    from mmbench.records import atomic_write_bytes

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    safe_name = re.sub(r"[^\w.-]", "_", study.study_name)
    plots = (
        ("optimization_history", ovm.plot_optimization_history),
        ("param_importances", ovm.plot_param_importances),
    )
    for name, draw in plots:
        try:
            with _quiet_optuna_warnings(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = draw(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances need two completed trials with different parameters
        if name == "optimization_history" and hasattr(ax, "set_ylabel"):
            ax.set_ylabel(f"dev {study.user_attrs.get('metric', 'objective')}")
            ax.set_title(f"{study.study_name}: optimisation history")
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        path = directory / f"{safe_name}-{name}.png"
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        atomic_write_bytes(path, buffer.getvalue())
        written.append(path)
    return written
