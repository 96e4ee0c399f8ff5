"""The leaderboard as a static, offline HTML site: ``mmbench leaderboard --format html --output site/``.

Layout of ``site/``::

    index.html                   every board: dataset, protocol, best method, link
    <board>.html                 one page per group (dataset + protocol + dataset fingerprint)
    <board>.<metric>.svg         primary metric with error bars; <board>.per_class_f1.svg heatmap
    <board>.noise.svg, ...       robustness charts, where the runs were analysed
    <board>.records.zip          the board's records and predictions (``mmbench leaderboard --runs`` reads it)
    assets/board.css, board.js   small, written for mmbench; no CDN, nothing fetched at run time

Each page has tabs (leaderboard, per-class F1, robustness, plots, provenance), sortable columns
(click a header; numbers sort numerically on their full-precision ``data-value``) and filters by
fusion, context model and encoders. Without JavaScript every section is shown and nothing breaks. Pages
use only relative links, so the folder opens from the file system and from any static host
(GitHub Pages). The cells are :func:`mmbench.leaderboard.render.table_cells`: the numbers are the
markdown board's. Every byte but the SVGs (matplotlib's output) depends on the records and the options
only.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from typing import Any

from mmbench.leaderboard.build import EFFICIENCY, METRIC_NAMES, UP, Group, Leaderboard, Row
from mmbench.leaderboard.render import (
    document_notes,
    footer_lines,
    per_class_cells,
    ranking_order,
    table_cells,
    table_headers,
)
from mmbench.tasks import direction_arrow

ASSETS = ("board.css", "board.js")
_BOLD = ("<strong>", "</strong>")
NUM = ' class="num"'


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _code(text: str) -> str:
    """Markdown-style `code` spans of a footer line as <code> (the rest escaped)."""
    parts = str(text).split("`")
    return "".join(f"<code>{esc(p)}</code>" if i % 2 else esc(p) for i, p in enumerate(parts))


def context_label(record: dict[str, Any]) -> str:
    """The context model of a record's run (``none`` when it had none)."""
    ctx = record.get("context")
    if isinstance(ctx, dict):
        return str(ctx.get("name") or "none")
    return str(ctx) if ctx else "none"


def board_slugs(board: Leaderboard) -> list[str]:
    """File stems of the groups' pages: ``<dataset>[-<preset>]``, with fingerprints where that repeats."""
    from mmbench.leaderboard.latex import slug

    def base(g: Group, level: int) -> str:
        preset = (g.protocol.get("data") or {}).get("preset")
        bits = [g.dataset, *([str(preset)] if preset is not None else [])]
        bits += [g.protocol_fingerprint[:8], g.dataset_fingerprint[:8]][:level]
        return slug("-".join(bits))

    level = 0
    while True:
        stems = [base(g, level) for g in board.groups]
        if len(set(stems)) == len(stems) or level == 2:
            return stems if len(set(stems)) == len(stems) else [f"{s}-{i + 1}" for i, s in enumerate(stems)]
        level += 1


def short_title(group: Group) -> tuple[str, str]:
    """(dataset and preset, the rest of the group's title: what differs from its sibling groups)."""
    preset = (group.protocol.get("data") or {}).get("preset")
    head = [group.dataset, *([f"preset={preset}"] if preset is not None else [])]
    rest = [b for b in group.title_bits if b not in head]
    return " · ".join(head), " · ".join(rest)


# ---------------------------------------------------------------- tables
def _sort_values(group: Group, row: Row) -> list[str]:
    """Full-precision sort keys of the main table's cells, in ``table_headers`` order."""
    values: list[Any] = [row.rank, row.label, row.summary["n_seeds"]]
    values += [row.mean(m) for m in group.metrics]
    values.append(-1.0 if row.best else ("" if row.p_value is None else row.p_value))
    if "encoders" in table_headers(group):
        values.append(row.encoders)
    values += [row.efficiency[k] if row.efficiency[k] is not None else "" for k, _, _ in EFFICIENCY]
    return [repr(v) if isinstance(v, float) else str(v) for v in values]


def _numeric(head: str) -> bool:
    """Whether a column sorts by number (``vs best`` sorts by p-value, the best first)."""
    return head not in ("fusion", "encoders")


def _right(head: str) -> bool:
    return _numeric(head) and head != "vs best"


