"""Task types: regression metrics as MMSA defines them, the trainer's direction, a regression run."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score

from mmbench.contracts import DatasetPlugin
from mmbench.data import MultimodalData
from mmbench.errors import DataError, UsageError
from mmbench.metrics import regression_metric_names, regression_metrics
from mmbench.registry import Registry, hookimpl
from mmbench.registry.manager import build_registry, set_registry
from mmbench.tasks import ClassificationTask, RegressionTask, task_from_record, task_of
from mmbench.training.tensors import TensorSplit
from mmbench.training.trainer import Trainer


def _mmsa_bins(x, edges):
    # MMSA's own loop (utils/metricsTop.py, __eval_sims_regression), written out independently.
    out = np.zeros_like(x)
    for i in range(len(edges) - 1):
        out[(x > edges[i]) & (x <= edges[i + 1])] = i
    return out


@pytest.fixture
def sentiment():
    rng = np.random.default_rng(7)
    truth = np.round(rng.uniform(-3, 3, 300) * 3) / 3  # MOSI-like: thirds, with exact zeros
    truth[:25] = 0.0
    pred = np.clip(truth + rng.normal(0, 1.0, 300), -3.5, 3.5)
    return truth, pred


def test_mosi_scale_metrics_match_sklearn_and_scipy(sentiment):
    t, p = sentiment
    m = regression_metrics(t, p, (-3.0, 3.0))
    assert set(m) == set(regression_metric_names((-3.0, 3.0)))
    assert m["mae"] == pytest.approx(np.abs(t - p).mean())
    assert m["corr"] == pytest.approx(pearsonr(p, t)[0])
    assert m["acc2_has0"] == pytest.approx(accuracy_score(t >= 0, p >= 0))
    assert m["f1_has0"] == pytest.approx(f1_score(t >= 0, p >= 0, average="weighted"))
    nz = t != 0
    assert m["acc2_non0"] == pytest.approx(accuracy_score(t[nz] > 0, p[nz] > 0))
    assert m["f1_non0"] == pytest.approx(f1_score(t[nz] > 0, p[nz] > 0, average="weighted"))
    assert m["acc2_non0"] != m["acc2_has0"]  # the two conventions differ on this data
    for name, b in (("acc5", 2), ("acc7", 3)):
        expected = np.mean(np.round(np.clip(p, -b, b)) == np.round(np.clip(t, -b, b)))
        assert m[name] == pytest.approx(expected)


def test_sims_scale_metrics_use_mmsa_bins(sentiment):
    t, p = (np.clip(v / 3, -1, 1) for v in sentiment)
    m = regression_metrics(t, p, (-1.0, 1.0))
    assert set(m) == {"mae", "corr", "acc2", "acc3", "acc5", "f1"}
    for name, edges in (
        ("acc2", [-1.01, 0.0, 1.01]),
        ("acc3", [-1.01, -0.1, 0.1, 1.01]),
        ("acc5", [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]),
    ):
        assert m[name] == pytest.approx(np.mean(_mmsa_bins(p, edges) == _mmsa_bins(t, edges)))
    e2 = [-1.01, 0.0, 1.01]
    assert m["f1"] == pytest.approx(f1_score(_mmsa_bins(t, e2), _mmsa_bins(p, e2), average="weighted"))


def test_undefined_metrics_are_none_not_nan():
    m = regression_metrics(np.zeros(5), np.full(5, 0.3), (-3.0, 3.0))
    assert m["corr"] is None and m["acc2_non0"] is None and m["f1_non0"] is None
    assert m["mae"] == pytest.approx(0.3)
    assert regression_metric_names(None) == ("mae", "corr")
    assert "acc7" not in regression_metric_names((0.0, 10.0))  # no sign, no 7-point scale


def test_direction_follows_the_metric():
    reg, cls = RegressionTask((-3.0, 3.0)), ClassificationTask(("a", "b"))
    assert reg.is_better(0.7, 0.8, "mae") and not reg.is_better(0.8, 0.7, "mae")
    assert reg.is_better(0.5, 0.4, "corr") and cls.is_better(0.5, 0.4, "weighted_f1")
    assert reg.worst("mae") == float("inf") and cls.worst("accuracy") == float("-inf")


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, batch):
        return self.lin(batch["x"])


def _split(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x @ torch.tensor([1.0, -0.5, 0.25, 0.0])).clamp(-3, 3)
    return TensorSplit({"x": x}, y)


def _cfg(**kw):
    cfg = dict(
        max_epochs=15,
        patience=15,
        batch_size=32,
        grad_accum=1,
        lr=0.05,
        weight_decay=0.0,
        focal_gamma=2.0,
        grad_clip=0.0,
        optimizer="adamw",
        scheduler="none",
        scheduler_factor=0.5,
        scheduler_patience=2,
        loss="l1",
        imbalance="none",
        modality_dropout=0.0,
    )
    cfg.update(kw)
    return cfg


def test_trainer_selects_the_lowest_dev_mae():
    torch.manual_seed(0)
    task = RegressionTask((-3.0, 3.0))
    trainer = Trainer(_Linear(), _cfg(), "mae", task, torch.device("cpu"))
    fit = trainer.fit(_split(256, 0), _split(64, 1), seed=0)
    maes = [h["dev_mae"] for h in fit.history]
    assert fit.best_dev_score == pytest.approx(min(maes))
    assert fit.best_epoch == int(np.argmin(maes)) + 1
    assert maes[-1] < maes[0] / 3  # it learned the linear target
    pred = trainer.predict(_split(64, 1))
    assert pred.dtype == np.float32 and pred.shape == (64,)


def _regression_data() -> MultimodalData:
    rng = np.random.default_rng(0)
    n, steps = 90, 6
    a = rng.normal(size=(n, steps, 5)).astype(np.float32)
    v = rng.normal(size=(n, steps, 3)).astype(np.float32)
    lengths = rng.integers(2, steps + 1, size=n)
    y = np.clip(a[:, :2, 0].mean(1) * 2 + v[:, 0, 1], -3, 3).astype(np.float32)
    return MultimodalData(
        name="tiny-sentiment",
        modalities={"audio": {"a": a}, "visual": {"v": v}},
        labels=y,
        class_names=[],
        splits={"train": np.arange(60), "dev": np.arange(60, 75), "test": np.arange(75, 90)},
        lengths={"audio": lengths, "visual": np.full(n, steps)},
        task="regression",
        target_range=(-3.0, 3.0),
    )


class TinySentiment(DatasetPlugin):
    def load(self, path, options):
        return _regression_data()


class _Plugins:
    @hookimpl
    def mmbench_register_datasets(self, registry: Registry) -> None:
        registry.add_dataset("tiny-sentiment", "tests.test_tasks:TinySentiment", "regression")


@pytest.fixture
def regression_registry(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    reg, pm = build_registry([("test-datasets", _Plugins())])
    set_registry(reg, pm)
    yield reg
    set_registry(*build_registry())


REGRESSION_SET = ["metric=mae", "train.loss=l1", "train.imbalance=none", "train.max_epochs=3"]


def test_a_regression_run_writes_mmsa_metrics_and_float_predictions(tmp_path, regression_registry):
    import mmbench

    result = mmbench.run("concat", "tiny-sentiment", seeds=[0], overrides=REGRESSION_SET, out=tmp_path)
    (record,) = result.records
    assert record["status"] == "ok"
    assert record["task"] == {"kind": "regression", "target_range": [-3.0, 3.0]}
    test = record["metrics"]["test"]
    assert set(test) == set(regression_metric_names((-3.0, 3.0)))
    preds = json.loads((tmp_path / record["predictions_file"]).read_text())
    assert "probabilities" not in preds
    y_true, y_pred = np.array(preds["y_true"]), np.array(preds["y_pred"])
    assert test["mae"] == pytest.approx(np.abs(y_true - y_pred).mean(), rel=1e-5)
    assert min(h["dev_mae"] for h in record["history"]) == pytest.approx(
        record["metrics"]["dev"]["mae"], rel=1e-5
    )
    assert task_from_record(record) == RegressionTask((-3.0, 3.0))


def test_a_classification_metric_on_regression_data_is_refused(tmp_path, regression_registry):
    import mmbench

    with pytest.raises(
        UsageError, match=r"protocol metric 'weighted_f1' is not a metric of dataset 'tiny-sentiment'"
    ):
        mmbench.run("concat", "tiny-sentiment", seeds=[0], overrides=["train.loss=l1"], out=tmp_path)
    with pytest.raises(UsageError, match=r"train.loss 'cross_entropy' does not fit"):
        mmbench.run("concat", "tiny-sentiment", seeds=[0], overrides=["metric=mae"], out=tmp_path)


def test_regression_targets_are_validated():
    d = _regression_data()
    d.labels = d.labels.copy()
    d.labels[7] = 3.5
    with pytest.raises(DataError, match=r"outside target_range") as err:
        d.validate()
    assert err.value.row == 7
    d = _regression_data()
    d.labels[3] = np.nan
    with pytest.raises(DataError, match="NaN or inf"):
        d.validate()
    assert task_of(_regression_data().validate()).num_outputs == 1
    # Regression fingerprints hash the float targets: a change in one target changes it.
    a, b = _regression_data(), _regression_data()
    b.labels[0] += 0.25
    assert a.fingerprint != b.fingerprint
