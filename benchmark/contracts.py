"""Base classes that plugin objects derive from: datasets, encoders, fusions, context models,
extractors, trackers.

These are the plugin contracts (see ``docs/plugins.md``). The module imports no torch: a
fusion's ``build`` imports it when a model is actually built.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from mmbench.registry import hookimpl

if TYPE_CHECKING:
    import numpy as np
    import optuna
    from torch import nn

    from mmbench.data import InputSpec, MultimodalData
    from mmbench.registry.registry import Entry


class DatasetPlugin:
    """Turns files (or a generator) into :class:`~mmbench.data.MultimodalData`.

    ``load`` receives the user's ``--data`` path (or ``MMBENCH_DATA``; ``None`` when neither is
    given) and the protocol's ``data`` section as ``options``. It must never shuffle test rows
    into train and should raise :class:`~mmbench.errors.DataError` naming file, row and column
    for malformed input.
    """

    #: Path of this dataset's default protocol YAML (merged over ``configs/protocols/default``).
    protocol_path: ClassVar[str | Path | None] = None
    #: Whether the dataset needs user files (``--data``); used for the "missing data" message.
    needs_data: ClassVar[bool] = False
    #: What files are expected and where researchers obtain them.
    data_help: ClassVar[str] = ""
    #: Regular expression every utterance id of this dataset matches (``None``: any). ``mmbench
    #: extract`` uses it to name the dataset in the ``mmbench run`` line it prints.
    id_pattern: ClassVar[str | None] = None
    #: The group kind (a key of ``MultimodalData.groups``: ``"dialogue"``, ``"speaker"``...) whose
    #: test utterances have correlated errors: the unit the leaderboard's tie test resamples.
    #: ``None``: utterances are independent (each its own cluster).
    cluster_unit: ClassVar[str | None] = None

    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        raise NotImplementedError


#: Reserved key in :meth:`EncoderPlugin.encode`'s result: int ``[N]`` real time steps per sample.
LENGTHS_KEY = "__lengths__"


class EncoderPlugin:
    """Turns one modality's raw field (or features) into numeric feature streams.

    Frozen encoders run once; their output is cached on disk under :meth:`identity` plus the
    data fingerprint, so ``identity`` must name everything that changes the output (model name,
    weights hash, pooling, max length...) and must be computable without loading a model.

    Sequence outputs: ``encode`` may return ``[N, T, D]`` streams padded to a common ``T`` and,
    under the reserved key :data:`LENGTHS_KEY`, an int array ``[N]`` of real time steps; it
    becomes ``MultimodalData.lengths[modality]`` and so the batch's ``mask:<modality>``.

    In-model encoders (fine-tuned end to end): when :meth:`in_model` is true for the options,
    nothing is encoded ahead of training. :meth:`tokenize` turns the raw field into integer
    arrays once (``name -> int64 [N, T]``; they travel in each batch as
    ``tokens:<modality>:<name>``), :meth:`build_module` returns the ``nn.Module`` that maps
    those token tensors to ``[B, D]`` (or ``([B, T, D], bool mask [B, T])``) inside the fusion
    model, and :meth:`module_output` gives ``(D, returns_sequences)`` for the fusion's
    ``InputSpec``. The option ``lr`` sets the module's own learning rate (default ``train.lr``).
    """

    trainable: ClassVar[bool] = False

    def identity(self, options: dict[str, Any]) -> dict[str, Any]:
        """Everything that determines this encoder's output (the cache key)."""
        return {"name": type(self).__name__, **options}

    def encode(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, Any]:
        """Return ``stream name -> float32 array [N, D]`` (or ``[N, T, D]``) for ``modality``."""
        raise NotImplementedError

    def in_model(self, options: dict[str, Any]) -> bool:
        """Whether, with these options, the encoder is trained inside the fusion model."""
        return self.trainable

    def tokenize(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, Any]:
        """In-model encoders: ``name -> int64 array [N, T]`` computed once from the raw field."""
        raise NotImplementedError

    def module_output(self, options: dict[str, Any]) -> tuple[int, bool]:
        """In-model encoders: feature width ``D`` and whether the module returns sequences."""
        raise NotImplementedError

    def build_module(self, options: dict[str, Any]) -> nn.Module:
        """In-model encoders: the trainable module (token tensors -> features)."""
        raise NotImplementedError


