"""Rich tables that stay readable on narrow terminals.

Name columns (fusion, dataset...) never shrink below their longest name: they neither wrap nor
truncate. When the table does not fit the console width, its efficiency columns (parameters,
seconds, memory) move into a second table keyed by the same names, or are left out when even
that table would not fit; a note says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from mmbench.runner.methods import record_method

Kind = Literal["name", "value", "efficiency"]


@dataclass(frozen=True)
class Column:
    """``header``; ``kind``: ``name`` (never shrinks), ``value`` (may wrap) or ``efficiency`` (folds)."""

    header: str
    kind: Kind = "value"
    justify: Literal["left", "right", "center"] = "right"
    no_wrap: bool = False


def _table(
    title: str | None, columns: list[Column], rows: list[list[str]], keep: list[int], **kw: Any
) -> Table:
    table = Table(title=title, title_justify="left", **kw)
    for i in keep:
        col = columns[i]
        widest = max(
            [Text.from_markup(r[i]).cell_len for r in rows] + [Text.from_markup(col.header).cell_len]
        )
        if col.kind == "name":
            table.add_column(col.header, justify=col.justify, no_wrap=True, min_width=widest)
        else:
            table.add_column(col.header, justify=col.justify, no_wrap=col.no_wrap)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


def table_width(console: Console, table: Table, wrapped: bool = False) -> int:
    """The width ``table`` needs to show every cell unwrapped, or (``wrapped``) with wrappable cells
    and headers wrapped at spaces."""
    measured = Measurement.get(console, console.options.update(width=10_000), table)
    return measured.minimum if wrapped else measured.maximum


def fitted_tables(
    columns: list[Column],
    rows: list[list[str]],
    width: int,
    title: str | None = None,
    caption: str | None = None,
    console: Console | None = None,
) -> list[Any]:
    """One table when it fits ``width`` columns; else the main table plus an efficiency table and a
    note. Cells are rich markup (escape data with ``rich.markup.escape``)."""
    console = console or Console(width=max(width, 20), record=False)
    everything = list(range(len(columns)))
    full = _table(title, columns, rows, everything, caption=caption)
    efficiency = [i for i, c in enumerate(columns) if c.kind == "efficiency"]
    if not efficiency or table_width(console, full) <= width:
        return [full]
    names = [i for i, c in enumerate(columns) if c.kind == "name"]
    main = [i for i in everything if i not in efficiency]
    second = _table("efficiency", columns, rows, names + efficiency)
    if table_width(console, second, wrapped=True) <= width:
        note = f"(efficiency columns in a second table: the terminal is {width} columns wide; "
        tables = [_table(title, columns, rows, main, caption=caption), second]
    else:
        note = f"(efficiency columns left out: the terminal is {width} columns wide; "
        tables = [_table(title, columns, rows, main, caption=caption)]
    return [*tables, Text(note + "set COLUMNS or use --format json for all of them)", style="dim")]


def fmt_mean_std(cell: dict[str, float | None]) -> str:
    if cell["mean"] is None:
        return "-"
    return f"{cell['mean']:.4f} ± {cell['std']:.4f}"


#: Short column names of the console's results table.
SHORT_NAMES = {"accuracy": "acc", "weighted_f1": "wF1", "macro_f1": "mF1"}


def short_name(metric: str, arrow: bool = True) -> str:
    """``wF1`` for weighted F1, the paper name otherwise (``MAE``), and the direction arrow."""
    from mmbench.tasks import direction_arrow, metric_label

    name = SHORT_NAMES.get(metric) or metric_label(metric)
    return f"{name} {direction_arrow(metric)}" if arrow else name


def results_table(
    prep: Any, summary: list[dict[str, Any]], records: list[dict[str, Any]], width: int = 160
) -> list[Any]:
    """Per fusion: mean ± std over seeds of the task's compact test metrics (accuracy, weighted and
    macro F1; or MAE, Corr, Acc-2, F1, Acc-7), its default dev metric and efficiency, as rich
    renderables fitted to ``width`` columns."""
    from rich.markup import escape

    from mmbench.tasks import task_of

    task = task_of(prep.data)
    tests, dev = task.compact_metrics, task.default_metric
    columns = [
        Column("fusion", "name", "left"),
        Column("n", "name"),
        *[Column(escape(f"test {short_name(m)}")) for m in tests],
        Column(escape(f"dev {short_name(dev)}")),
        Column("params", "efficiency"),
        Column("train s", "efficiency"),
    ]
    rows = []
    for row in summary:
        recs = [r for r in records if record_method(r) == row["fusion"] and r.get("status") == "ok"]
        params = recs[0]["efficiency"]["params"] if recs else 0
        secs = sum(r["efficiency"]["train_seconds"] for r in recs) / max(len(recs), 1)
        rows.append(
            [
                escape(row["fusion"]),
                str(row["n_seeds"]),
                *[fmt_mean_std(row["test"][m]) for m in tests],
                fmt_mean_std(row["dev"][dev]),
                f"{params:,}",
                f"{secs:.1f}",
            ]
        )
    metric = prep.protocol["metric"]
    title = escape(f"{prep.data.name} — protocol {prep.protocol_fingerprint} — selection on dev {metric}")
    return fitted_tables(
        columns, rows, width, title=title, caption=escape(f"records in {prep.request.out_dir}/")
    )
