"""Protocols: the YAML files that fix how a dataset is evaluated, and their fingerprints.

A protocol is resolved from ``configs/protocols/default.yaml``, then the dataset's own protocol
file, then a user ``--protocol`` file, then ``--set key=value`` overrides. The resolved protocol
minus what is being compared (fusion hyper-parameters, encoders), the seed list and the
*annotation* (``description``: words that change no result) is hashed into the *protocol
fingerprint*: only runs with equal fingerprints share a leaderboard table.

What a run is splits in two:

* **protocol** (fingerprinted): everything above plus the ``numerics`` block the runner adds for
  each run (``runner.environment.numerics``): the precision it trains in, ``--compile``,
  deterministic algorithms, the device type and the library versions that change numbers (torch,
  CUDA/cuDNN), and the batch size and accumulation an out-of-memory retry ended with. A bf16 and
  an fp32 run of the same command therefore get different fingerprints and separate tables.
* **annotation** (not fingerprinted): ``description``, and the record's ``annotation`` (the
  description, data path and protocol file path).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import math
import typing
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from mmbench.errors import UsageError
from mmbench.formats.safe_yaml import load_yaml
from mmbench.tasks import CLASSIFICATION_METRICS, REGRESSION_METRICS

#: Top-level keys that describe a run but change no result (not fingerprinted).
ANNOTATION_KEYS = ("description",)
#: Top-level keys that do not enter the fingerprint: what is compared, not how, and annotations.
NOT_FINGERPRINTED = ("seeds", "fusion", "encoders", "context", *ANNOTATION_KEYS)
#: The runner's block of numeric settings (fingerprinted; set per run, never by a protocol file).
NUMERICS_KEY = "numerics"
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
    "context",
    "description",
}
#: ``train`` keys a protocol may leave unset (absent: off, and fingerprints of protocols that do
#: not set them stay as they were); ``--set train.<key>=...`` accepts them.
OPTIONAL_TRAIN_KEYS = ("length_bucketing",)
#: ``train`` keys that choose how runs execute, not what they compute, with their defaults: accepted
#: in protocol files and by ``--set``, and taken out of the protocol (so out of its fingerprint) by
#: :func:`execution_settings`. ``seed_batching``: train the seeds of a cell as one stacked model
#: where that applies (``mmbench.training.vectorised``): ``true``, ``false``, or ``auto`` (on CUDA
#: devices only: on the reference CPU it measured slower, docs/PERFORMANCE.md).
EXECUTION_TRAIN_KEYS: dict[str, Any] = {"seed_batching": "auto"}
#: Primary metrics a protocol may select on (and tune for): a classification metric (higher is
#: better) or a regression metric (``mae`` lower is better); which ones fit the dataset is checked
#: once it is loaded (``mmbench.tasks.Task.check_protocol``).
METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)


def _read_yaml(path: Path | Any) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        loaded = load_yaml(text, f"protocol file {path}") or {}
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


def packaged_name(path: Path | Any) -> Path | Any:
    """``--protocol NAME``: a name that is no existing file but a shipped protocol
    (``configs/protocols/NAME.yaml``, e.g. ``synthetic-regression``) is that file; anything else
    is returned unchanged (a missing file is reported when it is read)."""
    text = str(path)
    if Path(text).exists() or "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        return path
    return packaged_protocol(text) or path


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
        value = load_yaml(raw, f"--set {key}") if raw.strip() else ""
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
        train_keys = {*out.get("train", {}), *OPTIONAL_TRAIN_KEYS, *EXECUTION_TRAIN_KEYS}
        if path[0] == "train" and len(path) > 1 and path[1] not in train_keys:
            known = ", ".join(sorted(train_keys))
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
    """Resolve the protocol for ``dataset`` (see module docstring for the order), checked and coerced.

    Raises:
        UsageError: a file that is missing or not YAML, an unknown ``--set`` key, or a bad value
            (the message names the key and the file that set it).
    """
    base = packaged_protocol("default")
    sources = [(str(base), _read_yaml(base))]
    ds_file = dataset_protocol if dataset_protocol is not None else packaged_protocol(dataset)
    if ds_file is not None:
        sources.append((str(ds_file), _read_yaml(ds_file if not isinstance(ds_file, str) else Path(ds_file))))
    if user_file is not None:
        user_file = packaged_name(user_file)
        sources.append(
            (str(user_file), _read_yaml(user_file if not isinstance(user_file, str) else Path(user_file)))
        )
    protocol: dict[str, Any] = {}
    for _, layer in sources:
        protocol = deep_merge(protocol, layer)
    protocol = dataset_section(protocol, dataset)
    merged = protocol
    protocol = apply_overrides(protocol, overrides or [])
    sources.append(("--set", _changed(merged, protocol)))
    protocol["dataset"] = dataset
    return check_protocol(protocol, sources)


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The keys whose values ``after`` changed (``--set`` overrides, for error messages)."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, dict) and isinstance(before.get(key), dict):
            sub = _changed(before[key], value)
            if sub:
                out[key] = sub
        elif key not in before or before[key] != value:
            out[key] = value
    return out


def _yaml_number(value: Any) -> Any:
    """Numbers as researchers write them: YAML 1.1 reads ``5e-4`` as a string, booleans are no numbers."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, str):
        text = value.strip()
        with contextlib.suppress(ValueError):
            return int(text)
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    return value


