"""PNG plots: per run beside the record, per leaderboard beside the markdown (and linked from it)."""

import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.leaderboard.plots import plot_run, run_plot_paths
from mmbench.records import load_records
from tests.leaderboard.test_leaderboard import make_record, noisy


def _image(path: Path) -> np.ndarray:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path)


def _check_readable(path: Path, min_w: int = 300, min_h: int = 150) -> None:
    img = _image(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, (path.name, w, h)
    assert img[..., :3].std() > 0.05  # not a blank canvas


def test_run_plots_beside_the_record(tmp_path):
    path = make_record(tmp_path, "concat", 0, noisy(0.8, 0))
    make_record(tmp_path, "concat", 1, noisy(0.8, 1), status="failed")
    (rec,) = [r for r in load_records(tmp_path) if r["status"] == "ok"]
    written = plot_run(rec)
    expected = run_plot_paths(path)
    assert sorted(written) == sorted(expected.values())
    assert expected["confusion"].name == path.name.replace(".json", ".confusion.png")
    for png in written:
        _check_readable(png)
    assert plot_run(rec) == []  # up to date: nothing redrawn
    res = CliRunner().invoke(app, ["plot", "--runs", str(tmp_path), "--force", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert '"failed": 1' in res.stdout and res.stdout.count(".png") == 3


def test_leaderboard_plots_linked_from_markdown(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_record(runs, "good", seed, noisy(0.85, seed))
        make_record(runs, "bad", seed, noisy(0.4, seed))
    out = tmp_path / "boards" / "demo.md"
    res = CliRunner().invoke(
        app, ["leaderboard", "--runs", str(runs), "--output", str(out), "--plots", "--run-plots"]
    )
    assert res.exit_code == 0, res.output
    text = out.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["demo.weighted_f1.png", "demo.per_class_f1.png"]
    for link in links:
        _check_readable(out.parent / link)
    assert len(list(runs.glob("*.png"))) == 4 * 3
    # The markdown links are relative and the command in the footer reproduces the same bytes.
    again = CliRunner().invoke(app, ["leaderboard", "--runs", str(runs), "--output", str(out), "--plots"])
    assert again.exit_code == 0 and out.read_text() == text
