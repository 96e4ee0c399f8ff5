"""Figures in the house style (``mmbench.ui.plot_style``): PNG plus SVG beside it.

Per run, beside its record: confusion matrix (counts and row-normalised), training curves (train
and dev loss, dev metric, learning rate, the selected epoch), per-class F1; for a regression task
(no classes) test predictions against targets in place of the confusion matrix and per-class F1.
Per leaderboard, beside its markdown: the primary metric as dots with 95% intervals over seeds on a
zoomed axis with chance and majority-class lines, and a per-class F1 heatmap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmbench.ui.plot_style import (
    PALETTE,
    REFERENCE_COLOUR,
    STATUS_COLOURS,
    figure,
    house_style,
    legend_outside,
    save_figure,
)

RUN_PLOTS = ("confusion", "curves", "per_class")
#: The per-run plots of a regression task (no classes): predictions against targets, and the curves.
REGRESSION_RUN_PLOTS = ("scatter", "curves")
#: Dot colours: best, tied with the best, significantly worse.
COLOURS = STATUS_COLOURS


# ---------------------------------------------------------------- per run
def run_plot_paths(record_file: Path, kinds: tuple[str, ...] = RUN_PLOTS) -> dict[str, Path]:
    """``<stem>.confusion.png``, ``<stem>.curves.png``, ``<stem>.per_class.png`` beside the record
    (each with an ``.svg`` twin); ``kinds``: ``REGRESSION_RUN_PLOTS`` for ``<stem>.scatter.png``."""
    record_file = Path(record_file)
    stem = record_file.name[: -len(".json")] if record_file.name.endswith(".json") else record_file.stem
    return {kind: record_file.with_name(f"{stem}.{kind}.png") for kind in kinds}


def run_plot_kinds(record: dict[str, Any]) -> tuple[str, ...]:
    """The plots a record gets: ``RUN_PLOTS`` with classes, ``REGRESSION_RUN_PLOTS`` without."""
    has_classes = record.get("class_names") or (record.get("metrics") or {}).get("test", {}).get("per_class")
    return RUN_PLOTS if has_classes else REGRESSION_RUN_PLOTS


def _run_title(record: dict[str, Any]) -> str:
    preset = ((record.get("protocol") or {}).get("data") or {}).get("preset")
    dataset = record["dataset"] + (f":{preset}" if preset else "")
    return f"{record['fusion']} · seed {record['seed']} · {dataset}"


def _matrix(ax: Any, values: np.ndarray, labels: np.ndarray, names: list[str], vmax: float, cmap: str) -> Any:
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax)
    for i in range(len(names)):
        for j in range(len(names)):
            dark = values[i, j] > 0.55 * vmax
            ax.text(
                j, i, labels[i, j], ha="center", va="center", fontsize=7, color="white" if dark else "black"
            )
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.grid(False)
    return image


def plot_confusion(record: dict[str, Any], path: Path) -> Path:
    """Test confusion matrix twice: raw counts, and rows normalised to recall (share of the true class)."""
    cm = np.asarray(record["metrics"]["test"]["confusion_matrix"], dtype=float)
    names = list(record.get("class_names") or record["metrics"]["test"]["per_class"])
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 2.0 + 0.42 * len(names)
    with house_style():
        fig, (raw_ax, norm_ax) = figure(2 * size + 1.6, size + 0.6, ncols=2)
        counts = np.vectorize(lambda v: f"{int(v)}")(cm)
        image = _matrix(raw_ax, cm, counts, names, max(cm.max(), 1.0), "Greys")
        raw_ax.set_ylabel("true")
        raw_ax.set_title("counts")
        fig.colorbar(image, ax=raw_ax, fraction=0.046, pad=0.04, label="utterances")
        shares = np.vectorize(lambda v: f"{v:.2f}")(norm)
        image = _matrix(norm_ax, norm, shares, names, 1.0, "Blues")
        norm_ax.set_title("normalised by true class (recall)")
        fig.colorbar(image, ax=norm_ax, fraction=0.046, pad=0.04, label="share of true class")
        test = record["metrics"]["test"]
        scores = f"test accuracy {test['accuracy']:.3f}, weighted F1 {test['weighted_f1']:.3f}"
        fig.suptitle(f"{_run_title(record)}: {scores}")
        fig.tight_layout()
        return save_figure(fig, path)


def plot_scatter(record: dict[str, Any], path: Path) -> Path:
    """Test predictions against targets (a regression task), the identity line dashed; MAE and Corr
    in the title. Needs the record's predictions file (``UsageError`` naming it when unreadable)."""
    from mmbench.errors import UsageError
    from mmbench.leaderboard.ties import load_predictions
    from mmbench.tasks import metric_label

    preds = load_predictions(record)
    if preds is None:
        raise UsageError(f"{record.get('_path')}: no readable predictions file for the scatter plot")
    test = record["metrics"]["test"]
    scores = ", ".join(f"{metric_label(m)} {test[m]:.3f}" for m in ("mae", "corr") if test.get(m) is not None)
    lo = float(min(preds.y_true.min(), preds.y_pred.min()))
    hi = float(max(preds.y_true.max(), preds.y_pred.max()))
    with house_style():
        fig, ax = figure(5.2, 4.8)
        ax.plot(
            [lo, hi],
            [lo, hi],
            color=REFERENCE_COLOUR,
            linestyle="--",
            linewidth=1,
            label="prediction = target",
        )
        ax.scatter(preds.y_true, preds.y_pred, s=10, alpha=0.6, color=PALETTE[0], label="test utterance")
        ax.set_xlabel("target")
        ax.set_ylabel("prediction")
        legend_outside(ax)
        ax.set_title(f"{_run_title(record)}: {scores}" if scores else _run_title(record))
        fig.tight_layout()
        return save_figure(fig, path)


