"""The synthetic regression preset: sequences of varying length, a target needing a fusion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import UsageError
from mmbench.plugins.datasets.synthetic import SyntheticDataset
from mmbench.plugins.datasets.synthetic_regression import generate_regression

PROTOCOL = Path(__file__).resolve().parents[3] / "configs" / "protocols" / "synthetic-regression.yaml"


def test_shapes_lengths_and_target():
    d = generate_regression(n_samples=400, seq_len=10, min_len=3)
    d.validate()
    assert d.task == "regression" and d.target_range == (-3.0, 3.0) and d.class_names == []
    assert d.labels.dtype == np.float32 and d.labels.min() >= -3 and d.labels.max() <= 3
    for mod in ("text", "audio", "visual"):
        x = d.concatenated(mod)
        assert x.shape[:2] == (400, 10)
        lengths = d.lengths[mod]
        assert lengths.min() >= 3 and lengths.max() <= 10 and len(set(lengths.tolist())) > 3
        padded = np.arange(10)[None, :] >= lengths[:, None]
        assert not x[padded].any() and x[~padded].std() > 0.1
    assert not np.array_equal(d.lengths["text"], d.lengths["audio"])  # unaligned
    h = d.meta["hidden"]
    expected = np.clip(2 * h["audio"] * h["text"] + h["visual"], -3, 3)
    assert np.abs(d.labels - expected).mean() < 0.15  # label noise 0.1


def test_deterministic_and_options_checked():
    a, b = generate_regression(n_samples=300), generate_regression(n_samples=300)
    assert a.fingerprint == b.fingerprint
    assert generate_regression(n_samples=300, generator_seed=1).fingerprint != a.fingerprint
    with pytest.raises(UsageError, match="data.flip_rate"):
        SyntheticDataset().load(None, {"preset": "regression", "flip_rate": 2})
    with pytest.raises(UsageError, match="unknown option"):
        SyntheticDataset().load(None, {"preset": "regression", "context_rate": 0.1})
    assert SyntheticDataset().load(None, {"preset": "regression", "n_samples": 300}).task == "regression"


def _pooled(d, mod: str) -> np.ndarray:
    return d.concatenated(mod).sum(axis=1) / d.lengths[mod][:, None]


def test_only_a_combination_of_modalities_predicts_the_target():
    """Each modality shows its hidden value (a linear read-out of pooled features recovers it), but
    a linear model of one modality predicts the target poorly; 2 x text x audio + visual does well."""
    d = generate_regression(n_samples=1500)
    tr, te = d.splits["train"], d.splits["test"]

    def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.c_[x, np.ones(len(x))]
        w, *_ = np.linalg.lstsq(x[tr], y[tr], rcond=None)
        return x @ w

    single = {
        m: float(np.abs(fit(_pooled(d, m), d.labels) - d.labels)[te].mean())
        for m in ("text", "audio", "visual")
    }
    read = {m: fit(_pooled(d, m), d.meta["hidden"][m]) for m in ("text", "audio", "visual")}
    for m, values in read.items():
        assert np.corrcoef(values[te], d.meta["hidden"][m][te])[0, 1] > 0.9, m
    combined = np.clip(2 * np.sign(read["audio"]) * read["text"] + read["visual"], -3, 3)
    joint = float(np.abs(combined - d.labels)[te].mean())
    assert joint < 0.5 * min(single.values()), (joint, single)


def _test_mae(out: Path, fusion: str, modality: str | None = None) -> float:
    maes = []
    for f in out.glob(f"synthetic__{fusion}__*seed*.json"):
        if f.name.endswith(".predictions.json"):
            continue
        record = json.loads(f.read_text())
        if modality is None or record["fusion_params"].get("modality") == modality:
            maes.append(record["metrics"]["test"]["mae"])
    assert len(maes) == 3
    return float(np.mean(maes))


def test_a_fusion_beats_every_unimodal_model_on_test_mae(tmp_path):
    common = ["--dataset", "synthetic", "--protocol", str(PROTOCOL), "--seeds", "0,1,2", "--device", "cpu"]
    common += ["--set", "data.n_samples=800", "--set", "train.max_epochs=12", "--out", str(tmp_path)]
    common += ["--format", "json"]
    runs = [["--fusion", "concat"]] + [
        ["--fusion", "unimodal", "--set", f"fusion.modality={m}"] for m in ("text", "audio", "visual")
    ]
    for extra in runs:
        result = CliRunner().invoke(app, ["run", *common, *extra])
        assert result.exit_code == 0, result.output
    fusion = _test_mae(tmp_path, "concat")
    unimodal = {m: _test_mae(tmp_path, "unimodal", m) for m in ("text", "audio", "visual")}
    assert fusion < 0.8 * min(unimodal.values()), (fusion, unimodal)