def _known_metric(value: Any) -> Any:
    if value not in METRICS:
        raise ValueError(f"must be one of {', '.join(METRICS)}, got {value!r}")
    return value


#: An integer (a numeric string is read as the number; booleans are refused).
Int = Annotated[int, BeforeValidator(_yaml_number)]
#: A number kept as written (``1`` stays an int, so fingerprints of existing protocols do not move).
Number = Annotated[int | float, BeforeValidator(_yaml_number)]
PositiveInt = Annotated[Int, Field(ge=1, description="a positive integer")]
NonNegativeInt = Annotated[Int, Field(ge=0, description="a non-negative integer")]
NonNegativeNumber = Annotated[Number, Field(ge=0, description="a non-negative number")]

#: Largest seed: numpy's legacy generator takes seeds in [0, 2**32 - 1].
MAX_SEED = 2**32 - 1
#: Upper bound of counts (epochs, batch size, patience): larger values are typing mistakes.
MAX_COUNT = 1_000_000


def _finite(value: Any) -> Any:
    """NaN passes ``lr < 0`` and every other comparison check: refused explicitly, with inf."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


def _ranged(low: float, high: float, low_open: bool = False) -> Any:
    """A finite number in ``[low, high]`` (``(low, high]`` when ``low_open``), described as such."""
    bounds = {"gt" if low_open else "ge": low, "le": high}
    text = f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}]"
    return Annotated[Number, AfterValidator(_finite), Field(**bounds, description=text)]


Count = Annotated[Int, Field(ge=1, le=MAX_COUNT, description=f"a positive integer (at most {MAX_COUNT})")]
Patience = Annotated[Int, Field(ge=0, le=MAX_COUNT, description=f"an integer in [0, {MAX_COUNT}]")]
Seed = Annotated[Int, Field(ge=0, le=MAX_SEED)]
LearningRate = _ranged(0.0, 10.0, low_open=True)
Decay = _ranged(0.0, 10.0)
Gamma = _ranged(0.0, 100.0)
Clip = _ranged(0.0, 1e6)
Factor = _ranged(0.0, 1.0, low_open=True)


def check_seeds(seeds: Any, name: str = "seeds") -> list[int]:
    """A non-empty list of distinct integers in ``[0, 2**32 - 1]`` (the generators' range)."""
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in seeds)
    ):
        shown = seeds if not isinstance(seeds, list) or len(seeds) <= 20 else f"{seeds[:20]}..."
        raise UsageError(f"{name} must be a non-empty list of integers in [0, {MAX_SEED}], got {shown!r}")
    _distinct(seeds, name)
    return seeds


def _distinct(seeds: list[int], name: str = "seeds") -> list[int]:
    repeated = sorted({s for s in seeds if seeds.count(s) > 1}) if len(seeds) <= 10_000 else []
    if repeated:
        raise UsageError(f"{name} lists seed(s) {repeated} more than once; each seed is one run")
    return seeds


