"""Results bundles: ``mmbench export`` then ``mmbench leaderboard --runs results.zip`` regenerates the
bundle's markdown byte for byte; reading a zip never writes outside a private folder and is bounded."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import UsageError
from mmbench.leaderboard.bundle import Limits, extract_records, write_zip
from mmbench.records import load_records
from tests.leaderboard.test_leaderboard import make_record, noisy

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_RUNS = ROOT / "leaderboards" / "runs" / "mfeat"


def published_subset(dest: Path, fusions=("concat", "late", "unimodal")) -> Path:
    """Real records (and predictions) of three published mfeat fusions, 5 seeds each."""
    if not PUBLISHED_RUNS.is_dir():
        pytest.skip("no published mfeat records (scripts/publish_leaderboards.sh)")
    dest.mkdir(parents=True)
    for path in PUBLISHED_RUNS.iterdir():
        if path.name.split("__")[1] in fusions:
            shutil.copy(path, dest / path.name)
    return dest


def test_export_then_leaderboard_from_the_zip_regenerates_identical_markdown(tmp_path, monkeypatch):
    runs = published_subset(tmp_path / "src" / "runs")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "export", "--runs", "src/runs", "--output", "results.zip", "--author", "Curie, Marie",
            "--author", "Fusion Lab", "--title", "Fusion on mfeat", "--date", "2026-12-01",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    zf = zipfile.ZipFile(tmp_path / "results.zip")
    names = set(zf.namelist())
    records = sorted(n for n in names if n.startswith("runs/") and not n.endswith(".predictions.json"))
    assert len(records) == 15 and len([n for n in names if n.endswith(".predictions.json")]) == 15
    assert {"CITATION.cff", "README.md", "manifest.json", "environment.json"} <= names
    assert {"boards/leaderboard.md", "boards/leaderboard.tex", "boards/leaderboard.json"} <= names
    assert {"boards/leaderboard.csv", "boards/site/index.html", "boards/site/mfeat.html"} <= names
    assert not [n for n in names if n.endswith(".safetensors")]
    # Predictions are copied as they are; records lose only loader fields and install locations.
    original = json.loads((runs / Path(records[0]).name).read_text())
    bundled = json.loads(zf.read(records[0]))
    assert bundled["metrics"] == original["metrics"] and bundled["seed"] == original["seed"]
    pred = records[0].removesuffix(".json") + ".predictions.json"
    assert zf.read(pred) == (runs / Path(pred).name).read_bytes()
    # The manifest's sha256 are the members'.
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["records"] == 15 and manifest["groups"][0]["dataset"] == "mfeat"
    for name, info in manifest["files"].items():
        assert hashlib.sha256(zf.read(name)).hexdigest() == info["sha256"]
    cff = yaml.safe_load(zf.read("CITATION.cff"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "dataset" and cff["title"] == "Fusion on mfeat"
    assert cff["authors"] == [{"family-names": "Curie", "given-names": "Marie"}, {"name": "Fusion Lab"}]
    assert cff["date-released"] == "2026-12-01" and "ff5dd13180881b16" in cff["abstract"]
    env = json.loads(zf.read("environment.json"))
    assert env["export"]["mmbench"] and env["runs"][0]["torch"] == "2.13.0+cpu"

    # Elsewhere (a fresh folder holding only the bundle), the footer's command regenerates the markdown.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(tmp_path / "results.zip", elsewhere / "results.zip")
    markdown = zf.read("boards/leaderboard.md")
    footer = markdown.decode().rsplit("Regenerate: `", 1)[1].split("`")[0]
    assert (
        footer == "mmbench leaderboard --runs results.zip --format md --output boards/leaderboard.md --plots"
    )
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(app, footer.split()[1:])
    assert result.exit_code == 0, result.output
    assert (elsewhere / "boards" / "leaderboard.md").read_bytes() == markdown
    assert (elsewhere / "boards" / "leaderboard.weighted_f1.png").is_file()
    # The same numbers as the board of the original folder.
    result = CliRunner().invoke(app, ["leaderboard", "--runs", str(runs), "--format", "csv"])
    from_zip = CliRunner().invoke(app, ["leaderboard", "--runs", "results.zip", "--format", "csv"])
    assert result.exit_code == 0 and result.stdout == from_zip.stdout
    assert not list(elsewhere.glob("runs"))  # nothing unpacked beside the bundle


def test_a_zipped_runs_folder_reads_like_the_folder(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_record(runs / "nested", "concat", seed, noisy(0.8, seed))
    members = {p.relative_to(runs).as_posix(): p.read_bytes() for p in runs.rglob("*") if p.is_file()}
    write_zip(tmp_path / "plain.zip", members)
    records = load_records(extract_records(tmp_path / "plain.zip", tmp_path / "out"))
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert sorted(p.name for p in (tmp_path / "out" / "nested").iterdir()) == sorted(
        p.name for p in (runs / "nested").iterdir()
    )


def evil_zip(path: Path, name: str, payload: bytes = b"{}", mode: int = stat.S_IFREG | 0o644) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("runs/ok.json", b"{}")
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = mode << 16
        zf.writestr(info, payload)
    return path


@pytest.mark.parametrize(
    "name,mode,problem",
    [
        ("../../escaped.json", stat.S_IFREG | 0o644, "'..'"),
        ("runs/../../escaped.json", stat.S_IFREG | 0o644, "'..'"),
        ("/tmp/escaped.json", stat.S_IFREG | 0o644, "absolute"),
        ("C:/escaped.json", stat.S_IFREG | 0o644, "absolute"),
        ("runs\\..\\escaped.json", stat.S_IFREG | 0o644, "absolute or Windows"),
        ("runs/link.json", stat.S_IFLNK | 0o777, "link"),
    ],
)
def test_unsafe_members_are_refused_and_nothing_is_written(tmp_path, monkeypatch, name, mode, problem):
    bundle = evil_zip(tmp_path / "evil.zip", name, b"/etc/passwd", mode)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["leaderboard", "--runs", "evil.zip", "--format", "md"])
    assert result.exit_code == 2
    assert "evil.zip" in result.output and problem in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip"]
    assert not (tmp_path.parent / "escaped.json").exists()
    with pytest.raises(UsageError):
        extract_records(bundle, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json"))


def test_sizes_and_member_counts_are_bounded(tmp_path):
    runs = tmp_path / "runs"
    make_record(runs, "concat", 0, noisy(0.8, 0))
    members = {f"runs/{p.name}": p.read_bytes() for p in runs.iterdir()}
    bundle = write_zip(tmp_path / "b.zip", members)
    with pytest.raises(UsageError, match="more than the limit of 100 bytes"):
        extract_records(bundle, tmp_path / "a", Limits(member_bytes=100))
    with pytest.raises(UsageError, match="more than the limit of 1000 bytes"):
        extract_records(bundle, tmp_path / "b", Limits(total_bytes=1000))
    with pytest.raises(UsageError, match="more than the limit of 1"):
        extract_records(bundle, tmp_path / "c", Limits(members=1))
    assert extract_records(bundle, tmp_path / "d") == tmp_path / "d" / "runs"


def test_not_a_folder_nor_a_zip_and_bad_export_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.zip").write_text("not a zip")
    result = CliRunner().invoke(app, ["leaderboard", "--runs", "notes.zip"])
    assert result.exit_code == 2 and "no such folder or results bundle" in result.output
    make_record(tmp_path / "runs", "concat", 0, noisy(0.8, 0))
    result = CliRunner().invoke(app, ["export", "--runs", "runs", "--output", "out.tar"])
    assert result.exit_code == 2 and "a results bundle is a .zip file" in result.output
    result = CliRunner().invoke(app, ["export", "--runs", "runs", "--output", "r.zip", "--date", "1/12/2026"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output and not (tmp_path / "r.zip").exists()


def test_bundles_are_deterministic(tmp_path):
    members = {"b.json": b"2", "a/x.json": b"1"}
    one = write_zip(tmp_path / "one.zip", members).read_bytes()
    two = write_zip(tmp_path / "two.zip", dict(reversed(members.items()))).read_bytes()
    assert one == two
    assert zipfile.ZipFile(tmp_path / "one.zip").namelist() == ["a/x.json", "b.json"]