def plot_curves(record: dict[str, Any], path: Path) -> Path:
    """Train and dev loss, the dev selection metric and the learning rate per epoch; the selected
    (best-dev) epoch marked. Legends sit to the right of the axes."""
    from matplotlib.ticker import MaxNLocator

    history = record.get("history") or []
    epochs = [h["epoch"] for h in history]
    best = record.get("best_epoch")
    with house_style():
        fig, (ax, lr_ax) = figure(7.2, 5.0, nrows=2, sharex=True, height_ratios=[3, 1])
        ax.plot(
            epochs, [h.get("train_loss") for h in history], marker="o", color=PALETTE[3], label="train loss"
        )
        if any("dev_loss" in h for h in history):
            ax.plot(
                epochs, [h.get("dev_loss") for h in history], marker="o", color=PALETTE[1], label="dev loss"
            )
        ax.set_ylabel("loss")
        handles, labels = ax.get_legend_handles_labels()
        dev_keys = sorted({k for h in history for k in h if k.startswith("dev_") and k != "dev_loss"})
        if dev_keys:
            ax2 = ax.twinx()
            ax2.grid(False)
            ax2.spines["right"].set_visible(True)
            for i, key in enumerate(dev_keys):
                ax2.plot(
                    epochs,
                    [h.get(key) for h in history],
                    marker="s",
                    color=PALETTE[i % 3],
                    label=key.replace("_", " "),
                )
            ax2.set_ylabel("dev metric")
            more_h, more_l = ax2.get_legend_handles_labels()
            handles, labels = handles + more_h, labels + more_l
        lrs = [h.get("lr") for h in history]
        if any(v is not None for v in lrs):
            lr_ax.plot(epochs, lrs, drawstyle="steps-post", color=PALETTE[2], label="learning rate")
            if all(v is not None and v > 0 for v in lrs):
                lr_ax.set_yscale("log")
        lr_ax.set_ylabel("lr")
        lr_ax.set_xlabel("epoch")
        if best is not None:
            for a in (ax, lr_ax):
                line = a.axvline(best, color=REFERENCE_COLOUR, linestyle="--", linewidth=1)
            handles.append(line)
            labels.append(f"selected epoch {best}")
        lr_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        anchor = 1.10 if dev_keys else 1.02
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(anchor, 1.0), borderaxespad=0)
        ax.set_title(_run_title(record))
        fig.tight_layout()
        return save_figure(fig, path)


