"""The shipped mfeat data: shapes, a leak-free fixed split, train-only standardisation, accuracy."""

import numpy as np
import pytest

from mmbench.errors import UsageError
from mmbench.plugins.datasets.mfeat import VIEWS, MfeatDataset, load_mfeat
from mmbench.runner.leakage import find_duplicates

DIMS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}


def test_shapes_classes_and_split():
    d = load_mfeat().validate()
    assert d.n == 2000 and d.num_classes == 10
    assert {m: d.modalities[m][m].shape[1] for m in VIEWS} == DIMS
    assert (np.bincount(d.labels) == 200).all()
    counts = d.split_counts()
    assert abs(counts["train"] - 1200) <= 5 and abs(counts["test"] - 400) <= 5
    for split in ("train", "dev", "test"):  # stratified: every digit in every split, ~equally
        per_class = np.bincount(d.labels[d.splits[split]], minlength=10)
        assert per_class.min() >= 0.9 * per_class.mean()


def test_exact_duplicates_never_straddle_splits():
    report = find_duplicates(load_mfeat(standardize=False))
    assert report.total == 0
    assert sum(report.within.values()) >= 1  # the raw data does hold a few identical digits


def test_standardisation_uses_train_statistics_only():
    raw, std = load_mfeat(standardize=False), load_mfeat()
    train = std.splits["train"]
    for view in VIEWS:
        x = std.modalities[view][view][train]
        keep = raw.modalities[view][view][train].std(axis=0) > 0
        assert np.allclose(x.mean(axis=0)[keep], 0, atol=1e-4)
        assert np.allclose(x.std(axis=0)[keep], 1, atol=1e-3)
    assert load_mfeat().fingerprint == std.fingerprint  # deterministic


def test_options_and_data_path_refused(tmp_path):
    with pytest.raises(UsageError, match="standardize"):
        MfeatDataset().load(None, {"colour": 1})
    with pytest.raises(UsageError, match="ships with mmbench"):
        MfeatDataset().load(tmp_path, {})


def test_concat_reaches_published_accuracy(tmp_path):
    from mmbench.registry.manager import build_registry
    from mmbench.runner.run import RunRequest, run_benchmark

    reg, _ = build_registry()
    _, records = run_benchmark(
        RunRequest(dataset="mfeat", fusions=["concat"], seeds=[0], out_dir=tmp_path, device="cpu"), reg
    )
    assert records[0]["metrics"]["test"]["accuracy"] >= 0.97
