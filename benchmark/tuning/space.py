"""Tuning search spaces: the trainer's common space, each fusion's own, and user ``--space`` files."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbench.errors import UsageError
from mmbench.tuning.tuned_params import TUNABLE_TRAIN

TRAIN_PREFIX = "train."


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

    from mmbench.formats.safe_yaml import load_yaml

    try:
        doc = load_yaml(Path(path).read_text(encoding="utf-8"), f"--space {path}")
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
