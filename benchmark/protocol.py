"""Protocols: the YAML files that fix how a dataset is evaluated, and their fingerprints.

A protocol is resolved from ``configs/protocols/default.yaml``, then the dataset's own protocol
file, then a user ``--protocol`` file, then ``--set key=value`` overrides. The resolved protocol
minus what is being compared (fusion hyper-parameters, encoders) and the seed list is hashed
into the *protocol fingerprint*: only runs with equal fingerprints share a leaderboard table.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mmbench.errors import UsageError

#: Top-level keys that do not enter the fingerprint: what is compared, not how.
NOT_FINGERPRINTED = ("seeds", "fusion", "encoders")
TOP_LEVEL_KEYS = {
    "schema",
    "dataset",
    "data",
    "classes",
    "encoders",
    "train",
    "metric",
    "seeds",
    "fusion",
    "description",
}
METRICS = ("weighted_f1", "macro_f1", "accuracy")


def _read_yaml(path: Path | Any) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        loaded = yaml.safe_load(text) or {}
    except FileNotFoundError:
        raise UsageError(f"protocol file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"protocol file {path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"protocol file {path} must hold a mapping at the top level")
    return loaded


def packaged_protocol(name: str) -> Any | None:
    """The protocol file shipped in ``configs/protocols/<name>.yaml``, if there is one."""
    res = resources.files("mmbench.configs").joinpath("protocols", f"{name}.yaml")
    return res if res.is_file() else None


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base`` (mappings merge, the rest replaces)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``key.sub=value``; the value is read as YAML (numbers, booleans, lists)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UsageError(f"--set expects key=value (for example train.lr=0.0005), got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        # YAML 1.1 reads "5e-4" as a string; researchers mean the number.
        with contextlib.suppress(ValueError):
            value = float(value) if any(c in value.lower() for c in ".e") else int(value)
    return key.split("."), value


def apply_overrides(protocol: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides, refusing unknown ``train`` keys and top-level keys."""
    out = copy.deepcopy(protocol)
    for text in overrides:
        path, value = parse_override(text)
        if path[0] not in TOP_LEVEL_KEYS:
            raise UsageError(
                f"--set {text!r}: unknown protocol key {path[0]!r}; known: "
                f"{', '.join(sorted(TOP_LEVEL_KEYS))}"
            )
        if path[0] == "train" and len(path) > 1 and path[1] not in out.get("train", {}):
            known = ", ".join(sorted(out.get("train", {})))
            raise UsageError(f"--set {text!r}: unknown training option {path[1]!r}; known: {known}")
        node = out
        for depth, part in enumerate(path[:-1]):
            if depth == 1 and path[0] == "encoders" and isinstance(node.get(part), str):
                node[part] = {"name": node[part]}  # encoders.<m>.<option> keeps the chosen encoder
            elif not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return out


def load_protocol(
    dataset: str,
    dataset_protocol: Path | Any | None = None,
    user_file: Path | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Resolve the protocol for ``dataset`` (see module docstring for the order)."""
    base = packaged_protocol("default")
    protocol = _read_yaml(base)
    ds_file = dataset_protocol if dataset_protocol is not None else packaged_protocol(dataset)
    if ds_file is not None:
        protocol = deep_merge(
            protocol, _read_yaml(ds_file if not isinstance(ds_file, str) else Path(ds_file))
        )
    if user_file is not None:
        protocol = deep_merge(protocol, _read_yaml(Path(user_file)))
    protocol = apply_overrides(protocol, overrides or [])
    protocol["dataset"] = dataset
    validate_protocol(protocol)
    return protocol


def validate_protocol(protocol: dict[str, Any]) -> None:
    """Check the values whose mistakes would otherwise surface deep inside training."""
    train = protocol.get("train", {})
    if protocol.get("metric") not in METRICS:
        raise UsageError(f"metric must be one of {', '.join(METRICS)}, got {protocol.get('metric')!r}")
    positive_ints = ("max_epochs", "batch_size", "grad_accum")
    for key in positive_ints:
        if not isinstance(train.get(key), int) or isinstance(train.get(key), bool) or train[key] < 1:
            raise UsageError(f"train.{key} must be a positive integer, got {train.get(key)!r}")
    if not isinstance(train.get("patience"), int) or train["patience"] < 0:
        raise UsageError(f"train.patience must be a non-negative integer, got {train.get('patience')!r}")
    for key in ("lr", "weight_decay", "focal_gamma", "grad_clip"):
        if not isinstance(train.get(key), (int, float)) or isinstance(train.get(key), bool) or train[key] < 0:
            raise UsageError(f"train.{key} must be a non-negative number, got {train.get(key)!r}")
    dropout = modality_dropout_rates(train.get("modality_dropout"))
    if isinstance(dropout, dict):  # a float stays as written: its records and fingerprints stay valid
        train["modality_dropout"] = dropout
    choices = {
        "loss": ("cross_entropy", "focal"),
        "imbalance": ("none", "class_weights", "oversample"),
        "optimizer": ("adamw",),
        "scheduler": ("plateau", "none"),
    }
    for key, allowed in choices.items():
        if train.get(key) not in allowed:
            raise UsageError(f"train.{key} must be one of {', '.join(allowed)}, got {train.get(key)!r}")
    seeds = protocol.get("seeds")
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise UsageError(f"seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    for key in ("data", "encoders", "fusion"):
        if not isinstance(protocol.get(key), dict):
            raise UsageError(f"protocol key {key!r} must be a mapping")


def modality_dropout_rates(value: Any) -> float | dict[str, float]:
    """Check ``train.modality_dropout``: a probability in [0, 1) (one random modality per sample)
    or a mapping ``{modality: probability in [0, 1]}`` (each modality independently).

    Modality names are checked by the trainer, which knows the run's modalities.
    """
    if isinstance(value, dict):
        rates = {}
        for name, p in value.items():
            if isinstance(p, str):  # YAML 1.1 reads "5e-4" as a string; the user means the number
                with contextlib.suppress(ValueError):
                    p = float(p)
            if not isinstance(name, str) or not name:
                raise UsageError(f"train.modality_dropout: modality names must be strings, got {name!r}")
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise UsageError(f"train.modality_dropout.{name} must be a probability in [0, 1], got {p!r}")
            rates[name] = float(p)
        return rates
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UsageError(
            "train.modality_dropout must be a probability in [0, 1) or a mapping "
            f"{{modality: probability in [0, 1]}}, got {value!r}"
        )
    return value


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(protocol: dict[str, Any]) -> str:
    """Hash of the evaluation protocol (see ``NOT_FINGERPRINTED``), 16 hex digits."""
    core = {k: v for k, v in protocol.items() if k not in NOT_FINGERPRINTED}
    return hashlib.sha256(canonical_json(core).encode()).hexdigest()[:16]


def params_tag(params: dict[str, Any]) -> str:
    """Short hash of fusion hyper-parameters and encoders, used in record file names."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:8]
