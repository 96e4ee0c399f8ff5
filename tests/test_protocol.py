"""Protocol resolution, overrides and fingerprints."""

import pytest

from mmbench.errors import UsageError
from mmbench.protocol import fingerprint, load_protocol, parse_override


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
