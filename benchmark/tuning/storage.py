"""Study storage and lifecycle: SQLite, journal file or database URL; names, pruners, samplers, orphans."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmbench.errors import UsageError

#: The SQLite file used when no --storage is given.
DEFAULT_STORAGE = Path("runs") / "tuning" / "mmbench-tuning.db"
JOURNAL_SUFFIXES = (".log", ".journal")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
PRUNERS = ("median", "none", "hyperband")
#: User attribute marking the trial that evaluates the default parameters.
DEFAULT_ATTR = "mmbench_default"
#: Study user attributes that must match when a study is resumed.
INTERRUPTED = "interrupted"
IDENTITY_ATTRS = ("dataset", "fusion", "protocol_fingerprint", "study_key", "metric", "seed")
#: Trials train with this offset plus the protocol's first seed, so that no retrain on the
#: protocol's seeds repeats a trial (whose dev score was the selection criterion: optimistic).
TUNING_SEED_OFFSET = 1000


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
            repair_journal(path.resolve())
            return optuna.storages.JournalStorage(_journal_backend(str(path.resolve())))
        text = f"sqlite:///{path.resolve()}"
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    kwargs: dict[str, Any] = {"heartbeat_interval": 60, "grace_period": 180}
    try:
        with quiet_optuna_warnings():
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


def _journal_lock(path: Path) -> Any:
    try:
        from optuna.storages.journal import JournalFileSymlinkLock
    except ImportError:  # optuna < 4.0
        from optuna.storages import JournalFileSymlinkLock
    return JournalFileSymlinkLock(str(path))


def _parse_journal_line(line: bytes) -> bytes | None:
    """The line if it is one JSON record; else the last whole record inside it; else None.

    A writer killed mid-line leaves a record without its end; the next writer appends its own
    record to that same line (``{"op_code": 4, "wor{"op_code": 5, ...}``). The record after the
    damage is complete and is kept.
    """
    body = line.rstrip(b"\r\n")
    start = 0
    while True:
        try:
            json.loads(body[start:])
            return body[start:] + b"\n"
        except ValueError:
            start = body.find(b'{"', start + 1)
            if start < 0:
                return None


def repair_journal(path: Path) -> int:
    """Repair a journal file whose records were cut off mid-line; return the records dropped.

    Optuna's journal is one JSON record per line. A cut-off record (a worker killed while writing,
    a full disk) makes every later read fail with ``JSONDecodeError``, so finished trials become
    unreachable. Under the journal's own lock, the damaged tail is dropped (and a record appended
    onto a damaged line is recovered); the file is rewritten atomically and one warning names it
    and what was removed. Nothing already complete is lost.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    lock = _journal_lock(path)
    lock.acquire()
    try:
        raw = path.read_bytes()
        lines = raw.splitlines(keepends=True)
        kept: list[bytes] = []
        dropped = 0
        for line in lines:
            if not line.endswith(b"\n"):  # the last write never finished
                dropped += 1
                continue
            fixed = _parse_journal_line(line)
            if fixed is None:
                dropped += 1
            else:
                kept.append(fixed)
        repaired = b"".join(kept)
        if repaired == raw:
            return 0
        from mmbench.records import atomic_write_bytes
        from mmbench.ui.console import err_console

        atomic_write_bytes(path, repaired)
        err_console.print(
            f"warning: {path}: repaired the tuning journal: {dropped} damaged record(s) removed, "
            f"{len(raw) - len(repaired)} byte(s) dropped, {len(kept)} complete record(s) kept",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return dropped
    finally:
        lock.release()


def _journal_backend(path: str) -> Any:
    try:
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # optuna < 4.0
        from optuna.storages import JournalFileStorage as JournalFileBackend
    return JournalFileBackend(path)


@contextlib.contextmanager
def quiet_optuna_warnings() -> Iterator[None]:
    """Optuna flags heartbeats, multivariate TPE... as experimental; mmbench relies on them knowingly."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def study_key(
    protocol_fingerprint: str,
    dataset_fingerprint: str,
    data_options: dict[str, Any],
    encoders: dict[str, Any],
) -> str:
    """8 hex digits naming everything a study's trials depend on besides the searched values.

    The protocol fingerprint leaves out the encoders (they are compared on leaderboards, not fixed
    by the protocol), so a study key adds them (each encoder's full identity: name and options such
    as ``n_components``), the data options and the dataset fingerprint: a change of any of them
    starts a new study instead of mixing its trials into the old one.
    """
    from mmbench.protocol import canonical_json

    payload = {
        "protocol": protocol_fingerprint,
        "dataset": dataset_fingerprint,
        "data": data_options,
        "encoders": encoders,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:8]


def study_name_for(dataset: str, fusion: str, protocol_fingerprint: str, key: str | None = None) -> str:
    """The deterministic study name: the same command resumes the same study."""
    name = f"{dataset}-{fusion}-{protocol_fingerprint}"
    return f"{name}-{key}" if key else name


def tuning_seed(protocol_seeds: list[int]) -> int:
    """Default training seed of every trial: ``TUNING_SEED_OFFSET + first seed``, never a protocol seed."""
    seed = TUNING_SEED_OFFSET + int(protocol_seeds[0])
    while seed in protocol_seeds:
        seed += 1
    return seed


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

    with quiet_optuna_warnings():
        # constant_liar keeps parallel workers from proposing the same point.
        return optuna.samplers.TPESampler(
            n_startup_trials=5, seed=seed, multivariate=True, constant_liar=True
        )


def open_study(
    storage: Any, name: str, attrs: dict[str, Any], sampler: Any = None, pruner: Any = None
) -> tuple[Any, bool]:
    """Create the study or load it (``(study, created)``); refuse one tuned under other settings.

    Creating with ``load_if_exists=False`` makes exactly one of several simultaneous workers the
    creator, so only that one enqueues the default trial. The study maximises ``attrs["metric"]``, or
    minimises it for a lower-is-better metric such as MAE (``mmbench.tasks.higher_is_better``).
    """
    import optuna

    from mmbench.tasks import higher_is_better

    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction="maximize" if higher_is_better(str(attrs.get("metric"))) else "minimize",
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
        try:
            study._storage.set_trial_user_attr(
                t._trial_id, "fail_reason", f"worker {t.user_attrs['worker']} died"
            )
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except RuntimeError:  # another worker resuming the same study ended it first
            continue
        orphans.append(t.number)
    return orphans
