"""Render an :class:`~mmbench.inspection.checks.Inspection`: a report folder (markdown + PNGs + JSON)
and the rich tables ``mmbench inspect`` prints.

Figures are drawn on a bare ``matplotlib.figure.Figure`` (Agg canvas, no pyplot, no display) and
written atomically; the markdown links them by relative path, so the folder can be moved or
committed as it is.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.data import SPLITS
from mmbench.inspection import target as regression
from mmbench.inspection.checks import Inspection
from mmbench.inspection.probes import ALL
from mmbench.records import atomic_write_bytes, atomic_write_text

REPORT_MD = "report.md"
SUMMARY_JSON = "summary.json"
CLASSES_PNG = "classes.png"
PROBES_PNG = "probes.png"
SPLIT_COLORS = {"train": "#4C72B0", "dev": "#DD8452", "test": "#55A868"}


# ------------------------------------------------------------------------ figures


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _class_colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def class_chart(summary: dict[str, Any]) -> bytes:
    """Grouped bars: rows per class in each split."""
    classes = summary["classes"]
    names = classes["names"]
    fig = _figure(max(6.0, 0.7 * len(names) + 2), 3.8)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(names))
    width = 0.8 / len(SPLITS)
    for k, split in enumerate(SPLITS):
        counts = [classes["counts"][split][c] for c in names]
        ax.bar(
            x + (k - 1) * width, counts, width, label=f"{split} ({sum(counts)})", color=SPLIT_COLORS[split]
        )
    ax.set_xticks(x)
    ax.set_xticklabels(
        names, rotation=30 if len(names) > 8 else 0, ha="right" if len(names) > 8 else "center"
    )
    ax.set_ylabel("rows")
    ratio = classes["imbalance_ratio"]
    title = f"{summary['dataset']}: rows per class and split"
    if ratio is not None:
        title += f" (train imbalance {ratio:.1f}x)"
    ax.set_title(title)
    from mmbench.ui.plot_style import legend_outside

    legend_outside(ax)  # beside the bars, never over them
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def projection_chart(points: dict[str, Any], method: str, summary: dict[str, Any]) -> bytes:
    """One scatter panel per modality (and all together), coloured by class."""
    panels = points[method]
    labels = points["labels"] if method == "pca" else points["tsne_labels"]
    names = points["class_names"]
    colors = _class_colors(len(names))
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig = _figure(4.0 * cols, 3.8 * rows + 0.6)
    explained = summary["projection"]["pca_explained_variance"]
    for k, (panel, xy) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, k + 1)
        if not names:  # a regression target: coloured by its value
            image = ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.6, c=labels, cmap="coolwarm", linewidths=0)
        for c in range(len(names)):
            sel = labels == c
            if sel.any():
                ax.scatter(
                    xy[sel, 0], xy[sel, 1], s=5, alpha=0.6, color=colors[c], label=names[c], linewidths=0
                )
        title = panel
        if method == "pca":
            ev = explained[panel]
            title += f"  (PC1 {100 * ev[0]:.1f}%" + (f", PC2 {100 * ev[1]:.1f}%)" if len(ev) > 1 else ")")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    n = len(labels)
    what = "PCA fitted on train rows" if method == "pca" else "t-SNE"
    if not names:
        fig.colorbar(image, ax=fig.axes, label="target", fraction=0.03, pad=0.02)
        fig.suptitle(f"{summary['dataset']}: {what}, {n} rows sampled from all splits, coloured by target")
        return _png(fig)
    handles, legend_labels = fig.axes[0].get_legend_handles_labels()
    for ax in fig.axes[1:]:  # classes missing from the first panel's sample
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in legend_labels:
                handles.append(h)
                legend_labels.append(lab)
    order = sorted(range(len(legend_labels)), key=lambda i: names.index(legend_labels[i]))
    fig.legend(
        [handles[i] for i in order],
        [legend_labels[i] for i in order],
        loc="lower center",
        ncol=min(len(order), 10),
        markerscale=3,
        frameon=False,
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.suptitle(f"{summary['dataset']}: {what}, {n} rows sampled from all splits, coloured by class")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return _png(fig)


def probe_chart(summary: dict[str, Any]) -> bytes:
    """Dev scores of each linear probe beside the majority-class baseline."""
    probes = summary["probes"]
    rows = [*probes["rows"], probes["majority"]]
    metrics = ("accuracy", "weighted_f1", "macro_f1")
    fig = _figure(max(6.0, 1.3 * len(rows) + 2), 3.8)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    width = 0.8 / len(metrics)
    for k, metric in enumerate(metrics):
        ax.bar(x + (k - 1) * width, [r[metric] for r in rows], width, label=metric.replace("_f1", " F1"))
    base = probes["majority"]["accuracy"]
    ax.axhline(base, color="black", linestyle="--", linewidth=1, label=f"majority accuracy {base:.3f}")
    ax.set_xticks(x)
    ax.set_xticklabels([r["probe"] for r in rows])
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"dev score (n={probes['n_dev']})")
    ax.set_title(f"{summary['dataset']}: linear probes, fitted on train, scored on dev")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


# ------------------------------------------------------------------------ markdown


def _md_table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _range(r: list[float]) -> str:
    return f"{r[0]:.3g} … {r[1]:.3g}"


def class_rows(summary: dict[str, Any]) -> list[list[Any]]:
    c = summary["classes"]
    return [[n, *(c["counts"][s][n] for s in SPLITS), c["total"][n]] for n in c["names"]]


def modality_rows(summary: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for mod, info in summary["modalities"].items():
        if info["in_model"]:
            rows.append(
                [mod, "(in model)", info["dim"], "-", "-", "-", "-", "-", "-", info["encoder"] or "-"]
            )
            continue
        shape = "vector"
        if info["sequence"]:
            shape = f"seq ≤{info['max_len']}"
            if info["lengths"]:
                shape += f" (mean {info['lengths']['mean']:g})"
        for stream, s in info["streams"].items():
            rows.append(
                [
                    f"{mod}/{stream}",
                    shape,
                    s["dim"],
                    s["nan_features"],
                    s["constant_features"],
                    s["zero_features"],
                    s["zero_rows"],
                    _range(s["mean_range"]),
                    _range(s["std_range"]),
                    info["encoder"] or "-",
                ]
            )
    return rows


MODALITY_HEADERS = [
    "modality/stream",
    "shape",
    "dim",
    "NaN feats",
    "constant feats",
    "all-zero feats",
    "all-zero rows",
    "train mean range",
    "train std range",
    "encoder",
]
PROBE_HEADERS = ["probe", "dim", "accuracy", "weighted F1", "macro F1", "kappa", "beats chance"]


def probe_rows(summary: dict[str, Any]) -> list[list[Any]]:
    p = summary["probes"]
    rows = []
    for r in p["rows"]:
        flag = "yes" if r["beats_chance"] else f"no (needs kappa > {r['chance_margin']:.3f})"
        if not r["converged"]:
            flag += ", not converged"
        rows.append(
            [
                r["probe"],
                r["dim"],
                f"{r['accuracy']:.3f}",
                f"{r['weighted_f1']:.3f}",
                f"{r['macro_f1']:.3f}",
                f"{r['kappa']:.3f}",
                flag,
            ]
        )
    m = p["majority"]
    rows.append(
        [
            f"majority class ({m['class']})",
            "-",
            f"{m['accuracy']:.3f}",
            f"{m['weighted_f1']:.3f}",
            f"{m['macro_f1']:.3f}",
            f"{m['kappa']:.3f}",
            "-",
        ]
    )
    return rows


def group_rows(summary: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for kind, g in summary["splits"]["groups"].items():
        shared = "; ".join(
            f"{k}: {v['count']} ({', '.join(v['examples'])}"
            + (", …)" if v["count"] > len(v["examples"]) else ")")
            for k, v in g["shared"].items()
            if v["count"]
        )
        rows.append([kind, *(g["per_split"][s] for s in SPLITS), shared or "none"])
    return rows


def duplicate_rows(summary: dict[str, Any]) -> list[list[Any]]:
    sp = summary["splits"]
    exact, near = sp["exact_duplicates"], sp["near_duplicates"]
    rows = []
    for key in exact["across"]:
        a, b = key.split("/")
        ex = exact["examples"].get(key) or near["across"][key]["examples"]
        rows.append(
            [
                key,
                exact["across"][key],
                near["across"][key]["count"],
                near["across"][key]["not_exact"],
                ", ".join(f"{b} {j} ≈ {a} {i}" for i, j in ex[:3]) or "-",
            ]
        )
    return rows


def class_section(s: dict[str, Any], files: dict[str, str]) -> list[str]:
    """The report's "Classes" section: counts per split, class set, imbalance, label notes."""
    c = s["classes"]
    out = ["", "## Classes", ""]
    out.append(_md_table(["class", *SPLITS, "total"], class_rows(s)))
    out += [
        "",
        f"- class set used: {', '.join(c['names'])} ({len(c['names'])} classes)"
        + (f"; the protocol asks for `{_short(c['protocol_classes'])}`" if c["protocol_classes"] else ""),
    ]
    if c["imbalance_ratio"] is not None:
        out.append(
            f"- train imbalance ratio (largest / smallest class): **{c['imbalance_ratio']:.2f}** "
            f"({c['largest_train_class']} / {c['smallest_train_class']})"
        )
    if c["absent_in_train"]:
        out.append(f"- classes without train rows: {', '.join(c['absent_in_train'])}")
    if c["label_meta"]:
        out.append("- what the dataset says about its labels (`data.meta`):")
        out += [f"  - `{k}`: {_short(v, 400)}" for k, v in c["label_meta"].items()]
    else:
        out.append("- the dataset records no dropped, merged or mapped labels in `data.meta`")
    out += ["", f"![rows per class and split]({files['classes']})", ""]
    return out


