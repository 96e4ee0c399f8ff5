"""PNG plots of the robustness analysis: noise curves per fusion, stacked contribution bars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _by_fusion(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(records, key=lambda r: (r["fusion"], r["seed"])):
        if "robustness" in r:
            out.setdefault(r["fusion"], []).append(r)
    return out


def plot_noise_curves(records: list[dict[str, Any]], path: Path, target: str = "all") -> Path:
    """Mean metric (± std over seeds) against noise level, one line per fusion."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    metric = None
    for fusion, recs in _by_fusion(records).items():
        noise = recs[0]["robustness"]["noise"]
        metric = recs[0]["robustness"]["metric"]
        curves = np.array([r["robustness"]["noise"]["curves"][target] for r in recs])
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        ax.plot(noise["levels"], mean, marker="o", ms=3, label=f"{fusion} (n={len(recs)})")
        ax.fill_between(noise["levels"], mean - std, mean + std, alpha=0.15)
    ax.set_xlabel("noise level (× train std per feature)")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"Noise on {'all modalities' if target == 'all' else target}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_contributions(records: list[dict[str, Any]], path: Path) -> Path:
    """Stacked bars: mean Shapley share of each modality, one bar per fusion."""
    plt = _pyplot()
    groups = _by_fusion(records)
    fusions = list(groups)
    modalities = list(groups[fusions[0]][0]["robustness"]["contributions"]["shapley"]) if fusions else []
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    bottom_pos = np.zeros(len(fusions))
    bottom_neg = np.zeros(len(fusions))
    for m in modalities:
        vals = np.array(
            [np.mean([r["robustness"]["contributions"]["shapley"][m] for r in groups[f]]) for f in fusions]
        )
        base = np.where(vals >= 0, bottom_pos, bottom_neg)
        ax.bar(fusions, vals, bottom=base, label=m)
        bottom_pos += np.where(vals >= 0, vals, 0)
        bottom_neg += np.where(vals < 0, vals, 0)
    metric = groups[fusions[0]][0]["robustness"]["metric"] if fusions else "metric"
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"Shapley contribution to test {metric}")
    ax.set_title("Modality contributions (sum = gain over no input)")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
