"""PNG plots (matplotlib, Agg backend: no display needed); SVG where the path ends in ``.svg``.

Per run, beside its record: confusion matrix, training curves, per-class F1.
Per leaderboard, beside its markdown: the primary metric with error bars, per-class F1 heatmap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

RUN_PLOTS = ("confusion", "curves", "per_class")
#: Bar colours: best, tied with the best, significantly worse.
COLOURS = {"best": "#1f77b4", "tied": "#7fb2d9", "worse": "#b0b0b0"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    import io

    import matplotlib

    from mmbench.records import atomic_write_bytes

    buf = io.BytesIO()
    if Path(path).suffix.lower() == ".svg":  # for the HTML site: text as text, no date, stable ids
        with matplotlib.rc_context({"svg.hashsalt": "mmbench", "svg.fonttype": "none"}):
            fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    else:
        fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


# ---------------------------------------------------------------- per run
def run_plot_paths(record_file: Path) -> dict[str, Path]:
    """``<stem>.confusion.png``, ``<stem>.curves.png``, ``<stem>.per_class.png`` beside the record."""
    record_file = Path(record_file)
    stem = record_file.name[: -len(".json")] if record_file.name.endswith(".json") else record_file.stem
    return {kind: record_file.with_name(f"{stem}.{kind}.png") for kind in RUN_PLOTS}


def _run_title(record: dict[str, Any]) -> str:
    preset = ((record.get("protocol") or {}).get("data") or {}).get("preset")
    dataset = record["dataset"] + (f":{preset}" if preset else "")
    return f"{record['fusion']} · seed {record['seed']} · {dataset}"


def plot_confusion(record: dict[str, Any], path: Path) -> Path:
    """Test confusion matrix, rows normalised to recall, with the counts written in the cells."""
    plt = _pyplot()
    cm = np.asarray(record["metrics"]["test"]["confusion_matrix"], dtype=float)
    names = list(record.get("class_names") or record["metrics"]["test"]["per_class"])
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 2.2 + 0.48 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), dpi=100)
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if norm[i, j] > 0.55 else "black",
            )
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    test = record["metrics"]["test"]
    ax.set_title(
        f"{_run_title(record)}\ntest accuracy {test['accuracy']:.3f}, weighted F1 {test['weighted_f1']:.3f}",
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    fig.tight_layout()
    return _save(fig, path)


def plot_curves(record: dict[str, Any], path: Path) -> Path:
    """Train loss and the dev selection metric per epoch; the selected (best-dev) epoch marked."""
    plt = _pyplot()
    history = record.get("history") or []
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6.0, 3.8), dpi=100)
    ax.plot(
        epochs, [h.get("train_loss") for h in history], marker="o", ms=3, color="#d62728", label="train loss"
    )
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss", color="#d62728")
    dev_keys = sorted({k for h in history for k in h if k.startswith("dev_")})
    handles, labels = ax.get_legend_handles_labels()
    if dev_keys:
        ax2 = ax.twinx()
        for key in dev_keys:
            ax2.plot(epochs, [h.get(key) for h in history], marker="s", ms=3, label=key.replace("_", " "))
        ax2.set_ylabel("dev metric")
        more_h, more_l = ax2.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    best = record.get("best_epoch")
    if best is not None:
        line = ax.axvline(best, color="grey", linestyle="--", linewidth=1)
        handles.append(line)
        labels.append(f"selected epoch {best}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(handles, labels, fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    ax.set_title(_run_title(record), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_run_per_class(record: dict[str, Any], path: Path) -> Path:
    """Per-class F1 on dev and test, with the test support under each class name."""
    plt = _pyplot()
    test = record["metrics"]["test"]["per_class"]
    dev = (record["metrics"].get("dev") or {}).get("per_class") or {}
    names = list(record.get("class_names") or test)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.6 + 0.65 * len(names), 3.8), dpi=100)
    if dev:
        ax.bar(x - 0.2, [dev[n]["f1"] for n in names], width=0.4, color="#aec7e8", label="dev")
    ax.bar(x + (0.2 if dev else 0), [test[n]["f1"] for n in names], width=0.4, color="#1f77b4", label="test")
    ax.set_xticks(x, [f"{n}\n(n={test[n]['support']})" for n in names], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(_run_title(record), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_run(record: dict[str, Any], force: bool = False) -> list[Path]:
    """All per-run plots of an ok record, beside it; up-to-date ones are kept unless ``force``."""
    record_file = Path(record["_path"])
    if record.get("status") != "ok":
        return []
    makers = {"confusion": plot_confusion, "curves": plot_curves, "per_class": plot_run_per_class}
    written = []
    mtime = record_file.stat().st_mtime
    for kind, path in run_plot_paths(record_file).items():
        if not force and path.exists() and path.stat().st_mtime >= mtime:
            continue
        written.append(makers[kind](record, path))
    return written


# ---------------------------------------------------------------- per leaderboard
def plot_metric_bars(
    labels: list[str],
    means: list[float],
    stds: list[float],
    status: list[str],
    ns: list[int],
    metric_label: str,
    title: str,
    path: Path,
) -> Path:
    """Horizontal bars of the primary metric (mean ± std over seeds), best first.

    ``status`` is ``best``, ``tied`` or ``worse`` per row (bar colour).
    """
    plt = _pyplot()
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.42 * len(labels)), dpi=100)
    ax.barh(
        y, means, xerr=stds, color=[COLOURS[s] for s in status], capsize=3, edgecolor="black", linewidth=0.4
    )
    for yi, m, s, n in zip(y, means, stds, ns, strict=True):
        ax.text(m + s + 0.005, yi, f"{m:.3f} (n={n})", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    top = max((m + s for m, s in zip(means, stds, strict=True)), default=1.0)
    ax.set_xlim(0, min(1.0, top + 0.12) if top <= 1 else top * 1.15)
    ax.set_xlabel(f"test {metric_label} (mean ± std over seeds)")
    ax.set_title(title, fontsize=10)
    from matplotlib.patches import Patch

    legend = [
        Patch(color=COLOURS[k], label=v)
        for k, v in (("best", "best"), ("tied", "tied with best"), ("worse", "significantly worse"))
        if k in status
    ]
    ax.legend(handles=legend, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_per_class_heatmap(
    labels: list[str], class_names: list[str], values: np.ndarray, title: str, path: Path
) -> Path:
    """Rows: methods, columns: classes, cells: mean test F1."""
    plt = _pyplot()
    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(2.8 + 0.62 * len(class_names), 1.2 + 0.4 * len(labels)), dpi=100)
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
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="test F1")
    fig.tight_layout()
    return _save(fig, path)


def plot_group(group: Any, bars_path: Path, per_class_path: Path) -> list[Path]:
    """The two leaderboard plots of one ``leaderboard.Group``."""
    from mmbench.leaderboard.build import METRIC_NAMES

    rows = group.rows
    status = ["best" if r.best else "tied" if r.tied else "worse" for r in rows]
    metric = group.metric
    bars = plot_metric_bars(
        [r.label for r in rows],
        [r.mean(metric) for r in rows],
        [r.std(metric) for r in rows],
        status,
        [r.summary["n_seeds"] for r in rows],
        METRIC_NAMES[metric],
        group.title,
        bars_path,
    )
    values = np.array([[r.per_class[c]["mean"] for c in group.class_names] for r in rows])
    heat = plot_per_class_heatmap(
        [r.label for r in rows],
        group.class_names,
        values,
        f"{group.title}: per-class test F1",
        per_class_path,
    )
    return [bars, heat]