def markdown(summary: dict[str, Any], files: dict[str, str]) -> str:
    """The report page; images are linked by the relative names in ``files``."""
    s = summary
    c, sp, p = s.get("classes"), s["splits"], s["probes"]
    out = [
        f"# mmbench inspect — {s['dataset']}",
        "",
        f"- source: `{s['source']}`",
        f"- rows: {s['n']} (" + ", ".join(f"{k} {v}" for k, v in sp["sizes"].items()) + ")",
        f"- dataset fingerprint: `{s['dataset_fingerprint']}`",
    ]
    if s.get("protocol_fingerprint"):
        out.append(f"- protocol fingerprint: `{s['protocol_fingerprint']}`")
    out += ["", "## Summary", "", f"**Linear probes:** {p['verdict']}", ""]
    if s["warnings"]:
        out += ["**Warnings:**", ""] + [f"- {w}" for w in s["warnings"]]
    else:
        out.append("No warnings: no duplicates across splits, no shared groups, no degenerate features.")

    if c is None:  # a regression task
        out += regression.markdown_section(s, _md_table, files["classes"])
    else:
        out += class_section(s, files)
    label_meta = c["label_meta"] if c else {}
    other_meta = {k: v for k, v in s["meta"].items() if k not in label_meta}
    if other_meta:
        out += ["### Provenance (`data.meta`)", ""]
        out.append(_md_table(["key", "value"], [[f"`{k}`", _short(v)] for k, v in other_meta.items()]))
        out.append("")

    out += ["## Modalities", "", _md_table(MODALITY_HEADERS, modality_rows(s)), ""]
    out.append(
        "Features are mean-pooled over real time steps for sequence modalities. Ranges are the "
        "smallest and largest per-feature mean and standard deviation over train rows."
    )
    proj = s["projection"]
    out += [
        "",
        "### 2-D projections",
        "",
        f"Each modality standardised per feature with train statistics; PCA fitted on train rows; "
        f"{proj['points']} rows sampled from all splits (seed {proj['seed']}). In '{ALL}' each "
        "modality is scaled to the same total variance before concatenation.",
        "",
        f"![PCA per modality]({files['pca']})",
    ]
    if "tsne" in files:
        out += [
            "",
            f"t-SNE of {proj['tsne_points']} of those rows:",
            "",
            f"![t-SNE per modality]({files['tsne']})",
        ]

    out += ["", "## Splits", "", _md_table(["split", "rows"], [[k, v] for k, v in sp["sizes"].items()]), ""]
    if sp["groups"]:
        out += ["Groups per split (`data.groups`):", ""]
        out += [_md_table(["group", *SPLITS, "shared between splits"], group_rows(s)), ""]
    else:
        out += ["The dataset declares no groups (`data.groups` is empty).", ""]
    exact, near = sp["exact_duplicates"], sp["near_duplicates"]
    evidence = ", ".join(exact.get("evidence") or []) or "ids only (no non-text features)"
    out += [
        f"Duplicates across splits (guard: the same utterance id, or the same feature vector also "
        f"after rounding, compared on {evidence}; near: cosine > {near['threshold']} in the "
        "standardised all-modality space):",
        "",
        _md_table(["pair", "guard", "near", "near, not guard", "examples"], duplicate_rows(s)),
        "",
        "Copies inside a split: " + ", ".join(f"{k} {v}" for k, v in exact["within"].items()) + ".",
    ]
    repeats = sp.get("natural_repeats") or {}
    if repeats.get("rows"):
        out += [
            "",
            f"Natural repeats (identical `{repeats['field']}` in two splits, not leaks): {repeats['rows']} "
            f"dev/test rows, {repeats['distinct']} distinct texts; most repeated:",
            "",
            _md_table(
                ["text", *SPLITS],
                [[t.replace("|", "\\|"), *(c.get(x, 0) for x in SPLITS)] for t, c in repeats["examples"]],
            ),
        ]

    out += ["", "## Linear probes", ""]
    if c is None:
        out.append(regression.probes_text(p))
        out += ["", _md_table(regression.PROBE_HEADERS, regression.probe_rows(s))]
    else:
        out.append(
            f"{p['model']}; fitted on train ({p['n_train']} rows), scored on dev ({p['n_dev']} rows). "
            "Cohen's kappa is agreement beyond chance (0 for the majority baseline); a probe beats chance "
            "when kappa exceeds two standard errors of kappa under chance for this dev size."
        )
        out += ["", _md_table(PROBE_HEADERS, probe_rows(s))]
    out += ["", f"**{p['verdict']}**", ""]
    out += [f"![linear probes]({files['probes']})", ""]
    return "\n".join(out)


