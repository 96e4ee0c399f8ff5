"""``mmbench inspect`` for a regression target (e.g. sentiment intensity in [-3, 3]): label
statistics in place of class counts, and ridge probes scored with MAE and Pearson correlation in
place of logistic probes scored with Cohen's kappa.

* Target statistics per split: count, mean, sample std, min, max, quantiles (5, 25, 50, 75, 95%),
  the shares of zero, negative and positive targets (Acc-2's two conventions differ by the zeros),
  and a histogram on edges shared by the splits (unit-wide bins centred on the integers for a
  range of whole numbers, as CMU-MOSI/MOSEI's Acc-7 classes; else 12 equal bins of the range).
* Ridge probes (``alpha`` = :data:`RIDGE_ALPHA`, the counterpart of the logistic probe's
  ``C = 0.01``) on the train-standardised features, fitted on train and scored on dev, beside the
  constant baseline that always predicts the train median (the constant with the lowest train
  MAE). A probe "beats chance" when its dev Pearson correlation exceeds two standard errors of a
  correlation under no association, ``2 / sqrt(n_dev)`` (at least 0.02): no constant prediction
  and no input-blind guess can reach it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmbench.data import SPLITS, MultimodalData

RIDGE_ALPHA = 100.0
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MIN_CORR_MARGIN = 0.02
HISTOGRAM_BINS = 12
PROBE_HEADERS = ["probe", "dim", "MAE ↓", "Corr ↑", "beats chance"]


# ------------------------------------------------------------------------ statistics


def histogram_edges(values: np.ndarray, target_range: tuple[float, float] | None) -> np.ndarray:
    """Bin edges shared by every split: unit-wide bins centred on the integers of an integer range
    (Acc-7's classes on [-3, 3]), else :data:`HISTOGRAM_BINS` equal bins of the range (or of the
    values when the dataset declares none)."""
    if target_range is not None:
        low, high = float(target_range[0]), float(target_range[1])
    else:
        low, high = float(np.min(values)), float(np.max(values))
    if low == int(low) and high == int(high) and 2 <= high - low <= 20:
        return np.arange(low - 0.5, high + 1.0, 1.0)
    if high <= low:
        high = low + 1.0
    return np.linspace(low, high, HISTOGRAM_BINS + 1)


def split_stats(y: np.ndarray, edges: np.ndarray) -> dict[str, Any]:
    """Count, mean, std (ddof=1), range, quantiles, sign shares and histogram of ``[N]`` targets."""
    y = np.asarray(y, dtype=np.float64)
    if not len(y):
        return {"n": 0}
    counts, _ = np.histogram(np.clip(y, edges[0], edges[-1]), bins=edges)
    return {
        "n": int(len(y)),
        "mean": round(float(y.mean()), 4),
        "std": round(float(y.std(ddof=1)), 4) if len(y) > 1 else 0.0,
        "min": round(float(y.min()), 4),
        "max": round(float(y.max()), 4),
        "quantiles": {f"{int(q * 100)}%": round(float(np.quantile(y, q)), 4) for q in QUANTILES},
        "zero_share": round(float(np.mean(y == 0)), 4),
        "negative_share": round(float(np.mean(y < 0)), 4),
        "positive_share": round(float(np.mean(y > 0)), 4),
        "histogram": [int(c) for c in counts],
    }


def target_report(data: MultimodalData, protocol: dict[str, Any] | None) -> dict[str, Any]:
    """The regression target per split (see the module doc) and its declared range."""
    y = np.asarray(data.labels, dtype=np.float64)
    rng = data.target_range
    edges = histogram_edges(y, rng)
    return {
        "range": None if rng is None else [float(rng[0]), float(rng[1])],
        "histogram_edges": [round(float(e), 4) for e in edges],
        "splits": {s: split_stats(y[data.splits[s]], edges) for s in SPLITS},
        "metric": (protocol or {}).get("metric"),
    }


# ------------------------------------------------------------------------ probes


def ridge_probe(x: np.ndarray, y: np.ndarray, train: np.ndarray, dev: np.ndarray) -> np.ndarray:
    """Fit a ridge regression (``alpha`` = :data:`RIDGE_ALPHA`) on train rows; predict dev rows."""
    from sklearn.linear_model import Ridge

    return Ridge(alpha=RIDGE_ALPHA).fit(x[train], y[train]).predict(x[dev])


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    from mmbench.metrics import pearson

    corr = pearson(y_true, y_pred)
    return {
        "mae": round(float(np.mean(np.abs(y_pred - y_true))), 4),
        "corr": None if corr is None else round(corr, 4),
    }


def regression_probe_report(data: MultimodalData, standardised: dict[str, np.ndarray]) -> dict[str, Any]:
    """Ridge probes per modality and on all modalities (train -> dev), the median baseline, the verdict."""
    from mmbench.inspection.probes import ALL

    y = np.asarray(data.labels, dtype=np.float64)
    train, dev = data.splits["train"], data.splits["dev"]
    margin = round(max(MIN_CORR_MARGIN, 2.0 / math.sqrt(max(len(dev), 1))), 4)
    median = float(np.median(y[train]))
    views = {m: [m] for m in standardised}
    if len(standardised) > 1:
        views[ALL] = list(standardised)
    rows = []
    for label, mods in views.items():
        x = np.concatenate([standardised[m] for m in mods], axis=1)
        row = {"probe": label, "modalities": mods, "dim": int(x.shape[1]), "converged": True}
        row.update(_scores(y[dev], ridge_probe(x, y, train, dev)))
        row["chance_margin"] = margin
        row["beats_chance"] = row["corr"] is not None and row["corr"] > margin
        rows.append(row)
    base = {"probe": "train median", "value": round(median, 4)}
    base.update(_scores(y[dev], np.full(len(dev), median)))
    verdict, kind = regression_verdict(rows, base)
    return {
        "model": f"ridge regression (alpha={RIDGE_ALPHA:g}) on train-standardised features",
        "fit_on": "train",
        "scored_on": "dev",
        "n_train": int(len(train)),
        "n_dev": int(len(dev)),
        "rows": rows,
        "baseline": base,
        "verdict": verdict,
        "verdict_kind": kind,
    }


def regression_verdict(rows: list[dict[str, Any]], base: dict[str, Any]) -> tuple[str, str]:
    """One honest line on what the ridge probes show (judged by dev correlation), and its kind."""
    from mmbench.inspection.probes import ALL

    def corr(r: dict[str, Any]) -> float:
        return -1.0 if r["corr"] is None else r["corr"]

    singles = [r for r in rows if r["probe"] != ALL]
    joint = next((r for r in rows if r["probe"] == ALL), None)
    best = max(singles, key=corr)
    if not any(r["beats_chance"] for r in rows):
        return (
            "No ridge probe beats chance on dev (Pearson correlation at most "
            f"{rows[0]['chance_margin']:.3f}; the train-median baseline's MAE is {base['mae']:.3f}): "
            "the target is not linearly available in these features; expect linear and late fusions "
            "to stay near the baseline.",
            "no_linear_signal",
        )
    if joint is None:
        return (
            f"The {best['probe']} probe beats chance on dev (Corr {corr(best):.3f}, MAE {best['mae']:.3f}; "
            f"median baseline MAE {base['mae']:.3f}).",
            "single_modality",
        )
    if corr(joint) - corr(best) > joint["chance_margin"]:
        return (
            f"The all-modality probe (Corr {corr(joint):.3f}, MAE {joint['mae']:.3f}) clearly beats the "
            f"best single modality ({best['probe']}: Corr {corr(best):.3f}, MAE {best['mae']:.3f}): "
            "together the modalities carry more linearly usable signal, so fusing them should pay off.",
            "complementary",
        )
    return (
        f"The all-modality probe (Corr {corr(joint):.3f}) is not better than the best single modality "
        f"({best['probe']}: Corr {corr(best):.3f}) by more than the chance margin "
        f"{joint['chance_margin']:.3f} (2/sqrt(n_dev)): linearly, the other modalities add little that "
        "this dev split can show.",
        "dominated_by_one",
    )


# ------------------------------------------------------------------------ rendering


def target_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """Per split: n, mean, std, min, median, max, zero/negative/positive shares."""
    rows = []
    for split, s in summary["target"]["splits"].items():
        if not s["n"]:
            rows.append([split, 0, *["-"] * 8])
            continue
        rows.append(
            [
                split,
                s["n"],
                f"{s['mean']:.3f}",
                f"{s['std']:.3f}",
                f"{s['min']:.3f}",
                f"{s['quantiles']['50%']:.3f}",
                f"{s['max']:.3f}",
                f"{s['zero_share']:.3f}",
                f"{s['negative_share']:.3f}",
                f"{s['positive_share']:.3f}",
            ]
        )
    return rows


TARGET_HEADERS = ["split", "n", "mean", "std", "min", "median", "max", "zero", "negative", "positive"]


def probe_rows(summary: dict[str, Any]) -> list[list[Any]]:
    p = summary["probes"]
    rows = []
    for r in p["rows"]:
        flag = "yes" if r["beats_chance"] else f"no (needs Corr > {r['chance_margin']:.3f})"
        rows.append([r["probe"], r["dim"], f"{r['mae']:.3f}", _fmt(r["corr"]), flag])
    b = p["baseline"]
    rows.append([f"train median ({b['value']:g})", "-", f"{b['mae']:.3f}", _fmt(b["corr"]), "-"])
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def target_chart(summary: dict[str, Any], figure: Any, png: Any, colors: dict[str, str]) -> bytes:
    """Histogram of the target per split (shares of each split, on shared edges)."""
    target = summary["target"]
    edges = np.asarray(target["histogram_edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    width = (edges[1] - edges[0]) * 0.8 / len(SPLITS)
    fig = figure(max(6.0, 0.5 * len(centres) + 2), 3.8)
    ax = fig.add_subplot(1, 1, 1)
    for k, split in enumerate(SPLITS):
        s = target["splits"][split]
        if not s["n"]:
            continue
        shares = np.asarray(s["histogram"], dtype=float) / s["n"]
        ax.bar(centres + (k - 1) * width, shares, width, label=f"{split} ({s['n']})", color=colors[split])
    ax.set_xlabel("target")
    ax.set_ylabel("share of the split")
    ax.set_title(f"{summary['dataset']}: target distribution per split")
    from mmbench.ui.plot_style import legend_outside

    legend_outside(ax)
    ax.grid(axis="y", alpha=0.3)
    return png(fig)


def probe_chart(summary: dict[str, Any], figure: Any, png: Any) -> bytes:
    """Dev MAE of each ridge probe beside the train-median baseline (dashed)."""
    p = summary["probes"]
    rows = p["rows"]
    fig = figure(max(6.0, 1.3 * len(rows) + 2), 3.8)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    ax.bar(x, [r["mae"] for r in rows], 0.6, label="dev MAE")
    base = p["baseline"]["mae"]
    ax.axhline(base, color="black", linestyle="--", linewidth=1, label=f"train-median MAE {base:.3f}")
    ax.set_xticks(x)
    ax.set_xticklabels([r["probe"] for r in rows])
    ax.set_ylabel(f"dev MAE (n={p['n_dev']}; lower is better)")
    ax.set_title(f"{summary['dataset']}: ridge probes, fitted on train, scored on dev")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return png(fig)


def markdown_section(summary: dict[str, Any], md_table: Any, chart: str) -> list[str]:
    """The report's "Target" section (in place of "Classes")."""
    t = summary["target"]
    rng = t["range"]
    out = ["", "## Target", "", md_table(TARGET_HEADERS, target_rows(summary)), ""]
    out.append(
        "- a regression target"
        + (f" in [{rng[0]:g}, {rng[1]:g}]" if rng else " (the dataset declares no range)")
        + "; zero / negative / positive: shares of the split (Acc-2 has0 counts zeros as non-negative, "
        "Acc-2 non0 leaves them out)"
    )
    train = t["splits"]["train"]
    if train["n"]:
        q = ", ".join(f"{k} {v:g}" for k, v in train["quantiles"].items())
        out.append(f"- train quantiles: {q}")
    out += ["", f"![target distribution per split]({chart})", ""]
    return out


def probes_text(p: dict[str, Any]) -> str:
    return (
        f"{p['model']}; fitted on train ({p['n_train']} rows), scored on dev ({p['n_dev']} rows). "
        "The baseline always predicts the train median; a probe beats chance when its Pearson "
        "correlation exceeds two standard errors of a correlation under no association (2/sqrt(n_dev))."
    )