def _fusion(row: Row) -> str:
    """The fusion of a row (its label may add ``+ context``)."""
    return str((row.records or row.failed)[0]["fusion"])


def _row_attrs(row: Row) -> str:
    return (
        f' data-fusion="{esc(_fusion(row))}" data-context="{esc(context_label(row.records[0]))}"'
        f' data-encoders="{esc(row.encoders)}"'
    )


def _table(
    table_id: str, heads: list[str], rows: list[Row], cells: list[list[str]], values: list[list[str]]
) -> str:
    out = [f'<table class="board" id="{table_id}">', "<thead><tr>"]
    for i, head in enumerate(heads):
        kind = "num" if _numeric(head) else "text"
        first = "descending" if head.endswith(UP) else "ascending"  # higher is better: the best first
        out.append(
            f'<th scope="col" data-type="{kind}" data-col="{i}" data-first="{first}">'
            f'<button type="button">{esc(head)}</button></th>'
        )
    out.append("</tr></thead><tbody>")
    for row, row_cells, row_values in zip(rows, cells, values, strict=True):
        tds = "".join(
            f'<td data-value="{esc(v)}"{NUM if _right(heads[i]) else ""}>{c}</td>'
            for i, (c, v) in enumerate(zip(row_cells, row_values, strict=True))
        )
        out.append(f"<tr{_row_attrs(row)}>{tds}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def main_table(group: Group) -> str:
    cells = table_cells(group, bold=_BOLD, escape=esc)
    values = [_sort_values(group, row) for row in group.rows]
    return _table("board", table_headers(group), group.rows, cells, values)


def per_class_table(group: Group) -> str:
    cells = per_class_cells(group, bold=_BOLD, escape=esc)
    values = [[row.label, *[repr(row.per_class[c]["mean"]) for c in group.class_names]] for row in group.rows]
    return _table("per-class", ["fusion", *group.class_names], group.rows, cells, values)


def robustness_table(group: Group) -> str | None:
    rows = [r for r in group.rows if r.robustness]
    if not rows:
        return None
    modalities = list(rows[0].robustness["shapley"])
    drops = all("drops" in r.robustness for r in rows)  # positive is worse (docs/robustness.md)

    def cell(v: dict[str, float] | None, sign: bool = False) -> tuple[str, str]:
        if v is None:
            return "-", ""
        text = f"{v['mean']:+.4f} ± {v['std']:.4f}" if sign else f"{v['mean']:.4f} ± {v['std']:.4f}"
        return text, repr(v["mean"])

    heads = [
        "fusion",
        "n",
        f"relative robustness {direction_arrow(group.metric)}",
        f"effective robustness {direction_arrow(group.metric)}",
        *[f"φ {m}" for m in modalities],
        *[f"drop w/o {m}" for m in modalities if drops],
    ]
    cells, values = [], []
    for row in rows:
        rob = row.robustness
        pairs = [
            (esc(row.label), row.label),
            (str(rob["n"]), str(rob["n"])),
            cell(rob["relative"]),
            cell(rob["effective"], True),
            *[cell(rob["shapley"].get(m), True) for m in modalities],
            *[cell(rob["drops"].get(m), True) for m in modalities if drops],
        ]
        cells.append([p[0] for p in pairs])
        values.append([p[1] for p in pairs])
    return _table("robustness", heads, rows, cells, values)


# ---------------------------------------------------------------- pages
def _filters(group: Group) -> str:
    kinds = (
        ("fusion", "fusion", sorted({_fusion(r) for r in group.rows})),
        ("context", "context model", sorted({context_label(r.records[0]) for r in group.rows})),
        ("encoders", "encoders", sorted({r.encoders for r in group.rows})),
    )
    out = ['<div class="filters">']
    for key, title, options in kinds:
        opts = "".join(f'<option value="{esc(o)}">{esc(o)}</option>' for o in options)
        out.append(
            f'<label>{esc(title)} <select data-filter="{key}">'
            f'<option value="">all</option>{opts}</select></label>'
        )
    out.append('<span class="shown" aria-live="polite"></span></div>')
    return "\n".join(out)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="mmbench leaderboard">\n'
        f"<title>{esc(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        '<link rel="stylesheet" href="assets/board.css">\n'
        '<script src="assets/board.js" defer></script>\n'
        "</head>\n<body>\n"
        "<!-- Generated by `mmbench leaderboard --format html` from run records; do not edit by hand. -->\n"
        f"{body}\n</body>\n</html>\n"
    )


