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


def _alignment_arrays(n: int):
    d = generate(preset="alignment", n_samples=n)
    feats = np.concatenate(
        [np.concatenate(list(d.modalities[m].values()), axis=-1) for m in ("text", "audio", "visual")], -1
    )
    mask = np.arange(feats.shape[1])[None, :] < d.lengths["text"][:, None]
    return d, feats, mask


def test_alignment_pooled_features_carry_no_label():
    """Every sample has one event per modality: a mean over time looks the same for every class."""
    d, feats, mask = _alignment_arrays(3000)
    pooled = (feats * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    tr, te = d.splits["train"], d.splits["test"]
    acc = LogisticRegression(max_iter=500).fit(pooled[tr], d.labels[tr]).score(pooled[te], d.labels[te])
    majority = np.bincount(d.labels[te]).max() / len(te)
    assert acc < majority + 0.05


def test_alignment_is_learnable_step_by_step():
    """Fusing the modalities at each time step (then max over steps) recovers the label."""
    import torch
    from torch import nn

    d, feats, mask = _alignment_arrays(3000)
    x, m, y = torch.tensor(feats), torch.tensor(mask), torch.tensor(d.labels)
    tr, te = torch.tensor(d.splits["train"]), torch.tensor(d.splits["test"])
    flat = x[tr][m[tr]]
    x = (x - flat.mean(0)) / flat.std(0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(x.shape[-1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
    head = nn.Linear(64, len(d.class_names))
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], 1e-3)

    def logits(idx):
        return head(net(x[idx]).masked_fill(~m[idx][..., None], -1e4).max(1).values)

    for _ in range(20):
        for batch in tr[torch.randperm(len(tr))].split(64):
            loss = nn.functional.cross_entropy(logits(batch), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (logits(te).argmax(1) == y[te]).float().mean().item()
    assert acc > 0.8
