"""``mmbench leaderboard --format latex``: the numbers of the markdown board and of the records, escaping,
captions and labels, and a standalone document that pdflatex compiles (where TeX Live is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.leaderboard.build import build_leaderboard
from mmbench.leaderboard.latex import latex_escape, render_latex
from mmbench.leaderboard.render import render_markdown
from mmbench.metrics import split_metric
from mmbench.records import load_records
from tests.leaderboard.test_leaderboard import make_record, noisy

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_RUNS = ROOT / "leaderboards" / "runs" / "mfeat"
MD_NUMBER = re.compile(r"(\d+\.\d{4}) ± (\d+\.\d{4})")
TEX_NUMBER = re.compile(r"(\d+\.\d{4}) \$\\pm\$ (\d+\.\d{4})")
PDFLATEX = shutil.which("pdflatex")


def table_lines(latex: str) -> list[str]:
    return [line for line in latex.splitlines() if line.endswith(r"\\") and "&" in line]


@pytest.fixture(scope="module")
def published_board():
    if not PUBLISHED_RUNS.is_dir():
        pytest.skip("no published mfeat records (scripts/publish_leaderboards.sh)")
    return build_leaderboard(load_records(PUBLISHED_RUNS), PUBLISHED_RUNS, datasets=["mfeat"])


def test_latex_numbers_equal_the_published_markdown_and_the_records(published_board):
    latex = render_latex(published_board, per_class=True)
    committed = (ROOT / "leaderboards" / "mfeat.md").read_text(encoding="utf-8")
    # The main table's mean ± std cells, row by row, equal the committed markdown board's ...
    md_cells = MD_NUMBER.findall(committed)
    tex_cells = TEX_NUMBER.findall(latex)
    assert tex_cells and tex_cells == md_cells
    assert tex_cells == MD_NUMBER.findall(render_markdown(published_board))
    # ... and the records' means and sample stds over seeds.
    group = published_board.groups[0]
    lines = table_lines(latex)
    n = len(group.rows)
    main, per_class = lines[1 : 1 + n], lines[2 + n :]
    assert len(per_class) == n
    for row, line in zip(group.rows, main, strict=True):
        cells = TEX_NUMBER.findall(line)
        for metric, (mean, std) in zip(group.metrics, cells, strict=True):
            # UA of records written before it was stored: from their per-class recall
            values = np.array([split_metric(r["metrics"]["test"], metric) for r in row.records], dtype=float)
            assert (mean, std) == (f"{values.mean():.4f}", f"{values.std(ddof=1):.4f}")
    # The per-class table's cells are the markdown's per-class cells.
    md_per_class = [
        line.split("|")[2:-1] for line in committed.splitlines() if re.match(r"^\| [a-z_]+ +\| ", line)
    ]
    tex_per_class = [line.removesuffix(r" \\").split(" & ")[1:] for line in per_class]
    assert [[c.strip().strip("*") for c in cells] for cells in md_per_class[-len(group.rows) :]] == [
        [re.sub(r"\\textbf\{(.*)\}", r"\1", c) for c in cells] for cells in tex_per_class
    ]


def test_latex_marks_best_and_ties_and_names_the_fingerprints(published_board):
    latex = render_latex(published_board)
    group = published_board.groups[0]
    assert f"protocol fingerprint {group.protocol_fingerprint}" in latex
    assert f"dataset fingerprint {group.dataset_fingerprint}" in latex
    rows = table_lines(latex)[1:]  # past the header
    best = rows[0]
    assert best.startswith("1 & concat & 5 & \\textbf{") and "& best &" in best
    tied = [r for r, row in zip(rows, group.rows, strict=True) if row.tied and not row.best]
    assert tied and all(r"$\approx$ tied (p=" in r for r in tied)
    assert "hierarchical bootstrap of test weighted F1 (1000 resamples, seed 0)" in latex
    assert "p<" not in latex
    # Holm over 28 pairs cannot go below 28/1001 on this board: a smaller p checks the escaping.
    import copy

    board = copy.deepcopy(published_board)
    board.groups[0].rows[-1].p_value, board.groups[0].rows[-1].tied = 0.0004, False
    latex = render_latex(board)
    assert r"& p\textless{}0.001 &" in latex and "p<" not in latex  # "<" is no text-mode glyph in OT1
    assert r"\toprule" in latex and r"\midrule" in latex and r"\bottomrule" in latex


def test_latex_escape():
    assert latex_escape("a_b & 50% #1 {x} $5 ~^\\") == (
        r"a\_b \& 50\% \#1 \{x\} \$5 \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )
    assert latex_escape("late †") == r"late \textsuperscript{\dag}"
    assert latex_escape("≈ ±") == r"$\approx$ $\pm$"


def odd_board(tmp_path: Path):
    """Fusions whose names need escaping (a plugin may register any name), 2 seeds each."""
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_record(runs, "my_fusion&co", seed, noisy(0.8, seed))
        make_record(runs, "50%_late#2", seed, noisy(0.6, seed + 10))
    return runs, build_leaderboard(load_records(runs), runs, n_resamples=200)


def test_caption_label_and_escaped_names(tmp_path):
    _, board = odd_board(tmp_path)
    latex = render_latex(board, caption=r"My \emph{caption}", label="tab:mine", per_class=True)
    assert r"\caption{My \emph{caption}}" in latex and r"\label{tab:mine}" in latex
    assert r"\label{tab:mine-per-class}" in latex
    assert r"my\_fusion\&co" in latex and r"50\%\_late\#2" in latex
    assert "my_fusion&co" not in latex
    default = render_latex(board)
    assert r"\label{tab:synthetic-preset-mixed}" in default or r"\label{tab:synthetic" in default


@pytest.mark.skipif(
    PDFLATEX is None,
    reason="pdflatex not installed (Debian: apt-get install texlive-latex-base texlive-latex-recommended)",
)
@pytest.mark.parametrize("board", ["published", "odd names"])
def test_standalone_document_compiles_with_pdflatex(tmp_path, monkeypatch, board):
    if board == "published":
        if not PUBLISHED_RUNS.is_dir():
            pytest.skip("no published mfeat records (scripts/publish_leaderboards.sh)")
        shutil.copytree(PUBLISHED_RUNS, tmp_path / "runs")
    else:
        odd_board(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["leaderboard", "--runs", "runs", "--format", "latex", "--standalone", "--per-class", "-o", "t.tex"],
    )
    assert result.exit_code == 0, result.output
    tex = (tmp_path / "t.tex").read_text(encoding="utf-8")
    assert tex.count(r"\documentclass") == 1 and r"\end{document}" in tex
    assert "--standalone" in tex.splitlines()[1]  # the regenerate comment carries the options
    proc = subprocess.run(
        [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "t.pdf").read_bytes().startswith(b"%PDF")
    assert "Missing character" not in (tmp_path / "t.log").read_text(errors="replace")


def test_latex_options_only_with_latex(tmp_path, monkeypatch):
    odd_board(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["leaderboard", "--runs", "runs", "--format", "md", "--per-class"])
    assert result.exit_code == 2 and "--per-class: only with --format latex" in result.output
    result = CliRunner().invoke(app, ["leaderboard", "--runs", "runs", "-o", "board.tex"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "board.tex").read_text().startswith("% Generated by `mmbench leaderboard`")