def write_report(result: Inspection, out_dir: Path) -> dict[str, str]:
    """Write ``report.md``, ``summary.json`` and the PNGs into ``out_dir``; return the file names."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = result.summary
    files = {"classes": CLASSES_PNG, "pca": "projection_pca.png", "probes": PROBES_PNG}
    regression_task = "classes" not in s
    if regression_task:  # the target's histogram in place of the class counts
        atomic_write_bytes(out_dir / CLASSES_PNG, regression.target_chart(s, _figure, _png, SPLIT_COLORS))
    else:
        atomic_write_bytes(out_dir / CLASSES_PNG, class_chart(s))
    atomic_write_bytes(out_dir / files["pca"], projection_chart(result.points, "pca", s))
    if "tsne" in result.points:
        files["tsne"] = "projection_tsne.png"
        atomic_write_bytes(out_dir / files["tsne"], projection_chart(result.points, "tsne", s))
    probes_png = regression.probe_chart(s, _figure, _png) if regression_task else probe_chart(s)
    atomic_write_bytes(out_dir / PROBES_PNG, probes_png)
    files["markdown"] = REPORT_MD
    files["summary"] = SUMMARY_JSON
    atomic_write_text(out_dir / REPORT_MD, markdown(s, files))
    atomic_write_text(out_dir / SUMMARY_JSON, json.dumps(s, indent=2, default=str) + "\n")
    return files


# ------------------------------------------------------------------------ terminal


def rich_summary(
    summary: dict[str, Any], report_dir: Path | None = None, include_warnings: bool = True
) -> list[Any]:
    """Rich renderables for the terminal: classes, modalities, splits, probes, verdict, and (with
    ``include_warnings``) the warnings; the CLI prints warnings and the report path on stderr."""
    from rich.table import Table
    from rich.text import Text

    s = summary
    c, sp = s.get("classes"), s["splits"]
    parts: list[Any] = []
    head = (
        f"[bold]{s['dataset']}[/bold]  {s['n']} rows  source {s['source']}  "
        f"dataset {s['dataset_fingerprint']}"
    )
    if s.get("protocol_fingerprint"):
        head += f"  protocol {s['protocol_fingerprint']}"
    parts.append(Text.from_markup(head))

    if c is None:  # a regression task: the target per split
        rng = s["target"]["range"]
        t = Table(title="target" + (f" in [{rng[0]:g}, {rng[1]:g}]" if rng else ""), title_justify="left")
        for col in regression.TARGET_HEADERS:
            t.add_column(col, justify="left" if col == "split" else "right")
        for row in regression.target_rows(s):
            t.add_row(*(str(v) for v in row))
        parts.append(t)
    else:
        ratio = c["imbalance_ratio"]
        t = Table(
            title=f"classes (train imbalance {ratio:.2f}x)" if ratio is not None else "classes",
            title_justify="left",
        )
        for col in ["class", *SPLITS, "total"]:
            t.add_column(col, justify="left" if col == "class" else "right")
        for row in class_rows(s):
            t.add_row(*(str(v) for v in row))
        parts.append(t)
    if c and c["label_meta"]:
        parts.append(
            Text(
                "label notes (data.meta): "
                + "; ".join(f"{k}={_short(v, 80)}" for k, v in c["label_meta"].items())
            )
        )

    t = Table(title="modalities", title_justify="left")
    for col in MODALITY_HEADERS:
        t.add_column(col, justify="left" if col in ("modality/stream", "shape", "encoder") else "right")
    for row in modality_rows(s):
        t.add_row(*(str(v) for v in row))
    parts.append(t)

    t = Table(title="splits", title_justify="left")
    t.add_column("")
    for split in SPLITS:
        t.add_column(split, justify="right")
    t.add_column("shared between splits")
    t.add_row("rows", *(str(sp["sizes"][x]) for x in SPLITS), "")
    for row in group_rows(s):
        t.add_row(f"{row[0]} groups", *(str(v) for v in row[1:4]), row[4])
    parts.append(t)

    t = Table(title="duplicates across splits", title_justify="left")
    for col in ("pair", "guard", "near", "near, not guard", "examples"):
        t.add_column(col, justify="left" if col in ("pair", "examples") else "right")
    for row in duplicate_rows(s):
        bad = row[1] or row[3]
        t.add_row(*(f"[red]{v}[/red]" if bad and k in (1, 2, 3) else str(v) for k, v in enumerate(row)))
    parts.append(t)
    repeats = (sp.get("natural_repeats") or {}).get("description")
    if repeats:
        parts.append(Text(f"natural repeats: {repeats}"))

    p = s["probes"]
    t = Table(title=f"linear probes (train {p['n_train']} -> dev {p['n_dev']})", title_justify="left")
    headers, rows = (
        (PROBE_HEADERS, probe_rows(s)) if c else (regression.PROBE_HEADERS, regression.probe_rows(s))
    )
    for col in headers:
        t.add_column(col, justify="left" if col in ("probe", "beats chance") else "right")
    for row in rows:
        t.add_row(*(str(v) for v in row))
    parts.append(t)
    parts.append(Text.from_markup(f"[bold]verdict:[/bold] {p['verdict']}"))
    for w in s["warnings"] if include_warnings else []:
        parts.append(Text.from_markup("[yellow]warning:[/yellow] ") + Text(w))
    if report_dir is not None:
        parts.append(Text(f"report: {Path(report_dir) / REPORT_MD}"))
    return parts
