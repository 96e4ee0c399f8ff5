"""Leaderboards as LaTeX booktabs tables, for papers: the numbers come from the same cells as the markdown.

One ``table`` float per group (dataset, protocol fingerprint, dataset fingerprint): rank, fusion, n seeds,
the test metrics as mean ± sample std over seeds (the best of each column in bold), the tie test against
the best (≈ tied, p) and the parameter count; the tie test, seeds and selection rule in a note under the
table; the protocol and dataset fingerprints in a comment line above it. ``per_class=True`` adds the
per-class test F1 table; ``standalone=True`` wraps everything in a minimal ``article`` that compiles on
its own with ``pdflatex`` (packages: booktabs, from TeX Live's ``latex-recommended``).

Cells are :func:`mmbench.leaderboard.render.table_cells` with LaTeX bold and escaping, so a table's
numbers are the markdown board's, digit for digit.
"""

from __future__ import annotations

import re

from mmbench.leaderboard.build import METRIC_NAMES, Group, Leaderboard
from mmbench.leaderboard.render import (
    document_notes,
    footer_lines,
    per_class_cells,
    ranking_order,
    table_cells,
    table_headers,
)

#: Characters with a meaning in LaTeX text mode, and their escaped form.
_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
#: Non-ASCII symbols of mmbench's boards that pdflatex's utf8 input does not define.
_SYMBOLS = {
    "±": r"$\pm$",
    "≈": r"$\approx$",
    "†": r"\textsuperscript{\dag}",
    "·": r"$\cdot$",
    "…": r"\ldots{}",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "α": r"$\alpha$",
    "φ": r"$\varphi$",
    "×": r"$\times$",
    "’": "'",
    "—": "---",
    "–": "--",
}
#: Bold markers for the shared cell builders, replaced by ``\textbf{...}`` after escaping.
_BOLD = ("\x00bold<", ">bold\x00")
#: Efficiency columns a paper table keeps (the rest stay in the markdown/HTML boards).
KEPT_EFFICIENCY = ("params ↓",)


def latex_escape(text: str) -> str:
    """``text`` safe for LaTeX text mode: specials escaped, the boards' symbols as LaTeX commands."""
    return "".join(_SPECIAL.get(ch) or _SYMBOLS.get(ch) or ch for ch in str(text))


def _cell(text: str) -> str:
    """A cell of ``table_cells``/``per_class_cells`` (made with ``_BOLD``, unescaped) as LaTeX."""
    bold = text.startswith(_BOLD[0]) and text.endswith(_BOLD[1])
    body = latex_escape(text[len(_BOLD[0]) : -len(_BOLD[1])] if bold else text)
    return rf"\textbf{{{body}}}" if bold else body


def _plain(text: str) -> str:
    """A comment line: one line, markdown backticks dropped (comments need no escaping but ``%``)."""
    return " ".join(str(text).replace("`", "").split())


def slug(text: str) -> str:
    """A label-safe slug: lowercase ASCII letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "board"


def _columns(group: Group) -> list[int]:
    """Indices of ``table_headers(group)`` a paper table shows."""
    heads = table_headers(group)
    efficiency_from = heads.index("vs best") + 1 + ("encoders" in heads)
    return [i for i, h in enumerate(heads) if i < efficiency_from or h in KEPT_EFFICIENCY]


def _tabular(heads: list[str], rows: list[list[str]], align: str) -> list[str]:
    out = [rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    out.append(" & ".join(heads) + r" \\")
    out.append(r"\midrule")
    out += [" & ".join(cells) + r" \\" for cells in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return out


def _main_table(group: Group, board: Leaderboard, caption: str, label: str) -> list[str]:
    heads = table_headers(group)
    keep = _columns(group)
    cells = [[_cell(row[i]) for i in keep] for row in table_cells(group, bold=_BOLD)]
    names = [latex_escape(heads[i]) for i in keep]
    names[heads.index("n")] = "$n$"
    align = "".join("l" if heads[i] in ("fusion", "vs best", "encoders") else "r" for i in keep)
    return [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        *_tabular(names, cells, align),
        *_note(group, board),
        r"\end{table}",
    ]


def _note(group: Group, board: Leaderboard) -> list[str]:
    """The footer's tie test (and the budget-cut mark when used), in small type under the table."""
    keep = ("Ties (≈)", "Budget cut †")
    lines = [
        f"{latex_escape(k)}: {latex_escape(_plain(v))}." for k, v in footer_lines(group, board) if k in keep
    ]
    return [r"\par\smallskip", r"\parbox{\linewidth}{\footnotesize\raggedright " + " ".join(lines) + "}"]


def _per_class_table(group: Group, caption: str, label: str) -> list[str]:
    names = ["fusion", *group.class_names]
    cells = [[_cell(c) for c in row] for row in per_class_cells(group, bold=_BOLD)]
    return [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        *_tabular([latex_escape(n) for n in names], cells, "l" + "r" * len(group.class_names)),
        r"\end{table}",
    ]


def render_latex(
    board: Leaderboard,
    command: str | None = None,
    caption: str | None = None,
    label: str | None = None,
    per_class: bool = False,
    standalone: bool = False,
) -> str:
    """The board as LaTeX: one booktabs ``table`` per group (+ its per-class table when ``per_class``).

    ``caption`` (LaTeX source, not escaped) replaces the default caption; ``label`` the default
    ``tab:<group slug>`` (with several groups, ``-1``, ``-2`` ... are appended). ``standalone`` returns a
    complete document. Needs ``\\usepackage{booktabs}`` in the including document.
    """
    out = ["% Generated by `mmbench leaderboard` from run records; do not edit by hand."]
    if command:
        out.append(f"% Regenerate: {command}")
    if standalone:
        out += [
            r"\documentclass{article}",
            r"\usepackage[utf8]{inputenc}",
            r"\usepackage[a4paper,landscape,margin=1.5cm]{geometry}",
            r"\usepackage{booktabs}",
            r"\begin{document}",
        ]
    many = len(board.groups) > 1
    for i, group in enumerate(board.groups):
        out.append("")
        out.append(
            f"% {_plain(group.title)}: protocol fingerprint {group.protocol_fingerprint}, "
            f"dataset fingerprint {group.dataset_fingerprint}"
        )
        if not group.rows:
            out.append("% every run of this protocol failed; nothing to rank")
            continue
        base = label or f"tab:{slug(group.title)}"
        if many and label:
            base += f"-{i + 1}"
        metric = METRIC_NAMES[group.metric]
        seeds = sorted({s for row in group.rows for s in row.seeds})
        title = latex_escape(group.title)
        others = [METRIC_NAMES[m] for m in group.metrics[1:]]
        also = ", ".join(others[:-1]) + f" and {others[-1]}" if len(others) > 1 else "".join(others)
        text = caption or (
            f"{title}: test {latex_escape(metric)}, {latex_escape(also)}, mean $\\pm$ sample std over "
            f"$n$ seeds ({len(seeds)} seeds), ranked by test {latex_escape(metric)}{ranking_order(group)}. "
            "Bold: best in the column."
        )
        out += _main_table(group, board, text, base)
        if per_class and group.class_names:  # a regression task has no classes
            out.append("")
            out += _per_class_table(
                group,
                f"{title}: per-class test F1, mean over seeds. Bold: best in the column.",
                base + "-per-class",
            )
    notes = document_notes(board)
    if notes:
        out.append("")
        out += [f"% {_plain(n)}" for n in notes]
    if standalone:
        out += ["", r"\end{document}"]
    return "\n".join(out) + "\n"
