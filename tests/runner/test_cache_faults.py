"""Caches that could be fooled or cannot be used (issue 19, kind 5).

* an edited data file with the same size and modification time is parsed again, never served
  from the parsed-table cache;
* a read-only cache folder, a cache path that is a file and a ``HOME`` that is a file: the run
  goes on without a cache, with one warning naming the folder.
"""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.formats.spreadsheet import read_feature_table
from mmbench.runner import encoding_cache


@pytest.fixture(autouse=True)
def _fresh_checks(monkeypatch):
    monkeypatch.setattr(encoding_cache, "_CHECKED", {})


def _table(path: Path, value: float) -> Path:
    rows = [f'"[{value}, 2.0]",hap' if i % 2 else f'"[{value}, 3.0]",sad' for i in range(4)]
    path.write_text("V1,Emotion\n" + "\n".join(rows) + "\n")
    return path


def test_edited_table_with_same_size_and_mtime_is_parsed_again(tmp_path):
    path = _table(tmp_path / "t.csv", 1.0)
    first = read_feature_table(path, ["V1"], ["Emotion"])
    st = path.stat()
    _table(path, 7.0)  # same size, other numbers
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    second = read_feature_table(path, ["V1"], ["Emotion"])
    assert first.vectors["V1"][0, 0] == 1.0 and second.vectors["V1"][0, 0] == 7.0
    assert second.sha256 != first.sha256


def _unusable(kind: str, tmp_path: Path, monkeypatch) -> str:
    """Point the cache at an unusable place; return the folder the warning must name."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    if kind == "cache_is_a_file":
        monkeypatch.setenv("MMBENCH_CACHE", str(afile))
        return str(afile)
    if kind == "home_is_a_file":
        monkeypatch.delenv("MMBENCH_CACHE")
        monkeypatch.setenv("HOME", str(afile))
        return str(afile / ".cache" / "mmbench")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        monkeypatch.setenv("MMBENCH_CACHE", str(ro / "cache"))
        return str(ro / "cache")
    if os.access("/sys", os.W_OK) and Path("/sys").stat().st_mode & 0o222 and not Path("/sys").is_dir():
        pytest.skip("no read-only folder for root")
    monkeypatch.setenv("MMBENCH_CACHE", "/sys/mmbench-cache")  # sysfs: read-only even for root
    return "/sys/mmbench-cache"


@pytest.mark.parametrize("kind", ["cache_is_a_file", "home_is_a_file", "read_only"])
def test_unusable_cache_degrades_to_no_cache_with_one_warning(kind, tmp_path, monkeypatch):
    folder = _unusable(kind, tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    args = ["run", "--fusion", "concat", "--seeds", "0", "--max-epochs", "1", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--set", "data.n_samples=300", "--out", str(out)])
    message = " ".join(result.output.split())
    assert result.exit_code == 0, message
    assert message.count("warning: cache folder") == 1 and f"cache folder {folder} is unusable" in message
    assert len(list(out.glob("*seed0.json"))) == 1
    table = _table(tmp_path / "t.csv", 1.0)  # the spreadsheet reader works without a cache too
    assert read_feature_table(table, ["V1"], ["Emotion"]).vectors["V1"][0, 0] == 1.0
