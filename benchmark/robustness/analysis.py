"""Robustness and modality analysis of trained models, measured on the test split.

* **Missing modalities**: every subset of modalities is evaluated with the others removed —
  zeros by default; a fusion that declares ``supports_missing`` also receives
  ``missing:<modality>`` flags (bool ``[B]``) and may mask properly.
* **Drops per removed modality** (``drops``): for each modality, how much worse each of the task's
  headline metrics gets with only that modality removed (``mmbench.tasks``: accuracy, UA, weighted
  and macro F1; or MAE, Corr, Acc-2 both ways, their F1, Acc-7). Sign convention: a positive drop
  is worse — a score that falls, or an error (MAE) that rises; ``None`` where a metric is undefined.
* **Modality contributions**: exact Shapley values over those subset evaluations
  (``v(S)`` = the primary metric with only ``S`` present, ``v(∅)`` = every modality removed), so
  the contributions sum to ``v(all) - v(∅)``: the full model's gain over its no-input output
  (Shapley efficiency). Per-class contributions use each class's F1 as ``v`` (classification only).
  The same values with ``v(∅)`` = chance (always predicting the train split's majority class, or
  its median target for a regression task) are reported too (``shapley_over_chance``): they sum to
  the full model's gain over chance. For a lower-is-better metric (MAE) the values are differences
  of errors: a helpful modality has a negative contribution.
* **Noise sweep**: Gaussian noise of ``level × (train-split std of each feature)`` added to one
  modality or to all of them, levels 0, 0.1, … 1.0. Relative robustness is the area under the
  metric-vs-level curve (trapezoid over [0, 1]); effective robustness is that area minus the area
  of the ``late`` baseline's curve scaled to the same clean metric. Both come from the
  project's own runs; level 0 adds nothing and reproduces the clean metric exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmbench.metrics import classification_metrics, primary_score
from mmbench.tasks import ClassificationTask, Task, higher_is_better
from mmbench.training.tensors import TensorSplit

DEFAULT_LEVELS = tuple(round(0.1 * i, 1) for i in range(11))
MAX_EXACT_MODALITIES = 10


def missing_key(modality: str) -> str:
    """Batch key of the per-sample "modality absent" flags given to fusions that support them."""
    return f"missing:{modality}"


def without(split: TensorSplit, removed: tuple[str, ...], flags: bool) -> TensorSplit:
    """A copy of ``split`` whose ``removed`` modalities are zeros (plus flags if supported)."""
    inputs = dict(split.inputs)
    n = len(split)
    for m in removed:
        inputs[m] = torch.zeros_like(inputs[m])
    if flags:
        for m in [k for k in split.inputs if not k.startswith(("mask:", "missing:"))]:
            inputs[missing_key(m)] = torch.full(
                (n,), m in removed, dtype=torch.bool, device=split.labels.device
            )
    return split.with_inputs(inputs)


def with_noise(
    split: TensorSplit,
    modalities: tuple[str, ...],
    level: float,
    std: dict[str, Tensor],
    generator: torch.Generator,
) -> TensorSplit:
    """A copy of ``split`` with Gaussian noise of ``level * train std`` on ``modalities``."""
    if level == 0:
        return split
    inputs = dict(split.inputs)
    for m in modalities:
        x = inputs[m]
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        inputs[m] = x + level * std[m].to(x.device) * noise
    return split.with_inputs(inputs)


def train_std(train: TensorSplit, modalities: list[str]) -> dict[str, Tensor]:
    """Per-feature standard deviation of each modality on the train split (real steps only)."""
    out = {}
    for m in modalities:
        x = train.inputs[m].float()
        if x.dim() == 3:
            mask = train.inputs.get(f"mask:{m}")
            x = x[mask] if mask is not None else x.reshape(-1, x.shape[-1])
        out[m] = x.std(dim=0, unbiased=True).cpu()
    return out


def shapley(values: dict[frozenset, float], players: list[str]) -> dict[str, float]:
    """Exact Shapley values of a game given ``v(S)`` for every subset ``S`` of ``players``."""
    n = len(players)
    phi = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for k in range(n):
            weight = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for subset in itertools.combinations(others, k):
                s = frozenset(subset)
                total += weight * (values[s | {p}] - values[s])
        phi[p] = total
    return phi


def auc(levels: list[float], scores: list[float]) -> float:
    """Trapezoid area under a metric-vs-noise curve, normalised by the level range."""
    x, y = np.asarray(levels, dtype=float), np.asarray(scores, dtype=float)
    span = x[-1] - x[0]
    return float(np.trapezoid(y, x) / span) if span > 0 else float(y[0])


def score_predictions(
    y: np.ndarray, pred: np.ndarray, class_names: list[str], metric: str
) -> tuple[float, list[float]]:
    """The primary metric and each class's F1 of one set of predictions."""
    m = classification_metrics(y, pred, class_names)
    return primary_score(y, pred, len(class_names), metric), [m["per_class"][c]["f1"] for c in class_names]