class FusionParams(BaseModel):
    """Base of a fusion's typed, ranged hyper-parameters (a pydantic model).

    Declare one field per parameter with its type, default and range::

        class MyParams(FusionParams):
            hidden: int = Field(256, ge=1, le=65536)
            dropout: float = Field(0.3, ge=0.0, lt=1.0)

    and set ``params_model = MyParams`` on the :class:`FusionPlugin`. ``default_params`` is then
    derived from the defaults, and :meth:`FusionPlugin.resolve_params` checks every value before
    any training: a wrong type, a value out of range, NaN or inf is a
    :class:`~mmbench.errors.UsageError` (exit code 2) naming ``fusion.<key>`` and the allowed range.
    Types are strict (``hidden: big`` or ``hidden: true`` is refused; an integer is a valid float).
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _bounds(metadata: list[Any]) -> str:
    found = [(sym, getattr(m, attr, None)) for m in metadata for attr, sym in _BOUNDS]
    return " and ".join(f"{sym} {value}" for sym, value in found if value is not None)


def _describe_type(annotation: Any, metadata: list[Any] | None = None) -> str:
    """``int >= 1``, ``float >= 0 and < 1``, ``'softmax' or 'sigmoid'``, ``list of str or null``."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        flat = [x for m in extra for x in (getattr(m, "metadata", None) or [m])]
        return _describe_type(base, flat)
    if origin is typing.Literal:
        text = " or ".join(repr(a) for a in typing.get_args(annotation))
    elif origin in (typing.Union, types.UnionType):
        text = " or ".join(_describe_type(a) for a in typing.get_args(annotation))
    elif origin in (list, tuple):
        args = typing.get_args(annotation)
        text = f"list of {_describe_type(args[0])}" if args else "list"
    elif annotation is type(None):
        text = "null"
    else:
        text = getattr(annotation, "__name__", str(annotation))
    bounds = _bounds(metadata or [])
    return f"{text} {bounds}" if bounds else text


def allowed_values(model: type[FusionParams], name: str) -> str:
    """What ``fusion.<name>`` accepts, in words (type and range), for error messages and docs."""
    field = model.model_fields[name]
    return _describe_type(field.annotation, list(field.metadata))


def check_params(model: type[FusionParams], values: dict[str, Any], owner: str = "fusion") -> dict[str, Any]:
    """``values`` checked against ``model``; the plain JSON dict of every parameter.

    Raises :class:`~mmbench.errors.UsageError` naming each bad key once, its value and what the
    key accepts (``fusion.dropout=1.5: Input should be less than 1 (allowed: float >= 0 and < 1)``).
    """
    from pydantic import ValidationError

    from mmbench.errors import UsageError

    try:
        return model(**values).model_dump(mode="json")
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            if key in model.model_fields:
                allowed = allowed_values(model, key)
                text = f"{owner}.{key}={values.get(key)!r}: {err['msg']} (allowed: {allowed})"
            else:  # a check across parameters (model validator)
                text = f"{owner}: {err['msg'].removeprefix('Value error, ')}"
            problems.setdefault(key, text)  # a union reports one error per alternative
        raise UsageError("; ".join(problems.values())) from None


class FusionPlugin:
    """Builds an ``nn.Module`` mapping ``dict[str, Tensor]`` batches to class logits.

    ``params_model`` (a :class:`FusionParams`) declares the typed, ranged hyper-parameters;
    ``default_params`` (derived from it when it is set) are the values used when nothing overrides
    them (``--set fusion.<name>=...``, tuned parameters); ``search_space`` is the Optuna
    define-by-run space. ``build`` maps the checked parameters onto the model's constructor: the
    built-in fusions' models are plain ``nn.Module`` classes with typed keyword arguments
    (``ConcatModel(spec, proj_dim=128)``) that work without the benchmark.
    """

    default_params: ClassVar[dict[str, Any]] = {}
    #: The typed parameters (see :class:`FusionParams`); ``None`` for a fusion that declares none.
    params_model: ClassVar[type[FusionParams] | None] = None
    #: True if the model handles a modality being absent (zeros are used otherwise).
    supports_missing: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.params_model is not None and "default_params" not in cls.__dict__:
            cls.default_params = cls.params_model().model_dump(mode="json")

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest fusion hyper-parameters for one Optuna trial."""
        return {}

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        """Raise :class:`~mmbench.errors.UsageError` if this fusion cannot use ``spec``."""

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def resolve_params(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated with overrides, checked against ``params_model`` when there is one.

        Raises :class:`~mmbench.errors.UsageError` for an unknown key, a wrong type or a value
        out of range (the message names ``fusion.<key>`` and the allowed values).
        """
        from mmbench.errors import UsageError

        params = dict(self.default_params)
        for key, value in (overrides or {}).items():
            if key not in params:
                known = ", ".join(sorted(params)) or "(none)"
                raise UsageError(f"unknown parameter fusion.{key} for {type(self).__name__}; known: {known}")
            params[key] = value
        if self.params_model is not None:
            params = check_params(self.params_model, params)
        return params