class TrainConfig(BaseModel):
    """``train:`` of a protocol: the training budget and recipe (every key enters the fingerprint).

    Keys not declared here are kept as written (forward compatible); declared ones are checked
    and coerced. Source: ``configs/protocols/default.yaml`` documents each key.
    """

    model_config = ConfigDict(extra="allow")

    max_epochs: Count
    patience: Patience
    batch_size: Count
    grad_accum: Count
    lr: LearningRate
    weight_decay: Decay
    focal_gamma: Gamma
    grad_clip: Clip
    optimizer: Literal["adamw"]
    scheduler: Literal["plateau", "none"]
    scheduler_factor: Factor | None = Field(default=None, description="a finite number in (0, 1]")
    scheduler_patience: Patience | None = Field(default=None, description=f"an integer in [0, {MAX_COUNT}]")
    loss: Literal["cross_entropy", "focal", "l1", "mse"]
    imbalance: Literal["none", "class_weights", "oversample"]
    modality_dropout: Any = 0.0
    length_bucketing: Annotated[Int, Field(ge=0, le=MAX_COUNT)] | None = Field(
        default=None, description="an integer >= 0 (batches per pool; 0 = off)"
    )

    @field_validator("modality_dropout")
    @classmethod
    def _dropout(cls, value: Any) -> Any:
        return _dropout_rates(value)


class Protocol(BaseModel):
    """A resolved protocol (see the module docstring). Unknown top-level keys are kept as written."""

    model_config = ConfigDict(extra="allow")

    schema_: Int | None = Field(default=None, alias="schema")
    dataset: str | None = None
    description: str | None = None
    data: dict[str, Any] = Field(description="a mapping")
    classes: Any = None
    encoders: dict[str, Any] = Field(description="a mapping")
    train: TrainConfig
    metric: Annotated[str, AfterValidator(_known_metric)]
    seeds: list[Seed] = Field(
        min_length=1, description=f"a non-empty list of distinct integers in [0, {MAX_SEED}]"
    )

    @field_validator("seeds")
    @classmethod
    def _seeds_distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) < len(value):
            raise ValueError("repeats a seed")
        return value

    fusion: dict[str, Any] = Field(description="a mapping")
    context: dict[str, Any] | None = Field(default=None, description="a mapping of context-model parameters")


def _restore_order(original: Any, checked: Any) -> Any:
    """``checked`` (the coerced values) in the key order of ``original`` (records keep their bytes)."""
    if isinstance(original, dict) and isinstance(checked, dict):
        out = {k: _restore_order(original[k], checked[k]) for k in original if k in checked}
        out.update({k: v for k, v in checked.items() if k not in out})
        return out
    return checked