def drop(clean: float | None, value: float | None, metric: str) -> float | None:
    """How much worse ``value`` is than ``clean``: positive when a score falls or an error (MAE) rises."""
    if clean is None or value is None:
        return None
    return clean - value if higher_is_better(metric) else value - clean


def evaluate_robustness(
    predict: Callable[[TensorSplit], np.ndarray],
    train: TensorSplit,
    test: TensorSplit,
    modalities: list[str],
    class_names: list[str],
    metric: str,
    supports_missing: bool = False,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    seed: int = 0,
    task: Task | None = None,
) -> dict[str, Any]:
    """Missing-modality subsets, drops per removed modality, Shapley contributions and noise curves
    for one trained model. ``predict`` gives ``[N]`` predictions (``task.predictions``: classes or
    values); ``task`` defaults to classification into ``class_names``."""
    if len(modalities) > MAX_EXACT_MODALITIES:
        raise ValueError(f"exact Shapley values are limited to {MAX_EXACT_MODALITIES} modalities")
    task = task or ClassificationTask(tuple(class_names))
    y = test.labels.cpu().numpy()

    def score_of(pred: np.ndarray) -> tuple[float, list[float]]:
        if class_names:
            return score_predictions(y, pred, class_names, metric)
        return task.score(y, pred, metric), []  # no classes: no per-class F1

    def score(split: TensorSplit) -> tuple[float, list[float]]:
        return score_of(predict(split))

    subsets: dict[frozenset, float] = {}
    per_class: dict[frozenset, list[float]] = {}
    rows = []
    full_metrics: dict[str, Any] = {}
    drops: dict[str, dict[str, float | None]] = {}
    headline = task.headline_metrics
    for r in range(len(modalities), -1, -1):  # all modalities first: the clean metrics
        for present in itertools.combinations(modalities, r):
            removed = tuple(m for m in modalities if m not in present)
            pred = predict(without(test, removed, supports_missing))
            value, pc = score_of(pred)
            subsets[frozenset(present)], per_class[frozenset(present)] = value, pc
            rows.append({"present": list(present), "removed": list(removed), metric: value})
            if len(removed) <= 1:
                scores = task.metrics(y, pred)
                if not removed:
                    full_metrics = scores
                else:
                    drops[removed[0]] = {m: drop(full_metrics.get(m), scores.get(m), m) for m in headline}
    rows.sort(key=lambda row: len(row["present"]))  # stored from no input up to every modality
    full, empty = subsets[frozenset(modalities)], subsets[frozenset()]
    phi = shapley(subsets, modalities)
    gain = full - empty
    phi_class = {
        c: shapley({s: v[i] for s, v in per_class.items()}, modalities) for i, c in enumerate(class_names)
    }
    # Chance = always predicting the train split's majority class. Taking it as v(∅) instead of the
    # model's own no-input score moves every player's Shapley value by (v(∅) - chance) / M, so
    # the values then sum to the full model's gain over chance.
    majority = np.full_like(y, task.baseline_prediction(train.labels.cpu().numpy()))
    chance, chance_class = score_of(majority)
    shift = (empty - chance) / len(modalities)
    phi_chance = {m: v + shift for m, v in phi.items()}
    gain_chance = full - chance
    phi_class_chance = {
        c: {
            m: v + (per_class[frozenset()][i] - chance_class[i]) / len(modalities)
            for m, v in phi_class[c].items()
        }
        for i, c in enumerate(class_names)
    }

    std = train_std(train, modalities)
    curves = {}
    for target in [*modalities, "all"]:
        mods = tuple(modalities) if target == "all" else (target,)
        generator = torch.Generator().manual_seed(seed)
        curves[target] = [score(with_noise(test, mods, lv, std, generator))[0] for lv in levels]

    return {
        "metric": metric,
        "clean": full,
        "missing": rows,
        "drops": {
            "convention": "clean minus without the modality for scores, without minus clean for errors "
            "(MAE): positive is worse",
            "metrics": list(headline),
            "removed": {m: drops[m] for m in modalities},
        },
        "contributions": {
            "no_input": empty,
            "gain": gain,
            "shapley": phi,
            "share": {m: (v / gain if gain else 0.0) for m, v in phi.items()},
            "per_class": phi_class,
            "chance": chance,
            "gain_over_chance": gain_chance,
            "shapley_over_chance": phi_chance,
            "share_over_chance": {
                m: (v / gain_chance if gain_chance else 0.0) for m, v in phi_chance.items()
            },
            "per_class_over_chance": phi_class_chance,
        },
        "noise": {
            "levels": list(levels),
            "curves": curves,
            "relative_robustness": {t: auc(list(levels), c) for t, c in curves.items()},
        },
    }


def effective_robustness(curve: list[float], late_curve: list[float], levels: list[float]) -> float:
    """Area of ``curve`` minus the area of the late baseline's curve scaled to equal clean metric."""
    if not late_curve or late_curve[0] == 0:
        return float("nan")
    scale = curve[0] / late_curve[0]
    return auc(levels, curve) - auc(levels, [scale * v for v in late_curve])
