"""``mmbench cache list|clear|prune``: entries seen with their size and identity, LRU pruning."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import UsageError
from mmbench.runner.encoding_cache import store
from mmbench.tools.cache import parse_size, scan


def _entry(root, section, key, kb, age_s, identity):
    path = root / section / f"{key}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    store(path, path.with_suffix(".json"), {"x": np.zeros((kb * 256,), np.float32)}, identity, 0.1)
    stamp = 1_700_000_000 - age_s
    for p in (path, path.with_suffix(".json")):
        os.utime(p, (stamp, stamp))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_CACHE", str(tmp_path))
    _entry(tmp_path, "features", "a" * 32, 100, 300, {"name": "minilm"})
    _entry(tmp_path, "features", "b" * 32, 100, 100, {"name": "tfidf"})
    _entry(tmp_path, "tables", "c" * 32, 100, 200, {"table": "meld.xlsx", "sha256": "0"})
    return tmp_path


def test_cache_list_shows_entries_oldest_first(cache):
    res = CliRunner().invoke(app, ["cache", "list", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [e["key"][0] for e in data["entries"]] == ["a", "c", "b"]
    assert data["entries"][0]["what"].startswith("encoder minilm")
    assert data["entries"][1]["what"] == "table meld.xlsx"
    assert data["bytes"] == sum(e["bytes"] for e in data["entries"]) > 300 * 1024
    table = CliRunner().invoke(app, ["cache", "list"], env={"COLUMNS": "120"})
    assert table.exit_code == 0 and "encoder tfidf" in table.stdout


def test_prune_removes_least_recently_used_until_it_fits(cache):
    res = CliRunner().invoke(app, ["cache", "prune", "--max-size", "150K"])
    assert res.exit_code == 0, res.output
    assert "removed 2 least-recently-used entries" in res.output
    assert [e.key[0] for e in scan(cache)] == ["b"]  # the most recently used survives
    assert not (cache / "features" / f"{'a' * 32}.json").exists()


def test_clear_one_section_then_all(cache):
    assert CliRunner().invoke(app, ["cache", "clear", "--section", "tables"]).exit_code == 0
    assert {e.section for e in scan(cache)} == {"features"}
    res = CliRunner().invoke(app, ["cache", "clear"])
    assert res.exit_code == 0 and "removed 2 cache entries" in res.output
    assert scan(cache) == []


def test_bad_sizes_and_sections_are_usage_errors(cache):
    assert (
        parse_size("2G") == 2**30 * 2 and parse_size("1.5MB") == int(1.5 * 2**20) and parse_size("10") == 10
    )
    with pytest.raises(UsageError):
        parse_size("lots")
    assert CliRunner().invoke(app, ["cache", "prune", "--max-size", "lots"]).exit_code == 2
    assert CliRunner().invoke(app, ["cache", "clear", "--section", "nope"]).exit_code == 2
