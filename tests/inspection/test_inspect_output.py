"""``mmbench inspect`` output streams: results on stdout, warnings and the report path on stderr; a
constant feature column gives no raw numpy/sklearn warning."""

from __future__ import annotations

import warnings

import numpy as np
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.inspection.checks import project
from mmbench.plugins.datasets.synthetic import generate
from tests.inspection.test_inspect import leaky_registry  # noqa: F401  (fixture)


def test_warnings_and_report_path_go_to_stderr(tmp_path, leaky_registry):  # noqa: F811
    out = tmp_path / "report"
    res = CliRunner().invoke(
        app, ["inspect", "--dataset", "leaky", "--output", str(out)], env={"COLUMNS": "150"}
    )
    assert res.exit_code == 0, res.output
    assert "classes" in res.stdout and "verdict" in res.stdout
    assert "warning" not in res.stdout and "report" not in res.stdout.split("verdict")[-1]
    err = " ".join(res.stderr.split())
    assert "warning: leaks across splits" in err
    assert f"report written to {out / 'report.md'}" in err


def test_a_constant_feature_column_projects_without_a_raw_warning():
    data = generate(preset="mixed", n_samples=200, generator_seed=1)
    constant = {"const": np.zeros((data.n, 1), dtype=np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, info = project(data, constant, constant["const"], tsne=False, max_points=100, seed=0)
    assert info["pca_explained_variance"]["const"] == [0.0]
