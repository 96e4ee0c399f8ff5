"""Robustness figures in the house style (``mmbench.ui.plot_style``): noise curves per fusion and
stacked modality contributions, titled with the dataset and protocol, with the spread over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmbench.ui.plot_style import PALETTE, figure, house_style, legend_outside, save_figure


def _by_fusion(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(records, key=lambda r: (r["fusion"], r["seed"])):
        if "robustness" in r:
            out.setdefault(r["fusion"], []).append(r)
    return out


def context_title(records: list[dict[str, Any]]) -> str:
    """``dataset[:preset] · protocol <fingerprint[:8]>`` of the analysed records (all of them named)."""
    specs, prints = [], []
    for r in records:
        preset = ((r.get("protocol") or {}).get("data") or {}).get("preset")
        spec = r.get("dataset", "?") + (f":{preset}" if preset else "")
        specs += [spec] if spec not in specs else []
        fp = str(r.get("protocol_fingerprint", ""))[:8]
        prints += [fp] if fp and fp not in prints else []
    return f"{', '.join(specs)} · protocol {', '.join(prints) or '?'}"


def _seeds(recs: list[dict[str, Any]]) -> str:
    return f"n={len(recs)} seed{'s' if len(recs) != 1 else ''}"


def plot_noise_curves(records: list[dict[str, Any]], path: Path, target: str = "all") -> Path:
    """Mean metric against noise level, one line per fusion, the band ± std over seeds."""
    groups = _by_fusion(records)
    with house_style():
        fig, ax = figure(7.2, 4.2)
        metric = "metric"
        for i, (fusion, recs) in enumerate(groups.items()):
            noise = recs[0]["robustness"]["noise"]
            metric = recs[0]["robustness"]["metric"]
            curves = np.array([r["robustness"]["noise"]["curves"][target] for r in recs])
            mean = curves.mean(axis=0)
            std = curves.std(axis=0, ddof=1) if len(recs) > 1 else np.zeros_like(mean)
            colour = PALETTE[i % len(PALETTE)]
            ax.plot(noise["levels"], mean, marker="o", color=colour, label=f"{fusion} ({_seeds(recs)})")
            ax.fill_between(noise["levels"], mean - std, mean + std, color=colour, alpha=0.15, linewidth=0)
        ax.set_xlabel("noise level (× train std per feature)")
        ax.set_ylabel(f"test {metric} (mean, band ± std over seeds)")
        where = "all modalities" if target == "all" else target
        ax.set_title(f"Noise on {where}: {context_title(records)}")
        legend_outside(ax)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_figure(fig, path)


def plot_contributions(records: list[dict[str, Any]], path: Path) -> Path:
    """Stacked bars: mean Shapley share of each modality per fusion; the whisker on each bar's
    total is ± std over seeds of the summed contributions."""
    groups = _by_fusion(records)
    fusions = list(groups)
    modalities = list(groups[fusions[0]][0]["robustness"]["contributions"]["shapley"]) if fusions else []
    with house_style():
        fig, ax = figure(7.2, 4.2)
        bottom_pos = np.zeros(len(fusions))
        bottom_neg = np.zeros(len(fusions))
        for i, m in enumerate(modalities):
            vals = np.array(
                [
                    np.mean([r["robustness"]["contributions"]["shapley"][m] for r in groups[f]])
                    for f in fusions
                ]
            )
            base = np.where(vals >= 0, bottom_pos, bottom_neg)
            ax.bar(fusions, vals, bottom=base, label=m, color=PALETTE[i % len(PALETTE)])
            bottom_pos += np.where(vals >= 0, vals, 0)
            bottom_neg += np.where(vals < 0, vals, 0)
        totals = [
            [sum(r["robustness"]["contributions"]["shapley"].values()) for r in groups[f]] for f in fusions
        ]
        spread = [float(np.std(t, ddof=1)) if len(t) > 1 else 0.0 for t in totals]
        ax.errorbar(
            fusions,
            [float(np.mean(t)) for t in totals],
            yerr=spread,
            fmt="none",
            ecolor="black",
            capsize=3,
            label="± std over seeds (total)",
        )
        metric = groups[fusions[0]][0]["robustness"]["metric"] if fusions else "metric"
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(f"Shapley contribution to test {metric}")
        ax.set_xticks(
            range(len(fusions)), [f"{f}\n({_seeds(groups[f])})" for f in fusions], rotation=20, ha="right"
        )
        ax.set_title(f"Modality contributions (sum = gain over no input): {context_title(records)}")
        legend_outside(ax)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_figure(fig, path)
