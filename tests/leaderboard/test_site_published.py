"""The committed site, ``leaderboards/site/``, is what ``scripts/publish_leaderboards.sh site`` makes from
the committed records: the command in its index's footer regenerates it (pages, assets and the records
downloads byte for byte; the SVG charts, matplotlib's output, by name)."""

from __future__ import annotations

import html
import re
import shlex
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "leaderboards" / "site"


def files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.skipif(
    not (SITE / "index.html").exists(), reason="no published site (scripts/publish_leaderboards.sh)"
)
def test_committed_site_matches_its_records(tmp_path, monkeypatch):
    index = (SITE / "index.html").read_text(encoding="utf-8")
    match = re.search(r"Regenerate: <code>(mmbench leaderboard [^<]+)</code>", index)
    assert match, "no Regenerate: line in the site's index"
    args = shlex.split(html.unescape(match.group(1)))[1:]
    assert args[args.index("--runs") + 1] == "leaderboards/runs"
    assert args[args.index("--output") + 1] == "leaderboards/site"
    shutil.copytree(ROOT / "leaderboards" / "runs", tmp_path / "leaderboards" / "runs")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    committed, fresh = files(SITE), files(tmp_path / "leaderboards" / "site")
    assert sorted(fresh) == sorted(committed)
    for name, path in committed.items():
        if name.endswith(".svg"):
            continue
        if name.endswith(".zip"):
            old, new = zipfile.ZipFile(path), zipfile.ZipFile(fresh[name])
            assert old.namelist() == new.namelist(), name
            assert all(old.read(n) == new.read(n) for n in old.namelist()), name
        else:
            assert fresh[name].read_bytes() == path.read_bytes(), name
