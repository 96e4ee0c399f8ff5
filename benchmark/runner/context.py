"""Dialogue context models in a run: resolving the model and its parameters, the record entry,
dialogue-batched splits, and the tuning search space (see docs/context.md).

``prep`` is a :class:`mmbench.runner.run.Prepared` (data and protocol resolved once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmbench.errors import UsageError
from mmbench.runner.methods import NO_CONTEXT

if TYPE_CHECKING:
    from mmbench.runner.run import Prepared


def resolve_context(prep: Prepared, context: str) -> tuple[Any, dict[str, Any]]:
    """The context model's plugin and parameters (``--set context.<key>=...``, checked).

    With several context models in one run, a ``context.*`` key applies to those that have it.
    """
    plugin = prep.registry.create("context", context)
    overrides = dict(prep.protocol.get("context") or {})
    if len(prep.request.contexts) > 1:
        overrides = {k: v for k, v in overrides.items() if k in plugin.default_params}
    params = plugin.resolve_params(overrides)
    if plugin.uses_dialogues:
        plugin.validate(params)
    return plugin, params


def record_context_model(registry: Any, record: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    """The context model ``(plugin, params)`` a record was trained with, or None (utterance level)."""
    entry = record.get("context")
    if not isinstance(entry, dict) or entry.get("name", NO_CONTEXT) == NO_CONTEXT:
        return None
    plugin = registry.create("context", entry["name"])
    return plugin, plugin.resolve_params(entry.get("params") or {})


def context_record(prep: Prepared, context: str, params: dict[str, Any]) -> dict[str, Any]:
    """``{"context": {name, params, causal}}`` for the record; ``{}`` for utterance-level runs on data
    without dialogues (their records stay as they were before context models existed)."""
    if context == NO_CONTEXT and "dialogue" not in prep.data.groups:
        return {}
    return {"context": {"name": context, "params": params, "causal": bool(params.get("causal", False))}}


def context_tensors(prep: Prepared, context_plugin: Any, tensors: dict) -> dict:
    """The splits batched by dialogue when the context model uses dialogues, else ``tensors``."""
    from mmbench.training.dialogue import dialogue_split

    if not context_plugin.uses_dialogues:
        return tensors
    if prep.protocol["train"]["imbalance"] == "oversample":
        raise UsageError(
            "train.imbalance=oversample repeats single utterances and cannot be used with a context "
            "model, which trains on whole dialogues; use train.imbalance=class_weights"
        )
    return {s: dialogue_split(prep.data, s, t) for s, t in tensors.items()}


def check_context_overrides(prep: Prepared) -> None:
    """``--set context.<key>``: some requested context model must have the key; each one's
    parameters must be valid (before any training starts)."""
    overrides = prep.protocol.get("context") or {}
    if overrides and not isinstance(overrides, dict):
        raise UsageError("protocol key 'context' must be a mapping of context model parameters")
    plugins = {c: prep.registry.create("context", c) for c in prep.request.contexts}
    for key in overrides:
        if not any(key in p.default_params for p in plugins.values()):
            raise UsageError(
                f"--set context.{key}: no requested context model ({', '.join(plugins)}) "
                f"has a parameter {key!r}"
            )
    for context in prep.request.contexts:
        resolve_context(prep, context)


def tuning_context(prep: Any, name: str, tensors: dict) -> tuple[Any, dict]:
    """The context plugin tuned with a fusion and the train/dev splits it trains on."""
    plugin = prep.registry.create("context", name)
    return plugin, context_tensors(prep, plugin, tensors)


def suggest_context(prep: Any, plugin: Any, trial: Any, default_trial: bool) -> dict[str, Any]:
    """The context parameters of one Optuna trial: its search space (names ``context.*``) unless it
    is the default trial, under ``--set context.*`` overrides; validated and kept as a user attribute."""
    values = {} if default_trial else plugin.search_space(trial)
    params = plugin.resolve_params({**values, **dict(prep.protocol.get("context") or {})})
    if plugin.uses_dialogues:
        plugin.validate(params)
        trial.set_user_attr("context_params", params)
    return params


def single_context(contexts: list[str]) -> str:
    """``mmbench tune`` tunes one context model with the fusion."""
    if len(contexts) > 1:
        raise UsageError("mmbench tune takes one --context model at a time")
    return contexts[0] if contexts else NO_CONTEXT


def dialogue_model(
    plugin: Any, spec: Any, params: dict[str, Any], data: Any, registry: Any, context: tuple[Any, dict]
) -> Any:
    """Fusion -> context model -> classifier (:class:`~mmbench.training.dialogue.DialogueModel`).

    The fusion is built with ``num_classes`` = the context model's utterance width (the output-width
    seam), so its output is the fused utterance representation; in-model encoders stay inside it.
    """
    import dataclasses

    from mmbench.training.dialogue import DialogueModel
    from mmbench.training.in_model import attach_encoders

    context_plugin, context_params = context
    width = context_plugin.utterance_dim(context_params)
    utterance = attach_encoders(
        plugin.build(dataclasses.replace(spec, num_outputs=width), params), data, registry
    )
    return DialogueModel(utterance, context_plugin.build(width, context_params), spec.num_outputs)
