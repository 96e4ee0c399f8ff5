"""The embedded synthetic dataset: deterministic, IEMOCAP-shaped, with the promised structure."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mmbench.errors import UsageError
from mmbench.plugins.datasets.synthetic import generate


def test_shapes_and_classes():
    d = generate(n_samples=800)
    assert {k: {s: a.shape[1] for s, a in v.items()} for k, v in d.modalities.items()} == {
        "text": {"text": 768},
        "audio": {"V1": 512, "V3": 25, "V4": 25},
        "visual": {"V1": 512},
    }
    assert d.num_classes == 8
    counts = np.bincount(d.labels, minlength=8)
    assert counts.max() > 3 * counts.min()  # imbalanced
    d.validate()


def test_default_size_is_iemocap_like():
    d = generate()
    assert 7000 <= d.n <= 8000


def test_deterministic():
    a, b = generate(n_samples=500), generate(n_samples=500)
    assert a.fingerprint == b.fingerprint
    assert generate(n_samples=500, generator_seed=1).fingerprint != a.fingerprint


def test_split_by_speaker():
    d = generate(n_samples=2000)
    spk = d.groups["speaker"]
    sets = {s: set(spk[d.splits[s]]) for s in ("train", "dev", "test")}
    assert not sets["train"] & sets["test"] and not sets["train"] & sets["dev"]
    assert not sets["dev"] & sets["test"]
    assert sum(len(v) for v in d.splits.values()) == d.n


def _probe(d, modalities):
    x = np.concatenate([d.concatenated(m) for m in modalities], axis=1)
    tr, te = d.splits["train"], d.splits["test"]
    clf = LogisticRegression(max_iter=300, C=0.05).fit(x[tr], d.labels[tr])
    return (clf.predict(x[te]) == d.labels[te]).mean()


def test_synergy_single_modalities_carry_nothing():
    d = generate(preset="synergy", n_samples=3000)
    majority = np.bincount(d.labels[d.splits["test"]]).max() / len(d.splits["test"])
    for m in ("text", "audio", "visual"):
        assert _probe(d, [m]) < majority + 0.05


def test_redundant_single_modalities_carry_the_label():
    d = generate(preset="redundant", n_samples=3000)
    majority = np.bincount(d.labels[d.splits["test"]]).max() / len(d.splits["test"])
    for m in ("text", "audio", "visual"):
        assert _probe(d, [m]) > majority + 0.2


def test_bad_options():
    with pytest.raises(UsageError, match="preset"):
        generate(preset="nope")