def _plots_section(group: Group, stem: str, plots: dict[str, str]) -> str:
    metric = METRIC_NAMES[group.metric]
    captions = {
        "bars": f"Test {metric} by fusion, mean ± std over seeds",
        "per_class": "Per-class test F1 by fusion (mean over seeds)",
        "noise": "Test metric under Gaussian noise",
        "contributions": "Modality contributions (Shapley)",
    }
    figures = [
        f'<figure><img src="{esc(name)}" alt="{esc(captions[key])}"><figcaption>{esc(captions[key])}'
        "</figcaption></figure>"
        for key, name in plots.items()
    ]
    return "\n".join(figures)


def group_page(
    group: Group, board: Leaderboard, stem: str, plots: dict[str, str], command: str | None
) -> str:
    """One board's page (``plots``: chart kind → file name beside the page)."""
    metric = METRIC_NAMES[group.metric]
    tabs = [("main", "Leaderboard")]
    if group.class_names:  # a regression task has no classes
        tabs.append(("per-class", "Per-class F1"))
    robustness = robustness_table(group) if group.rows else None
    if robustness:
        tabs.append(("robustness", "Robustness"))
    if plots:
        tabs.append(("plots", "Plots"))
    tabs.append(("provenance", "Provenance"))
    nav = "".join(
        f'<button type="button" role="tab" data-tab="{key}" aria-controls="tab-{key}">{esc(name)}</button>'
        for key, name in tabs
    )
    sections = []
    if group.rows:
        sections.append(
            '<section id="tab-main" class="tab" role="tabpanel">\n<h2>Leaderboard</h2>\n'
            "<p>Test split: mean ± std (sample std) over n seeds, ranked by test "
            f"{esc(metric)}{esc(ranking_order(group))}. "
            "<strong>Bold</strong>: best in the column. ↑/↓: higher/lower is better. ≈ tied: not "
            "significantly worse than the best (see Provenance). Click a column header to sort.</p>\n"
            f"{_filters(group)}\n{main_table(group)}\n</section>"
        )
        if group.class_names:
            sections.append(
                '<section id="tab-per-class" class="tab" role="tabpanel">\n<h2>Per-class test F1</h2>\n'
                f"<p>Mean over seeds.</p>\n{per_class_table(group)}\n</section>"
            )
    else:
        sections.append(
            '<section id="tab-main" class="tab" role="tabpanel"><p>Every run of this protocol failed; '
            "nothing to rank.</p></section>"
        )
    if robustness:
        sections.append(
            '<section id="tab-robustness" class="tab" role="tabpanel">\n<h2>Robustness</h2>\n'
            f"<p>On test ({esc(metric)}; <code>mmbench robustness</code>): area under the metric-vs-noise "
            "curve; effective = that area minus late fusion's curve scaled to equal clean score; φ = Shapley "
            "contribution of each modality"
            + (
                "; drop w/o m = how much worse the metric gets with only m removed, positive is worse"
                if "drop w/o" in robustness
                else ""
            )
            + f".</p>\n{robustness}\n</section>"
        )
    if plots:
        sections.append(
            '<section id="tab-plots" class="tab" role="tabpanel">\n<h2>Plots</h2>\n'
            f"{_plots_section(group, stem, plots)}\n</section>"
        )
    facts = "\n".join(f"<dt>{esc(k)}</dt><dd>{_code(v)}</dd>" for k, v in footer_lines(group, board))
    notes = "".join(f"<p>{esc(n)}</p>" for n in document_notes(board))
    regenerate = f"<p>Regenerate: <code>{esc(command)}</code></p>" if command else ""
    sections.append(
        '<section id="tab-provenance" class="tab" role="tabpanel">\n<h2>Provenance</h2>\n'
        f"<dl>\n{facts}\n</dl>\n{notes}"
        f'<p><a href="{esc(stem)}.records.zip" download>Download the records</a> (run records and test '
        f"predictions; <code>mmbench leaderboard --runs {esc(stem)}.records.zip</code> rebuilds this "
        f"board).</p>\n{regenerate}\n</section>"
    )
    name, differs = short_title(group)
    if differs:
        differs = (
            f'<p class="meta">differs from the other boards of {esc(group.dataset)}: {esc(differs)}</p>\n'
        )
    body = (
        '<header><p><a href="index.html">All boards</a></p>\n'
        f"<h1>{esc(name)}</h1>\n{differs}"
        f'<p class="meta">protocol <code>{esc(group.protocol_fingerprint)}</code> · dataset '
        f"<code>{esc(group.dataset_fingerprint)}</code> · ranked by test {esc(metric)}</p>\n"
        f'<nav class="tabs" role="tablist">{nav}</nav></header>\n<main>\n' + "\n".join(sections) + "\n</main>"
    )
    return _page(f"{name} · mmbench leaderboard", body)