def _has_key(layer: Any, loc: tuple[Any, ...]) -> bool:
    node = layer
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def check_protocol(
    protocol: dict[str, Any], sources: list[tuple[str, dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """The protocol with its values checked and coerced (``lr: "5e-4"`` becomes ``5e-4``).

    ``sources`` lists ``(name, layer)`` pairs in merge order (default file, dataset file, user
    file, ``--set``); an error names the key and the last source that set it. Values already of
    the right type are returned as written, so fingerprints of existing protocols do not change.

    Raises:
        UsageError: a missing key, a value of the wrong type or out of range.
    """
    try:
        model = Protocol.model_validate(protocol)
    except ValidationError as exc:
        raise UsageError(_describe(exc.errors()[0], protocol, sources or [])) from None
    return _restore_order(protocol, model.model_dump(by_alias=True, exclude_unset=True))


def _field_info(loc: tuple[str, ...]) -> Any:
    """The pydantic ``FieldInfo`` of a protocol key path (``("train", "lr")``), or None."""
    model: Any = Protocol
    info = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        info = fields[part]
        model = info.annotation
    return info


def _describe(err: Any, protocol: dict[str, Any], sources: list[tuple[str, dict[str, Any]]]) -> str:
    """``<file>: train.lr must be a non-negative number, got 'fast'`` for one validation error."""
    loc = tuple(itertools.takewhile(lambda p: isinstance(p, str), err["loc"]))
    key = ".".join(loc) or "protocol"
    where = next((name for name, layer in reversed(sources) if _has_key(layer, loc)), None)
    prefix = f"{where}: " if where else ""
    if err["type"] == "missing":
        return f"{prefix}protocol key {key} is missing"
    value: Any = protocol
    for part in loc:
        value = value.get(part) if isinstance(value, dict) else None
    info = _field_info(loc)
    annotation = info.annotation if info else None
    choices = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()
    if choices:
        return f"{prefix}{key} must be one of {', '.join(choices)}, got {value!r}"
    if info is None or not info.description:
        message = err["msg"].removeprefix("Value error, ")
        given = "" if "got " in message else f", got {err['input']!r}"
        return f"{prefix}{key}{' ' if message.startswith('must') else ': '}{message}{given}"
    return f"{prefix}{key} must be {info.description}, got {value!r}"


def dataset_section(protocol: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Merge a protocol file's ``datasets: {<dataset>: {...}}`` entry for ``dataset`` over the rest.

    One named protocol (``configs/protocols/reference-system.yaml``) can so hold values that differ
    per dataset (learning rate, batch size); the ``datasets`` key itself is dropped.
    """
    sections = protocol.pop("datasets", None)
    if sections is None:
        return protocol
    if not isinstance(sections, dict) or not all(isinstance(v, dict) for v in sections.values()):
        raise UsageError("protocol key 'datasets' must map dataset names to protocol sections")
    return deep_merge(protocol, sections.get(dataset, {}))


def validate_protocol(protocol: dict[str, Any]) -> None:
    """Check ``protocol`` in place (values coerced as by ``check_protocol``)."""
    checked = check_protocol(protocol)
    protocol.clear()
    protocol.update(checked)


def _dropout_rates(value: Any) -> float | dict[str, float]:
    if isinstance(value, dict):
        rates = {}
        for name, p in value.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"modality names must be strings, got {name!r}")
            with contextlib.suppress(ValueError):
                p = _yaml_number(p)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
            rates[name] = float(p)
        return rates
    with contextlib.suppress(ValueError):
        value = _yaml_number(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(
            f"must be a probability in [0, 1) or a mapping {{modality: probability in [0, 1]}}, got {value!r}"
        )
    return value


def modality_dropout_rates(value: Any) -> float | dict[str, float]:
    """Check ``train.modality_dropout``: a probability in [0, 1) (one random modality per sample)
    or a mapping ``{modality: probability in [0, 1]}`` (each modality independently).

    Modality names are checked by the trainer, which knows the run's modalities.

    Raises:
        UsageError: not a probability, or not a mapping of modality names to probabilities.
    """
    try:
        return _dropout_rates(value)
    except ValueError as exc:
        raise UsageError(f"train.modality_dropout: {exc}") from None


def execution_settings(protocol: dict[str, Any]) -> dict[str, Any]:
    """Remove the execution keys (``EXECUTION_TRAIN_KEYS``) from ``protocol["train"]`` and return
    them with their defaults filled in: they change how runs execute, not their protocol.

    Raises:
        UsageError: ``train.seed_batching`` is not true, false or auto.
    """
    train = protocol.get("train") or {}
    settings = {k: train.pop(k, default) for k, default in EXECUTION_TRAIN_KEYS.items()}
    if not isinstance(settings["seed_batching"], bool) and settings["seed_batching"] != "auto":
        value = settings["seed_batching"]
        raise UsageError(f"train.seed_batching must be true, false or auto, got {value!r}")
    return settings


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(protocol: dict[str, Any]) -> str:
    """Hash of the evaluation protocol (see ``NOT_FINGERPRINTED``), 16 hex digits.

    The ``numerics`` block, when present, is part of it (module docstring).
    """
    core = {k: v for k, v in protocol.items() if k not in NOT_FINGERPRINTED}
    return hashlib.sha256(canonical_json(core).encode()).hexdigest()[:16]


def fingerprint_without_numerics(protocol: dict[str, Any]) -> str:
    """``fingerprint`` of the protocol with its ``numerics`` block left out (to mix numerics on purpose)."""
    return fingerprint({k: v for k, v in protocol.items() if k != NUMERICS_KEY})


def params_tag(params: dict[str, Any]) -> str:
    """Short hash of fusion hyper-parameters and encoders, used in record file names."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:8]
