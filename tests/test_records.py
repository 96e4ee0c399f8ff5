"""RunRecord: the typed schema of record files, its committed JSON Schema, and checked loading."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import DataError
from mmbench.records import RunRecord, load_record, load_records, record_schema_text

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "leaderboards" / "runs"


def _record_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*.json")) if not p.name.endswith(".predictions.json")]


def test_committed_schema_is_current():
    committed = (ROOT / "docs" / "record.schema.json").read_text()
    assert committed == record_schema_text(), (
        "docs/record.schema.json is stale: python -m mmbench.records > docs/record.schema.json"
    )


def test_every_committed_record_validates():
    files = _record_files(PUBLISHED)
    assert len(files) > 100
    for path in files:
        RunRecord.model_validate(json.loads(path.read_text()))
    assert len(load_records(PUBLISHED)) == len(files)


@pytest.fixture
def one_record(tmp_path) -> Path:
    """A copy of one committed record (and its predictions) in a folder of its own."""
    source = _record_files(PUBLISHED / "synthetic-mixed")[0]
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(source, runs / source.name)
    predictions = source.name.replace(".json", ".predictions.json")
    shutil.copy(source.parent / predictions, runs / predictions)
    return runs / source.name


def _edit(path: Path, change) -> None:
    rec = json.loads(path.read_text())
    change(rec)
    path.write_text(json.dumps(rec))


def test_unknown_keys_load_and_are_kept(one_record):
    _edit(one_record, lambda r: r.update(added_by_a_newer_version={"x": 1}))
    assert load_record(one_record)["added_by_a_newer_version"] == {"x": 1}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda r: r.pop("seed"), "seed"),
        (lambda r: r.update(n_test="2610"), "n_test"),
        (lambda r: r["metrics"]["test"].update(weighted_f1="0.5"), "metrics.test.weighted_f1"),
        (lambda r: r.update(metrics={}), "metrics.dev and metrics.test"),
        (lambda r: r["efficiency"].update(params=True), "efficiency.params"),
    ],
)
def test_malformed_record_is_a_data_error_naming_file_and_key(one_record, change, key):
    _edit(one_record, change)
    with pytest.raises(DataError) as info:
        load_records(one_record.parent, strict=True)
    assert str(one_record) in str(info.value) and key in str(info.value)
    warnings: list[str] = []  # without strict: skipped, with one warning naming file and key
    assert load_records(one_record.parent, warn=warnings.append) == []
    assert len(warnings) == 1 and str(one_record) in warnings[0] and key in warnings[0]


@pytest.mark.parametrize("command", ["leaderboard", "plot", "robustness", "reproduce"])
def test_cli_readers_exit_2_on_a_malformed_record(one_record, tmp_path, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _edit(one_record, lambda r: r.update(seed="zero"))
    args = {
        "leaderboard": ["leaderboard", "--runs", str(one_record.parent)],
        "plot": ["plot", "--runs", str(one_record.parent)],
        "robustness": ["robustness", "--runs", str(one_record.parent)],
        "reproduce": ["reproduce", str(one_record)],
    }[command]
    result = CliRunner().invoke(app, args)
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert one_record.name in message and "seed" in message and "Traceback" not in message


def test_write_record_refuses_a_record_it_could_not_read_back(one_record, tmp_path):
    from pydantic import ValidationError

    from mmbench.records import write_record

    rec = json.loads(one_record.read_text())
    out = tmp_path / "written"
    path = write_record(out, "ok", dict(rec), {"y_true": [], "y_pred": []})
    assert load_record(path)["seed"] == rec["seed"]
    with pytest.raises(ValidationError):
        write_record(out, "bad", {**rec, "seed": "0"}, {"y_true": [], "y_pred": []})
    assert sorted(p.name for p in out.iterdir()) == ["ok.json", "ok.predictions.json"]
