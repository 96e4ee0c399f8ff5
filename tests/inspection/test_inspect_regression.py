"""`mmbench inspect` on a regression target: target statistics instead of class counts, ridge probes
scored with MAE and Corr instead of logistic probes, and a report without class sections."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.inspection.checks import inspect_data
from mmbench.inspection.probes import ALL
from mmbench.inspection.report import markdown, write_report
from mmbench.inspection.target import RIDGE_ALPHA, histogram_edges
from tests.regression_runs import DATASET, REGRESSION_SET, toy_registry, toy_sentiment


@pytest.fixture(scope="module")
def result():
    return inspect_data(toy_sentiment())


def test_target_statistics_per_split(result):
    data = toy_sentiment()
    s = result.summary
    assert "classes" not in s
    target = s["target"]
    assert target["range"] == [-3.0, 3.0]
    # Unit-wide bins centred on -3 ... 3: Acc-7's classes.
    assert target["histogram_edges"] == [-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5]
    for split in ("train", "dev", "test"):
        y = data.labels[data.splits[split]].astype(np.float64)
        st = target["splits"][split]
        assert st["n"] == len(y) and sum(st["histogram"]) == len(y)
        assert st["mean"] == pytest.approx(y.mean(), abs=1e-4)
        assert st["std"] == pytest.approx(y.std(ddof=1), abs=1e-4)
        assert st["quantiles"]["50%"] == pytest.approx(np.median(y), abs=1e-4)
        assert st["zero_share"] == pytest.approx(np.mean(y == 0), abs=1e-4)
        assert st["negative_share"] + st["zero_share"] + st["positive_share"] == pytest.approx(1.0, abs=2e-4)
    assert list(histogram_edges(np.array([0.0, 1.0]), (0.0, 1.0))) == pytest.approx(np.linspace(0, 1, 13))


def test_ridge_probes_are_scored_with_mae_and_corr(result):
    data = toy_sentiment()
    probes = result.summary["probes"]
    rows = {r["probe"]: r for r in probes["rows"]}
    assert set(rows) == {"audio", "visual", ALL}
    # audio carries the target: its probe beats chance and the median baseline; the verdict says so
    assert rows["audio"]["beats_chance"] and rows["audio"]["mae"] < probes["baseline"]["mae"]
    assert probes["verdict_kind"] in ("dominated_by_one", "complementary")
    train, dev = data.splits["train"], data.splits["dev"]
    y = data.labels.astype(np.float64)
    median = np.median(y[train])
    assert probes["baseline"]["mae"] == pytest.approx(np.abs(y[dev] - median).mean(), abs=1e-4)
    # The audio probe is a ridge regression on the train-standardised, mean-pooled audio features.
    a = data.concatenated("audio")
    lengths = data.lengths["audio"]
    mask = np.arange(a.shape[1])[None, :] < lengths[:, None]
    pooled = (a * mask[..., None]).sum(1) / lengths[:, None]
    mu, sd = pooled[train].mean(0), pooled[train].std(0)
    x = (pooled - mu) / np.where(sd > 0, sd, 1)
    pred = Ridge(alpha=RIDGE_ALPHA).fit(x[train], y[train]).predict(x[dev])
    assert rows["audio"]["mae"] == pytest.approx(np.abs(pred - y[dev]).mean(), abs=2e-3)


def test_report_has_a_target_section_and_no_classes(result, tmp_path):
    files = write_report(result, tmp_path)
    text = (tmp_path / files["markdown"]).read_text()
    assert "## Target" in text and "## Classes" not in text
    assert "ridge regression" in text and "MAE ↓" in text and "train median" in text
    assert all((tmp_path / files[k]).stat().st_size > 1000 for k in ("classes", "pca", "probes"))
    assert markdown(result.summary, files) == text


def test_inspect_cli_on_a_regression_dataset(tmp_path):
    with toy_registry():
        out = CliRunner().invoke(
            app,
            ["inspect", "--dataset", DATASET, "--output", str(tmp_path / "r"), "--format", "json"]
            + [x for s in REGRESSION_SET for x in ("--set", s)],
        )
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["target"]["splits"]["train"]["n"] == 72 and "classes" not in summary