def plot_run_per_class(record: dict[str, Any], path: Path) -> Path:
    """Per-class F1 on dev and test, with the test support under each class name."""
    test = record["metrics"]["test"]["per_class"]
    dev = (record["metrics"].get("dev") or {}).get("per_class") or {}
    names = list(record.get("class_names") or test)
    x = np.arange(len(names))
    with house_style():
        fig, ax = figure(max(4.8, 1.6 + 0.65 * len(names)), 3.8)
        if dev:
            ax.bar(x - 0.2, [dev[n]["f1"] for n in names], width=0.4, color=PALETTE[5], label="dev")
        ax.bar(
            x + (0.2 if dev else 0), [test[n]["f1"] for n in names], width=0.4, color=PALETTE[0], label="test"
        )
        ax.set_xticks(x, [f"{n}\n(n={test[n]['support']})" for n in names])
        ax.set_ylim(0, 1.0)
        ax.set_ylabel("F1")
        ax.grid(axis="x", visible=False)
        legend_outside(ax)
        ax.set_title(_run_title(record))
        fig.tight_layout()
        return save_figure(fig, path)


def plot_run(record: dict[str, Any], force: bool = False) -> list[Path]:
    """All per-run plots of an ok record, beside it; up-to-date ones are kept unless ``force``."""
    record_file = Path(record["_path"])
    if record.get("status") != "ok":
        return []
    makers = {
        "confusion": plot_confusion,
        "curves": plot_curves,
        "per_class": plot_run_per_class,
        "scatter": plot_scatter,
    }
    written = []
    mtime = record_file.stat().st_mtime
    for kind, path in run_plot_paths(record_file, run_plot_kinds(record)).items():
        if not force and path.exists() and path.stat().st_mtime >= mtime:
            continue
        written.append(makers[kind](record, path))
    return written


# ---------------------------------------------------------------- per leaderboard
def baselines(supports: list[int], metric: str) -> dict[str, float]:
    """Expected test score of two trivial predictors, from the test class counts ``supports``.

    * ``chance``: a uniformly random class per utterance (expected precision of class c = its
      prior p_c, recall = 1/K, so F1_c = 2 p_c / (1 + K p_c));
    * ``majority``: always the most frequent class (F1 = 2 p / (1 + p) for it, 0 for the rest).

    Metrics other than accuracy, weighted F1, macro F1 and UA (macro recall) get none."""
    counts = np.asarray(supports, dtype=float)
    if counts.sum() <= 0:
        return {}
    prior = counts / counts.sum()
    k = len(prior)
    f1_chance = 2 * prior / (1 + k * prior)
    top = float(prior.max())
    f1_major = 2 * top / (1 + top)
    table = {
        "accuracy": (1 / k, top),
        "weighted_accuracy": (1 / k, top),
        "weighted_f1": (float((prior * f1_chance).sum()), top * f1_major),
        "macro_f1": (float(f1_chance.mean()), f1_major / k),
        "unweighted_accuracy": (1 / k, 1 / k),
        "ua": (1 / k, 1 / k),
    }
    if metric not in table:
        return {}
    chance, majority = table[metric]
    return {"chance": chance, "majority": majority}


def interval95(mean: float, std: float, n: int) -> tuple[float, float]:
    """Student-t 95% interval of the mean over ``n`` seeds (sample std); a point for one seed."""
    if n < 2:
        return mean, mean
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1)) * std / np.sqrt(n)
    return mean - half, mean + half