def index_page(board: Leaderboard, stems: list[str], command: str | None) -> str:
    items = []
    for group, stem in zip(board.groups, stems, strict=True):
        if group.rows:
            best = group.rows[0]
            metric = group.metric
            lead = (
                f"best: {esc(best.label)}, test {esc(METRIC_NAMES[metric])} "
                f"{esc(f'{best.mean(metric):.4f} ± {best.std(metric):.4f}')}; {len(group.rows)} methods"
            )
        else:
            lead = "every run failed"
        name, differs = short_title(group)
        differs = f" · {esc(differs)}" if differs else ""
        items.append(
            f'<li><a href="{esc(stem)}.html">{esc(name)}</a> <span class="meta">protocol '
            f"<code>{esc(group.protocol_fingerprint)}</code>{differs} · {lead}</span></li>"
        )
    notes = "".join(f"<p>{esc(n)}</p>" for n in document_notes(board))
    regenerate = f"<p>Regenerate: <code>{esc(command)}</code></p>" if command else ""
    body = (
        f"<header><h1>Leaderboards: {esc(board.selection)}</h1></header>\n<main>\n"
        "<p>Each board compares fusion methods under one protocol and one dataset fingerprint "
        "(mmbench never mixes them).</p>\n"
        f'<ul class="boards">\n' + "\n".join(items) + f"\n</ul>\n{notes}{regenerate}\n</main>"
    )
    return _page(f"Leaderboards: {board.selection} · mmbench", body)


def _write_plots(group: Group, out_dir: Path, stem: str) -> dict[str, str]:
    from mmbench.leaderboard.plots import plot_group

    names = {"bars": f"{stem}.{group.metric}.svg"}
    if group.class_names:  # no per-class heatmap without classes
        names["per_class"] = f"{stem}.per_class_f1.svg"
    plot_group(group, out_dir / names["bars"], out_dir / names["per_class"] if group.class_names else None)
    analysed = [r for row in group.rows for r in row.records if r.get("robustness")]
    if analysed:
        from mmbench.robustness.plots import plot_contributions, plot_noise_curves

        names.update(noise=f"{stem}.noise.svg", contributions=f"{stem}.contributions.svg")
        plot_noise_curves(analysed, out_dir / names["noise"])
        plot_contributions(analysed, out_dir / names["contributions"])
    return names


def render_site(board: Leaderboard, out_dir: Path, runs_dir: Path, command: str | None = None) -> list[Path]:
    """Write the site for ``board`` into ``out_dir``; return the files written.

    ``runs_dir`` is the folder the records were loaded from (their paths inside each board's
    ``.records.zip`` are relative to it).
    """
    from mmbench.leaderboard.bundle import record_members, write_zip
    from mmbench.records import atomic_write_text

    out_dir = Path(out_dir)
    written = []
    for name in ASSETS:
        text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
        atomic_write_text(out_dir / "assets" / name, text)
        written.append(out_dir / "assets" / name)
    stems = board_slugs(board)
    for group, stem in zip(board.groups, stems, strict=True):
        plots = _write_plots(group, out_dir, stem) if group.rows else {}
        written += [out_dir / n for n in plots.values()]
        records = [r for row in group.rows for r in row.records] + group.failed
        written.append(write_zip(out_dir / f"{stem}.records.zip", record_members(records, Path(runs_dir))))
        atomic_write_text(out_dir / f"{stem}.html", group_page(group, board, stem, plots, command))
        written.append(out_dir / f"{stem}.html")
    atomic_write_text(out_dir / "index.html", index_page(board, stems, command))
    written.append(out_dir / "index.html")
    return written
