"""Protocol resolution, overrides and fingerprints."""

import json
from pathlib import Path

import pytest

from mmbench.errors import UsageError
from mmbench.protocol import check_protocol, fingerprint, load_protocol, parse_override


def test_dataset_protocol_merges_over_default():
    p = load_protocol("synthetic")
    assert p["dataset"] == "synthetic"
    assert p["train"]["patience"] == 5
    assert p["train"]["weight_decay"] == pytest.approx(1e-5)
    assert p["data"]["preset"] == "mixed"


def test_override_types_and_nesting():
    p = load_protocol(
        "synthetic",
        overrides=["train.lr=5e-4", "data.preset=synergy", "fusion.modality=audio", "seeds=[3, 4]"],
    )
    assert p["train"]["lr"] == pytest.approx(5e-4)
    assert p["data"]["preset"] == "synergy"
    assert p["fusion"]["modality"] == "audio"
    assert p["seeds"] == [3, 4]


@pytest.mark.parametrize(
    "bad",
    [
        "train.lrr=1",
        "bogus=1",
        "noequals",
        "train.batch_size=0",
        "train.loss=hinge",
        "metric=auc",
        "seeds=[]",
    ],
)
def test_bad_overrides_are_usage_errors(bad):
    with pytest.raises(UsageError):
        load_protocol("synthetic", overrides=[bad])


def test_fingerprint_ignores_what_is_compared_but_not_the_budget():
    base = load_protocol("synthetic")
    same = load_protocol(
        "synthetic", overrides=["seeds=[9]", "fusion.dropout=0.1", "encoders.text=precomputed"]
    )
    assert fingerprint(base) == fingerprint(same)
    for change in ("train.lr=0.01", "data.preset=synergy", "train.max_epochs=3"):
        assert fingerprint(load_protocol("synthetic", overrides=[change])) != fingerprint(base)


def test_parse_override_reads_yaml_values():
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("x=0.5") == (["x"], 0.5)
    assert parse_override("name=hf-text") == (["name"], "hf-text")


def test_user_protocol_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("train:\n  batch_size: 64\n")
    assert load_protocol("synthetic", user_file=f)["train"]["batch_size"] == 64
    f.write_text("train: [1, 2\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_protocol("synthetic", user_file=f)


def test_protocol_file_reads_yaml11_numbers(tmp_path):
    """YAML 1.1 reads ``5e-4`` as a string; the protocol model reads the number the user meant."""
    f = tmp_path / "p.yaml"
    f.write_text("train: {lr: 5e-4, batch_size: '32'}\n")
    p = load_protocol("synthetic", user_file=f)
    assert p["train"]["lr"] == 5e-4 and isinstance(p["train"]["lr"], float)
    assert p["train"]["batch_size"] == 32


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train: {lr: fast}\n", "train.lr"),
        ("train: {patience: -1}\n", "train.patience"),
        ("train: {max_epochs: true}\n", "train.max_epochs"),
        ("seeds: [0, x]\n", "seeds"),
        ("fusion: 3\n", "fusion"),
    ],
)
def test_bad_protocol_file_names_key_and_file(tmp_path, text, key):
    f = tmp_path / "mine.yaml"
    f.write_text(text)
    with pytest.raises(UsageError) as info:
        load_protocol("synthetic", user_file=f)
    assert str(f) in str(info.value) and key in str(info.value)


def test_ints_stay_ints_and_key_order_is_kept():
    """Checked values keep their type and order: records and fingerprints keep their bytes."""
    raw = {"seeds": [1], "metric": "accuracy", "fusion": {}, "encoders": {}, "data": {}}
    raw["train"] = {"lr": 1, "max_epochs": 2, "patience": 0, "batch_size": 4, "grad_accum": 1}
    raw["train"].update(weight_decay=0, focal_gamma=2, grad_clip=0.0, optimizer="adamw")
    raw["train"].update(scheduler="none", loss="focal", imbalance="none", extra_key="kept")
    checked = check_protocol(raw)
    assert json.dumps(checked) == json.dumps(raw)


def _committed_records():
    root = Path(__file__).resolve().parents[1] / "leaderboards" / "runs"
    files = [p for p in sorted(root.rglob("*.json")) if not p.name.endswith(".predictions.json")]
    return [json.loads(p.read_text()) for p in files]


def test_committed_record_fingerprints_are_recomputed_from_their_protocol():
    """Every published record's stored protocol, checked by the protocol model, hashes to the stored
    fingerprint and keeps its exact JSON (the models change no value of an existing protocol)."""
    records = _committed_records()
    assert len(records) > 100
    fingerprints = set()
    for rec in records:
        checked = check_protocol(rec["protocol"])
        assert json.dumps(checked) == json.dumps(rec["protocol"])
        assert fingerprint(checked) == rec["protocol_fingerprint"]
        fingerprints.add(rec["protocol_fingerprint"])
    assert len(fingerprints) >= 6  # one per published board at least


def test_cli_runs_a_protocol_file_with_yaml11_lr_and_refuses_a_bad_one(tmp_path):
    from typer.testing import CliRunner

    from mmbench.cli import app

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("train: {lr: 5e-4}\ndata: {n_samples: 300}\n")
    bad.write_text("train: {batch_size: many}\n")
    common = ["run", "--fusion", "concat", "--seeds", "0", "--max-epochs", "1", "--device", "cpu"]
    ok = CliRunner().invoke(app, [*common, "--protocol", str(good), "--out", str(tmp_path / "runs")])
    assert ok.exit_code == 0, ok.output
    (record,) = [p for p in (tmp_path / "runs").glob("*.json") if not p.name.endswith("predictions.json")]
    assert json.loads(record.read_text())["protocol"]["train"]["lr"] == 5e-4
    refused = CliRunner().invoke(app, [*common, "--protocol", str(bad), "--out", str(tmp_path / "r2")])
    assert refused.exit_code == 2
    message = " ".join(refused.output.split())
    assert str(bad) in message and "train.batch_size must be a positive integer" in message


def test_description_is_an_annotation_and_numerics_are_protocol():
    from mmbench.protocol import fingerprint_without_numerics

    base = load_protocol("synthetic")
    described = load_protocol("synthetic", overrides=["description=a note that changes no result"])
    assert described["description"] and fingerprint(described) == fingerprint(base)
    fp32 = {**base, "numerics": {"precision": "fp32", "compile": False, "device": "cpu"}}
    bf16 = {**base, "numerics": {"precision": "bf16", "compile": False, "device": "cpu"}}
    assert fingerprint(fp32) != fingerprint(bf16) != fingerprint(base)
    assert fingerprint_without_numerics(fp32) == fingerprint_without_numerics(bf16) == fingerprint(base)
    assert "numerics" not in load_protocol("synthetic")  # the runner adds it, per run


def test_protocol_option_takes_the_name_of_a_shipped_protocol(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    by_name = load_protocol("synthetic", user_file=Path("synthetic-regression"))
    assert by_name["data"]["preset"] == "regression" and by_name["metric"] == "mae"
    with pytest.raises(UsageError, match="protocol file no-such-protocol does not exist"):
        load_protocol("synthetic", user_file=Path("no-such-protocol"))
    # A file of that name in the working folder wins over the shipped protocol.
    (tmp_path / "synthetic-regression").write_text("metric: macro_f1\n")
    assert load_protocol("synthetic", user_file=Path("synthetic-regression"))["metric"] == "macro_f1"
