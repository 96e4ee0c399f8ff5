"""Terminal tables: names whole at any width, efficiency folded on narrow terminals, COLUMNS honoured
when piped, log lines on stderr never hard-wrapped off a terminal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.ui.console import HouseConsole
from mmbench.ui.tables import Column, fitted_tables

ROOT = Path(__file__).resolve().parents[2]
MIXED = ROOT / "leaderboards" / "runs" / "synthetic-mixed"
NAMES = ["tensor", "gated", "late", "mult", "concat", "low_rank", "cross_attention", "unimodal"]


def _board(columns: int) -> str:
    res = CliRunner().invoke(
        app, ["leaderboard", "--runs", str(MIXED), "--resamples", "100"], env={"COLUMNS": str(columns)}
    )
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.mark.skipif(not MIXED.is_dir(), reason="published synthetic-mixed records absent")
def test_leaderboard_at_100_columns_shows_every_fusion_name_whole():
    out = _board(100)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    for name in NAMES:
        assert any(f"│ {name} " in line for line in lines), name
    assert "efficiency columns in a second table" in " ".join(out.split())
    # Every efficiency header still shows, in the second table.
    assert "params" in out and "peak MiB" in out


@pytest.mark.skipif(not MIXED.is_dir(), reason="published synthetic-mixed records absent")
def test_columns_is_honoured_when_piped():
    wide = _board(240)
    assert "efficiency columns" not in wide
    assert max(len(line) for line in wide.splitlines()) > 160  # one wide table, not squeezed
    narrow = _board(60)
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert "efficiency columns left out" in " ".join(narrow.split())
    assert all(any(f"│ {name} " in line for line in narrow.splitlines()) for name in NAMES)


def test_fitted_tables_keep_names_and_fold_efficiency():
    columns = [Column("fusion", "name", "left"), Column("score"), Column("params", "efficiency")]
    rows = [["a_rather_long_fusion_name", "0.1234 ± 0.0001", "1,234,567"]]
    console = Console(file=io.StringIO(), width=45)
    items = fitted_tables(columns, rows, 45, console=console)
    assert len(items) == 3  # main, efficiency, note
    for item in items:
        console.print(item)
    text = console.file.getvalue()
    assert text.count("a_rather_long_fusion_name") == 2
    assert len(fitted_tables(columns, rows, 200, console=console)) == 1


def test_stderr_lines_are_not_hard_wrapped_off_a_terminal():
    buf = io.StringIO()
    console = HouseConsole(file=buf, stderr=True, width=80)
    message = "mmbench: " + " ".join(f"word{i}" for i in range(60))
    console.print(message)
    assert buf.getvalue().splitlines() == [message]
