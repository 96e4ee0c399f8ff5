"""Base classes that plugin objects derive from: datasets, encoders and fusions.

These are the plugin contracts (see ``docs/plugins.md``). The module imports no torch: a
fusion's ``build`` imports it when a model is actually built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import optuna
    from torch import nn

    from mmbench.data import InputSpec, MultimodalData


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


class FusionPlugin:
    """Builds an ``nn.Module`` mapping ``dict[str, Tensor]`` batches to class logits.

    ``default_params`` are the hyper-parameters used when nothing overrides them (``--set
    fusion.<name>=...``, tuned parameters); ``search_space`` is the Optuna define-by-run space.
    """

    default_params: ClassVar[dict[str, Any]] = {}
    #: True if the model handles a modality being absent (zeros are used otherwise).
    supports_missing: ClassVar[bool] = False

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest fusion hyper-parameters for one Optuna trial."""
        return {}

    def validate(self, spec: InputSpec, params: dict[str, Any]) -> None:
        """Raise :class:`~mmbench.errors.UsageError` if this fusion cannot use ``spec``."""

    def build(self, spec: InputSpec, params: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def resolve_params(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated with overrides; unknown keys are an error."""
        from mmbench.errors import UsageError

        params = dict(self.default_params)
        for key, value in (overrides or {}).items():
            if key not in params:
                known = ", ".join(sorted(params)) or "(none)"
                raise UsageError(f"unknown parameter fusion.{key} for {type(self).__name__}; known: {known}")
            params[key] = value
        return params
