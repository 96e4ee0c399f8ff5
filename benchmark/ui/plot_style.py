"""The house style of every mmbench figure (matplotlib, Agg canvas, no display, no pyplot state).

One place for fonts, colours, grids, legends and file output, so leaderboard, per-run, robustness,
inspection and tuning figures look like one paper's figures:

* ``figure(w, h)`` gives a bare ``Figure`` on an Agg canvas drawn under ``house_style()``;
* ``legend_outside(ax)`` puts a legend beside or below the axes, never over the data;
* ``save_figure(fig, path)`` writes the PNG and, beside it, the same figure as SVG (``MMBENCH_PLOT_FORMATS``
  adds ``pdf``), with no timestamps so the same data give the same bytes;
* ``legend_overlaps(fig)`` lists legends that cover an axes' plotted region (the tests use it).

Colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Okabe & Ito (2008), "Color Universal Design": 8 colours safe for colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
#: Leaderboard status colours: best, tied with the best, significantly worse.
STATUS_COLOURS = {"best": "#0072B2", "tied": "#56B4E9", "worse": "#8C8C8C"}
#: Reference lines (chance, majority class) and the selected epoch.
REFERENCE_COLOUR = "#555555"

HOUSE_RC: dict[str, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.08,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.facecolor": "white",
    "figure.facecolor": "white",
    "axes.prop_cycle": None,  # set in house_style() (needs matplotlib's cycler)
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "image.cmap": "viridis",
    "svg.fonttype": "none",  # text stays text in SVG (editable, searchable)
    "svg.hashsalt": "mmbench",  # stable element ids: same figure, same SVG bytes
    "pdf.fonttype": 42,
}

DEFAULT_FORMATS = ("png", "svg")


def plot_formats() -> tuple[str, ...]:
    """Formats written for every figure: PNG plus ``MMBENCH_PLOT_FORMATS`` (default ``png,svg``)."""
    raw = os.environ.get("MMBENCH_PLOT_FORMATS", ",".join(DEFAULT_FORMATS))
    chosen = [f.strip().lower() for f in raw.split(",") if f.strip().lower() in ("png", "svg", "pdf")]
    return tuple(dict.fromkeys(["png", *chosen]))


def _rc() -> dict[str, Any]:
    from cycler import cycler

    return {**HOUSE_RC, "axes.prop_cycle": cycler(color=PALETTE)}


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """Matplotlib rc parameters of the house style, for the duration of the block."""
    import matplotlib

    with matplotlib.rc_context(_rc()):
        yield


def figure(width: float, height: float, **subplots: Any) -> tuple[Any, Any]:
    """A bare ``Figure`` (Agg canvas) and its axes (``fig.subplots(**subplots)``), in the house style.

    Call it, draw and save inside ``house_style()`` so text sizes and colours apply."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots)
    return fig, axes


def legend_outside(
    ax: Any,
    handles: list[Any] | None = None,
    labels: list[str] | None = None,
    where: str = "right",
    **kw: Any,
) -> Any:
    """A legend beside (``right``) or under (``below``) the axes, outside the plotted region."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if where == "below":
        ncol = kw.pop("ncol", min(len(handles), 4))
        return ax.legend(
            handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, borderaxespad=0, **kw
        )
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, **kw)


def restyle(ax: Any) -> None:
    """Bring axes drawn by another library (Optuna's matplotlib plots) into the house style."""
    ax.set_facecolor("white")
    ax.figure.set_facecolor("white")
    ax.grid(True, alpha=0.3, linewidth=0.6, color="#b0b0b0")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(True)
        ax.spines[side].set_color("black")
    ax.title.set_fontsize(HOUSE_RC["axes.titlesize"])
    for label in (ax.xaxis.label, ax.yaxis.label):
        label.set_fontsize(HOUSE_RC["axes.labelsize"])
        label.set_color("black")
    ax.tick_params(labelsize=HOUSE_RC["xtick.labelsize"], colors="black")
    for i, line in enumerate(ax.get_lines()):
        line.set_color(PALETTE[i % len(PALETTE)])
    for i, coll in enumerate(ax.collections):
        with contextlib.suppress(AttributeError, ValueError):
            coll.set_color(PALETTE[i % len(PALETTE)])
    for patch in ax.patches:
        patch.set_facecolor(PALETTE[0])
    legend = ax.get_legend()
    if legend is not None:
        handles, labels = ax.get_legend_handles_labels()
        legend.remove()
        legend_outside(ax, handles, labels)


def figure_bytes(fig: Any, fmt: str) -> bytes:
    """The figure as ``png``, ``svg`` or ``pdf`` bytes, without creation dates (reproducible)."""
    metadata = {
        "png": {"Software": None},
        "svg": {"Date": None, "Creator": None},
        "pdf": {"CreationDate": None},
    }
    buf = io.BytesIO()
    with house_style():
        fig.savefig(buf, format=fmt, metadata=metadata[fmt])
    return buf.getvalue()


def save_figure(fig: Any, path: Path, formats: tuple[str, ...] | None = None) -> Path:
    """Write ``fig`` to ``path`` in the format its suffix names; a ``.png`` path also gets its twins
    in the other formats (``formats``, default ``plot_formats()``) beside it, same stem. Return ``path``.

    Files are written atomically; the figure is cleared (freed) afterwards."""
    from mmbench.records import atomic_write_bytes

    path = Path(path)
    primary = path.suffix.lower().lstrip(".")
    if primary not in ("png", "svg", "pdf"):
        primary = "png"
    chosen = (formats or plot_formats()) if primary == "png" else (primary,)
    for fmt in dict.fromkeys([primary, *chosen]):
        target = path if fmt == primary else path.with_suffix(f".{fmt}")
        atomic_write_bytes(target, figure_bytes(fig, fmt))
    fig.clear()
    return path


def _data_axes(fig: Any) -> list[Any]:
    return [ax for ax in fig.axes if ax.has_data() or ax.images]


def legend_overlaps(fig: Any) -> list[str]:
    """Descriptions of legends whose box overlaps the plotted region of any axes of ``fig``
    (matplotlib window extents after a draw); empty when every legend sits outside the data."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [lg for ax in fig.axes if (lg := ax.get_legend()) is not None] + list(fig.legends)
    problems = []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in _data_axes(fig):
            area = ax.get_window_extent(renderer)
            if box.overlaps(area):
                texts = ", ".join(t.get_text() for t in legend.get_texts())
                problems.append(f"legend [{texts}] overlaps axes {ax.get_title() or ax.get_label()!r}")
    return problems