# ---------------------------------------------------------------- extractors (``mmbench extract``)
# Raw media (audio, video) -> one vector per utterance. Registered through the
# ``mmbench_register_extractors`` hook with their modality and default output column;
# ``mmbench.plugins.extractors`` re-exports these names for existing plugins.


def extractor_entry(name: str, modality: str | None = None) -> Entry:
    """The registry entry of extractor ``name`` (``entry.extra`` holds modality and column).

    Unknown names and modality mismatches are usage errors.
    """
    from mmbench.errors import UsageError
    from mmbench.registry import get_registry

    entry = get_registry().get("extractor", name)
    if modality is not None and modality != entry.extra["modality"]:
        raise UsageError(
            f"extractor {name!r} reads {entry.extra['modality']} media, not {modality!r}: "
            f"use --encoder {entry.extra['modality']}={name}"
        )
    return entry


def create_extractor(
    name: str, options: dict[str, Any] | None = None, modality: str | None = None
) -> Extractor:
    """Build the extractor ``name`` with ``options`` (strings are converted to the options' types)."""
    return extractor_entry(name, modality).load()(options or {})


def library_versions(*names: str) -> dict[str, str | None]:
    """Installed versions of the distributions that shape an extractor's numbers."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def coerce_option(name: str, option: str, value: Any, default: Any) -> Any:
    """``value`` (a string from the command line) converted to the type of the option's ``default``.

    Raises:
        UsageError: the string does not read as that type (names the extractor and option).
    """
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            low = value.strip().lower()
            if low not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(value)
            return low in {"true", "1", "yes"}
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        from mmbench.errors import UsageError

        raise UsageError(
            f"extractor {name!r}: option {option}={value!r} must be a {type(default).__name__}"
        ) from None
    return value


class Extractor:
    """Base class: one media file in, one float32 array out (``[D]``, or ``[T, D]`` for sequences)."""

    name: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    #: bumped whenever the algorithm changes its numbers, so old shards are not reused
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    libraries: ClassVar[tuple[str, ...]] = ("numpy",)

    def __init__(self, options: dict[str, Any]) -> None:
        from mmbench.errors import UsageError

        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise UsageError(
                f"extractor {self.name!r} has no option {unknown[0]!r}; "
                f"options: {', '.join(sorted(self.defaults)) or '(none)'}"
            )
        self.options = {
            k: coerce_option(self.name, k, options[k], d) if k in options else d
            for k, d in self.defaults.items()
        }
        for key, allowed in self.choices.items():
            if self.options[key] not in allowed:
                raise UsageError(
                    f"extractor {self.name!r}: {key}={self.options[key]!r} is not one of {', '.join(allowed)}"
                )
        self._ready = False

    def identity(self) -> dict[str, Any]:
        """Everything that determines the output; computable without loading a model."""
        return {
            "name": self.name,
            "version": self.version,
            "modality": self.modality,
            "options": dict(self.options),
            "libraries": library_versions(*self.libraries),
        }

    def setup(self) -> None:
        """Load models or tables once before the first :meth:`extract` (no-op by default)."""

    def ensure_ready(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def extract(self, path: Path) -> np.ndarray:
        """Features of one media file as float32 ``[D]`` (or ``[T, D]``)."""
        raise NotImplementedError

    def extract_with_info(self, path: Path) -> tuple[np.ndarray, dict[str, Any] | None]:
        """:meth:`extract` and what was read (``None`` here). Audio extractors return the file's
        ``sample_rate``, ``channels``, ``duration_s``, ``resampled_to`` and any ``warning``;
        ``mmbench extract`` records them per clip in ``manifest.json``."""
        return self.extract(path), None


# ---------------------------------------------------------------- trackers (``--track NAME``)
# Experiment trackers receive the lifecycle hooks of a command's runs; registered through
# ``mmbench_register_trackers``; ``mmbench.runner.tracking`` activates them and re-exports this.


class Tracker:
    """Base class of tracker plugins. Override ``start``, ``epoch``, ``end`` and ``close``.

    ``requires`` names the import (e.g. ``"tensorboard"``) and ``extra`` the pip extra
    (``mmbench[tensorboard]``) checked before anything runs. ``out_dir`` is the command's output
    folder (``--out``); ``log`` prints a line on stderr."""

    name = "tracker"
    requires: str | None = None
    extra: str | None = None

    def __init__(self, out_dir: Path, log: Callable[[str], None] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.log: Callable[[str], None] = log or (lambda message: None)
        self.sitting_out = False

    # -------------------------------------------------------------- to override
    def start(self, run: dict[str, Any]) -> None:
        """A run starts (``run``: dataset, fusion, seed, protocol, protocol_fingerprint)."""

    def epoch(self, run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
        """An epoch ended: ``logs`` has train_loss, dev_loss, dev_<metric>, lr."""

    def end(self, run: dict[str, Any], record: dict[str, Any]) -> None:
        """The run's record is written (``record["status"]`` is ``ok`` or ``failed``)."""

    def close(self) -> None:
        """The command is done (flush files, stop background processes)."""

    # -------------------------------------------------------------- hooks (guarded)
    def guarded(self, where: str, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn``; an exception becomes a warning and the tracker sits out the rest of the run."""
        if self.sitting_out:
            return
        try:
            fn(*args)
        except Exception as exc:
            self.sitting_out = True
            self.log(
                f"warning: tracker {self.name!r} failed at {where} ({type(exc).__name__}: {exc}); "
                "the run goes on without it"
            )

    @hookimpl
    def mmbench_run_start(self, run: dict[str, Any]) -> None:
        self.sitting_out = False
        self.guarded("run start", self.start, run)

    @hookimpl
    def mmbench_epoch_end(self, run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
        self.guarded(f"epoch {epoch}", self.epoch, run, epoch, logs)

    @hookimpl
    def mmbench_run_end(self, run: dict[str, Any], record: dict[str, Any]) -> None:
        self.guarded("run end", self.end, run, record)


class ContextPlugin:
    """Builds a dialogue context model: per-utterance representations -> context-aware ones.

    Under a context model a run batches whole dialogues. The fusion model is built with
    ``spec.num_outputs`` set to the context model's ``utterance_dim`` parameter, so its output
    ``[n, utterance_dim]`` is the fused representation of each utterance (the *output-width seam*:
    every fusion already maps its inputs to ``spec.num_outputs`` values, so no fusion needs to
    change). The utterances are placed into padded dialogues ``[B, T, utterance_dim]``; the module
    that :meth:`build` returns maps ``forward(x, mask, speaker)`` to ``[B, T, out_dim]``:

    * ``x``: float ``[B, T, D]``, dialogues in order of position, zeros at padded positions;
    * ``mask``: bool ``[B, T]``, True at real utterances;
    * ``speaker``: int64 ``[B, T]``, each utterance's party inside its dialogue (0, 1, ... by first
      appearance; 0 at padded positions).

    The module must expose ``out_dim`` (int) and must ignore padded positions: changing them must
    not change the outputs at real positions (``mmbench.testing.check_context_model``). With the
    parameter ``causal`` true, the output at position ``t`` may depend only on positions ``<= t``.
    A linear classifier on ``out_dim`` gives the logits. ``uses_dialogues`` false (the built-in
    ``none``) keeps today's utterance-level runs unchanged.
    """

    #: False only for ``none``: the run classifies each utterance alone, exactly as without context.
    uses_dialogues: ClassVar[bool] = True
    default_params: ClassVar[dict[str, Any]] = {}

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest context hyper-parameters for one Optuna trial (joined with the fusion's)."""
        return {}

    def validate(self, params: dict[str, Any]) -> None:
        """Raise :class:`~mmbench.errors.UsageError` for parameters this context model cannot use."""

    def utterance_dim(self, params: dict[str, Any]) -> int:
        """Width of the fused utterance representation (the fusion's output width under this model)."""
        return int(params.get("utterance_dim", 128))

    def build(self, dim: int, params: dict[str, Any]) -> nn.Module:
        """The context module for utterance representations of width ``dim``."""
        raise NotImplementedError

    def resolve_params(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated with overrides (``--set context.<key>=...``); unknown keys are an error."""
        from mmbench.errors import UsageError

        params = dict(self.default_params)
        for key, value in (overrides or {}).items():
            if key not in params:
                known = ", ".join(sorted(params)) or "(none)"
                raise UsageError(f"unknown parameter context.{key} for {type(self).__name__}; known: {known}")
            params[key] = value
        return params
