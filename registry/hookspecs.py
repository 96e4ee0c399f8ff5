"""Hook specifications of the ``mmbench`` plugin system (pluggy project ``mmbench``).

A plugin is a module (or object) exposed through the ``mmbench`` entry-point group that
implements some of these hooks with ``@mmbench.registry.hookimpl``. Registration hooks push
lazy entries into the :class:`~mmbench.registry.Registry` they receive: a name, a one-line
summary and an ``"module:attr"`` import path. Nothing heavy (torch, transformers) may be
imported while registering; it is imported when the entry is built.

Lifecycle hooks let loggers and trackers observe runs. They are called for every plugin that
implements them; their return values are ignored. A lifecycle hook that raises fails the run
with the plugin's name in the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from mmbench.registry.registry import Registry

hookspec = pluggy.HookspecMarker("mmbench")


@hookspec
def mmbench_register_datasets(registry: Registry) -> None:
    """Register dataset plugins with ``registry.add_dataset(name, target, summary, ...)``.

    Called once when the registry is built. ``target`` names a class deriving from
    :class:`mmbench.contracts.DatasetPlugin`.
    """


@hookspec
def mmbench_register_encoders(registry: Registry) -> None:
    """Register encoder plugins with ``registry.add_encoder(name, target, summary)``.

    Called once when the registry is built. ``target`` names a class deriving from
    :class:`mmbench.contracts.EncoderPlugin`.
    """


@hookspec
def mmbench_register_fusions(registry: Registry) -> None:
    """Register fusion plugins with ``registry.add_fusion(name, target, summary)``.

    Called once when the registry is built. ``target`` names a class deriving from
    :class:`mmbench.contracts.FusionPlugin`.
    """


@hookspec
def mmbench_register_extractors(registry: Registry) -> None:
    """Register raw-media feature extractors with ``registry.add_extractor(name, target, summary,
    modality=..., column=...)``.

    Called once when the registry is built. ``target`` names a class deriving from
    :class:`mmbench.contracts.Extractor`; ``mmbench extract --encoder MODALITY=NAME`` runs it.
    """


@hookspec
def mmbench_register_executors(registry: Registry) -> None:
    """Register executors with ``registry.add_executor(name, target, summary)``.

    Called once when the registry is built. ``target`` names a class deriving from
    :class:`mmbench.runner.executor.Executor`; ``mmbench sweep --executor NAME`` and
    ``mmbench tune --executor NAME`` run cells and tuning workers on it. Registering must not
    import the engine (ray, submitit): it is imported when the executor is built.
    """


@hookspec
def mmbench_register_context_models(registry: Registry) -> None:
    """Register dialogue context models with ``registry.add_context_model(name, target, summary)``.

    Called once when the registry is built. ``target`` names a class deriving from
    :class:`mmbench.contracts.ContextPlugin`; ``mmbench run --context NAME`` runs it over the
    per-utterance representations a fusion produces for each dialogue (docs/context.md).
    """


@hookspec
def mmbench_run_start(run: dict[str, Any]) -> None:
    """Called before training one (dataset, fusion, seed) run.

    ``run`` holds ``dataset``, ``fusion``, ``seed``, ``protocol`` (resolved) and
    ``protocol_fingerprint``.
    """


@hookspec
def mmbench_epoch_end(run: dict[str, Any], epoch: int, logs: dict[str, float]) -> None:
    """Called after each training epoch with its losses and dev metrics (``logs``)."""


@hookspec
def mmbench_run_end(run: dict[str, Any], record: dict[str, Any]) -> None:
    """Called after a run's record has been written; ``record`` is the RunRecord as a dict."""


@hookspec
def mmbench_register_trackers(registry: Registry) -> None:
    """Register experiment trackers with ``registry.add_tracker(name, target, summary)``.

    Called once when the registry is built. ``target`` names a subclass of
    ``mmbench.contracts.Tracker``; it is created only when a command runs with
    ``--track NAME``, and then receives the lifecycle hooks of that command's runs.
    """


REGISTRATION_HOOKS = (
    "mmbench_register_datasets",
    "mmbench_register_encoders",
    "mmbench_register_fusions",
    "mmbench_register_extractors",
    "mmbench_register_trackers",
    "mmbench_register_executors",
    "mmbench_register_context_models",
)
LIFECYCLE_HOOKS = ("mmbench_run_start", "mmbench_epoch_end", "mmbench_run_end")
