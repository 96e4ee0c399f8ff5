"""Tuned hyper-parameters: the files ``mmbench tune`` exports and ``mmbench run --params`` reads.

A tuned file (``configs/tuned/<dataset>/<fusion>.yaml``) holds the best trial's fusion
parameters (``params``), the trainer values tuned with them (``train``: learning rate, weight
decay, batch size...) and where they came from (study, storage, trial counts, protocol
fingerprint). ``--params FILE`` also accepts a plain mapping of fusion parameters: hand-chosen
values, not a tuning result, so such runs carry no ``tuning`` entry.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from mmbench.errors import UsageError

#: Where ``mmbench tune`` exports to and ``--params tuned`` looks first (relative to the cwd).
TUNED_DIR = Path("configs") / "tuned"
#: Trainer options a study may tune. The rest of ``train`` is the protocol (``--set train.*``,
#: part of the fingerprint); tuned values apply per run and enter the record's params tag.
TUNABLE_TRAIN = ("lr", "weight_decay", "batch_size", "grad_clip", "modality_dropout")

_warned: set[tuple[str, str]] = set()


def tuned_relpath(dataset: str, fusion: str) -> Path:
    """``configs/tuned/<dataset>/<fusion>.yaml``: the default export path of a study."""
    return TUNED_DIR / dataset / f"{fusion}.yaml"


def find_tuned(dataset: str, fusion: str) -> Any | None:
    """The tuned file for (dataset, fusion): ``./configs/tuned/...`` first, then the packaged one."""
    local = Path.cwd() / tuned_relpath(dataset, fusion)
    if local.is_file():
        return local
    packaged = resources.files("mmbench.configs").joinpath("tuned", dataset, f"{fusion}.yaml")
    return packaged if packaged.is_file() else None


def _read(source: Any, label: str) -> dict[str, Any]:
    import yaml

    from mmbench.formats.safe_yaml import load_yaml

    try:
        doc = load_yaml(source.read_text(encoding="utf-8"), f"--params {label}")
    except yaml.YAMLError as exc:
        raise UsageError(f"--params {label}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"--params {label}: cannot read the file: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"--params {label}: expected a mapping of parameter names to values")
    return doc


def _check_train(train: Any, label: str) -> dict[str, Any]:
    if train is None:
        return {}
    if not isinstance(train, dict):
        raise UsageError(f"--params {label}: 'train' must be a mapping of trainer options")
    unknown = sorted(set(train) - set(TUNABLE_TRAIN))
    if unknown:
        raise UsageError(
            f"--params {label}: train.{unknown[0]} cannot be tuned (tunable: {', '.join(TUNABLE_TRAIN)}); "
            "other trainer options are part of the protocol, change them with --set"
        )
    for key, value in train.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UsageError(f"--params {label}: train.{key} must be a non-negative number, got {value!r}")
    if "batch_size" in train and (not isinstance(train["batch_size"], int) or train["batch_size"] < 1):
        raise UsageError(f"--params {label}: train.batch_size must be a positive integer")
    return dict(train)


def _warn_once(key: tuple[str, str], message: str) -> None:
    if key in _warned:
        return
    _warned.add(key)
    from mmbench.ui.console import err_console

    err_console.print(f"warning: {message}", markup=False)


def load_params(value: str, dataset: str, fusion: str, protocol_fingerprint: str) -> dict[str, Any]:
    """Fusion parameters (and tuning provenance) for ``mmbench run --params tuned|FILE``.

    Returns ``{"params": {...}, "tuning": {...} | None}``; ``tuning["train"]`` holds the tuned
    trainer values, which the runner applies to this run only (the protocol stays untouched).
    """
    if value == "tuned":
        source = find_tuned(dataset, fusion)
        if source is None:
            raise UsageError(
                f"no tuned parameters for fusion {fusion!r} on dataset {dataset!r} "
                f"(looked for {tuned_relpath(dataset, fusion)} here and in the installed package); "
                f"run `mmbench tune --fusion {fusion} --dataset {dataset}` first"
            )
        label = str(source)
    else:
        source = Path(value)
        label = value
        if not source.is_file():
            raise UsageError(f"--params {value}: no such file (give 'tuned' or a YAML file)")
    doc = _read(source, label)

    if "params" not in doc:  # a plain mapping of fusion parameters
        if "train" in doc:
            raise UsageError(
                f"--params {label}: a plain parameter file holds fusion parameters only; trainer "
                "values come from a tuned file (params: and train: sections) or --set train.*"
            )
        return {"params": doc, "tuning": None}

    params = doc["params"]
    if not isinstance(params, dict):
        raise UsageError(f"--params {label}: 'params' must be a mapping of fusion parameters")
    if doc.get("fusion") not in (None, fusion):
        raise UsageError(
            f"--params {label}: holds tuned parameters of fusion {doc['fusion']!r}, not {fusion!r}"
        )
    n_trials = doc.get("n_trials", 0)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0:
        raise UsageError(f"--params {label}: n_trials must be a non-negative integer, got {n_trials!r}")
    tuned_fp = doc.get("protocol_fingerprint")
    tuning: dict[str, Any] = {
        "source": label,
        "study_name": doc.get("study_name"),
        "storage": doc.get("storage"),
        "n_trials": n_trials,
        "trials": doc.get("trials"),
        "metric": doc.get("metric"),
        "best_value": doc.get("best_value"),
        "dataset": doc.get("dataset"),
        "protocol_fingerprint": tuned_fp,
        "fingerprint_matches": tuned_fp == protocol_fingerprint,
        "train": _check_train(doc.get("train"), label),
        # The training seed of every trial: a retrain on it would repeat the best trial.
        "seed": doc.get("seed"),
    }
    if tuned_fp != protocol_fingerprint:
        _warn_once(
            (label, protocol_fingerprint),
            f"{label} was tuned under protocol {tuned_fp}, this run uses protocol {protocol_fingerprint}; "
            "using its parameters anyway (recorded in the run's 'tuning')",
        )
    return {"params": dict(params), "tuning": tuning}