def plot_metric_dots(
    labels: list[str],
    means: list[float],
    stds: list[float],
    status: list[str],
    ns: list[int],
    metric_label: str,
    title: str,
    path: Path,
    references: dict[str, float] | None = None,
) -> Path:
    """Dot-and-interval chart of the primary metric, best first: mean over seeds (dot) and its 95%
    interval (line); the axis zoomed on the intervals; chance and majority lines when ``references``
    fall inside the zoomed range (else named in the axis label). ``status`` per row: best, tied, worse."""
    intervals = [interval95(m, s, n) for m, s, n in zip(means, stds, ns, strict=True)]
    lo = min((a for a, _ in intervals), default=0.0)
    hi = max((b for _, b in intervals), default=1.0)
    span = max(hi - lo, 0.01)
    left, right = max(0.0, lo - 0.25 * span), min(1.0, hi + 0.25 * span) if hi <= 1 else hi + 0.25 * span
    if lo < 0:  # a correlation below 0: no floor at 0
        left = max(-1.0, lo - 0.25 * span)
    y = np.arange(len(labels))
    with house_style():
        fig, ax = figure(7.0, 1.3 + 0.36 * len(labels))
        for yi, (a, b), m, st in zip(y, intervals, means, status, strict=True):
            ax.plot([a, b], [yi, yi], color=COLOURS[st], linewidth=2.2, solid_capstyle="butt")
            ax.plot(
                [m], [yi], "o", color=COLOURS[st], markersize=6, markeredgecolor="black", markeredgewidth=0.5
            )
        outside = []
        for (name, value), style in zip(sorted((references or {}).items()), ("--", ":"), strict=False):
            if left <= value <= right:
                ax.axvline(
                    value, color=REFERENCE_COLOUR, linestyle=style, linewidth=1, label=f"{name} {value:.3f}"
                )
            else:
                outside.append(f"{name} {value:.3f}")
        ax.set_yticks(y, [f"{label} (n={n})" for label, n in zip(labels, ns, strict=True)], fontsize=9)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlim(left, right)
        ax.grid(axis="y", visible=False)
        # Means as a column of text right of the axes: never on top of an interval.
        for yi, m in zip(y, means, strict=True):
            ax.annotate(
                f"{m:.3f}",
                xy=(1.0, yi),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        xlabel = f"test {metric_label}: mean and 95% interval over seeds"
        if outside:
            xlabel += f" (off the axis: {', '.join(outside)})"
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        from matplotlib.lines import Line2D

        legend = [
            Line2D([], [], color=COLOURS[k], marker="o", linewidth=2.2, label=v)
            for k, v in (("best", "best"), ("tied", "tied with best"), ("worse", "significantly worse"))
            if k in status
        ]
        refs_h, refs_l = ax.get_legend_handles_labels()
        handles = legend + refs_h
        ax.legend(
            handles=handles,
            labels=[h.get_label() for h in legend] + refs_l,
            loc="upper left",
            bbox_to_anchor=(1.13, 1.0),
            borderaxespad=0,
        )
        fig.tight_layout()
        return save_figure(fig, path)


def plot_per_class_heatmap(
    labels: list[str], class_names: list[str], values: np.ndarray, title: str, path: Path
) -> Path:
    """Rows: methods, columns: classes, cells: mean test F1."""
    values = np.asarray(values, dtype=float)
    with house_style():
        fig, ax = figure(2.8 + 0.62 * len(class_names), 1.2 + 0.4 * len(labels))
        image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for i in range(len(labels)):
            for j in range(len(class_names)):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if values[i, j] > 0.6 else "white",
                )
        ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.grid(False)
        ax.set_title(title)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="test F1")
        fig.tight_layout()
        return save_figure(fig, path)


def group_references(group: Any) -> dict[str, float]:
    """Chance and majority-class scores of a leaderboard group's primary metric (test supports)."""
    for row in group.rows:
        for rec in row.records:
            per_class = ((rec.get("metrics") or {}).get("test") or {}).get("per_class") or {}
            supports = [per_class.get(c, {}).get("support") for c in group.class_names]
            if supports and all(isinstance(s, int) for s in supports):
                return baselines(supports, group.metric)
    return {}


def plot_group(group: Any, bars_path: Path, per_class_path: Path | None = None) -> list[Path]:
    """The leaderboard plots of one ``leaderboard.Group``: the primary metric's dots (best first in the
    metric's direction) and, for a classification task with ``per_class_path``, the per-class F1
    heatmap (a regression task has no classes: no heatmap)."""
    from mmbench.leaderboard.build import METRIC_NAMES

    metric = group.metric
    rows = [r for r in group.rows if r.mean(metric) is not None]  # undefined everywhere: no dot
    status = ["best" if r.best else "tied" if r.tied else "worse" for r in rows]
    dots = plot_metric_dots(
        [r.label for r in rows],
        [r.mean(metric) for r in rows],
        [r.std(metric) for r in rows],
        status,
        [r.summary["n_seeds"] for r in rows],
        METRIC_NAMES.get(metric, metric),
        group.title,
        bars_path,
        group_references(group),
    )
    if per_class_path is None or not group.class_names:
        return [dots]
    values = np.array(
        [
            [np.nan if r.per_class[c]["mean"] is None else r.per_class[c]["mean"] for c in group.class_names]
            for r in rows
        ],
        dtype=float,
    )
    heat = plot_per_class_heatmap(
        [r.label for r in rows],
        group.class_names,
        values,
        f"{group.title}: per-class test F1",
        per_class_path,
    )
    return [dots, heat]
