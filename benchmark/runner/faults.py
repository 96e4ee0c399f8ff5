"""Whose fault a failed run is: a fusion that raises or returns bad output fails its own run.

The failure names the fusion, the plugin that registered it and that plugin's distribution, so
a grid of fusions can go on past one broken plugin (the command exits 1 at the end). Eval-mode
outputs are checked before they are scored: logits of another shape, NaN or inf fail the run.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mmbench.errors import PluginError, RunFailed, UsageError


def fusion_origin(registry: Any, fusion: str) -> dict[str, Any]:
    """The fusion's name, the plugin that registered it and that plugin's distribution and version."""
    info = registry.plugin_of("fusion", fusion)
    return {
        "fusion": fusion,
        "plugin": getattr(info, "name", None),
        "distribution": getattr(info, "distribution", None),
        "version": getattr(info, "version", None),
    }


def describe_origin(origin: dict[str, Any]) -> str:
    """``fusion 'x' (plugin 'p', distribution 'd' 1.0)`` for failure reasons."""
    where = f"plugin {origin['plugin']!r}"
    if origin.get("distribution"):
        where += f", distribution {origin['distribution']!r}"
        if origin.get("version"):
            where += f" {origin['version']}"
    return f"fusion {origin['fusion']!r} ({where})"


def plugin_failure(origin: dict[str, Any], stage: str, exc: BaseException) -> dict[str, Any]:
    """A failed run's ``failure`` for an exception raised by the fusion's code in ``stage``."""
    return {
        "reason": f"{describe_origin(origin)} raised in {stage}: {type(exc).__name__}: {exc}",
        "epoch": None,
        "stage": stage,
        "plugin": origin["plugin"],
        "distribution": origin["distribution"],
    }


def evaluate_outputs(
    trainer: Any, tensors: dict, dev_t: Any, num_outputs: int, origin: dict[str, Any]
) -> tuple[np.ndarray, Any, float] | dict[str, Any]:
    """Dev predictions ``[N]``, test outputs ``[N, num_outputs]`` and the test inference seconds; or
    the failure.

    The model's eval-mode outputs must be finite, of shape ``[N, num_outputs]`` (logits, or one
    regression value per sample; ``trainer.task`` turns them into predictions): NaN or inf
    (a model that breaks only in eval mode) or another shape fails the run instead of scoring it.
    """
    import torch

    try:
        dev_logits = trainer.predict_logits(tensors["dev"])
        # The test split is evaluated exactly once, with the best-dev checkpoint.
        t0 = time.perf_counter()
        test_logits = trainer.predict_logits(tensors["test"])
        if dev_t.type == "cuda":
            torch.cuda.synchronize(dev_t)
        infer_s = time.perf_counter() - t0
    except Exception as exc:
        if isinstance(exc, (UsageError, RunFailed)):
            raise
        return plugin_failure(origin, "evaluation", exc)
    for split, logits in (("dev", dev_logits), ("test", test_logits)):
        n = len(tensors[split])
        if tuple(logits.shape) != (n, num_outputs):
            shape = tuple(logits.shape)
            reason = f"returned logits of shape {shape} for the {split} split, expected ({n}, {num_outputs})"
        elif not bool(torch.isfinite(logits).all()):
            bad = int((~torch.isfinite(logits)).any(dim=1).sum())
            reason = f"returned NaN or inf logits in eval mode for {bad} of {n} {split} samples"
        else:
            continue
        return {
            "reason": f"{describe_origin(origin)} {reason}",
            "epoch": None,
            "stage": "evaluation",
            "plugin": origin["plugin"],
            "distribution": origin["distribution"],
        }
    return trainer.task.predictions(dev_logits).cpu().numpy(), test_logits, infer_s


def check_fusions(prep: Any) -> None:
    """Every requested fusion's parameters (types, ranges, fit to the data) before any training.

    Raises :class:`~mmbench.errors.UsageError` (exit code 2) naming ``fusion.<key>`` and what it
    accepts; a plugin whose own ``validate`` crashes is reported as a :class:`PluginError`.
    """
    spec = prep.data.input_spec()
    from mmbench.runner.run import resolve_fusion

    for fusion in prep.request.fusions:
        try:
            plugin, params, _, _ = resolve_fusion(prep, fusion)
            plugin.validate(spec, params)
        except UsageError as exc:
            raise UsageError(f"{fusion}: {exc}") from None
        except Exception as exc:
            origin = describe_origin(fusion_origin(prep.registry, fusion))
            raise PluginError(f"{origin} raised in validate: {type(exc).__name__}: {exc}") from exc
