"""A seed-format IEMOCAP spreadsheet end to end: every fusion runs, test = session 5, fusion wins.

The sheet (:mod:`tests.plugins.datasets.sheet_fixtures`) splits the label across text, audio and visual, so a
single modality can only name a group of three classes: concat and cross_attention must beat
every unimodal baseline on weighted F1 by a clear margin, and the majority class by far more.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import f1_score
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.records import load_records
from mmbench.registry.manager import build_registry
from mmbench.runner.run import RunRequest, run_benchmark
from tests.plugins.datasets.sheet_fixtures import seed_rows, session5_rows, write_seed_sheet

REGISTRY, _ = build_registry()
N_ROWS, SEED, MAX_EPOCHS = 1200, 0, 6
MARGIN = 0.05
BUILTIN = {"concat", "cross_attention", "late", "unimodal", "tensor", "low_rank", "gated", "mult"}


def _run(tmp_path, data, name: str, fusions: list[str], *overrides: str) -> list[dict]:
    request = RunRequest(
        dataset="iemocap",
        data_path=data,
        fusions=fusions,
        seeds=[SEED],
        max_epochs=MAX_EPOCHS,
        device="cpu",
        out_dir=tmp_path / name,
        save_checkpoints=False,
        overrides=["encoders.text=tfidf", *overrides],  # the sheet's words are synthetic: TF-IDF fits them
    )
    _, records = run_benchmark(request, REGISTRY)
    return records


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core runner: two intra-op threads mostly wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sheet(tmp_path_factory):
    return write_seed_sheet(tmp_path_factory.mktemp("sheet") / "Filtered_IMOCAP.xlsx", N_ROWS, seed=SEED)


def test_seed_sheet_every_fusion_session5_and_fusion_beats_unimodal(tmp_path, sheet, one_thread):
    t0 = time.perf_counter()
    fusions = [e.name for e in REGISTRY.entries("fusion") if e.plugin == "builtin-fusions"]
    assert set(fusions) >= BUILTIN
    records = {r["fusion"]: r for r in _run(tmp_path, sheet, "all", fusions)}
    for modality in ("text", "audio", "visual"):
        (rec,) = _run(tmp_path, sheet, modality, ["unimodal"], f"fusion.modality={modality}")
        assert rec["fusion_params"]["modality"] == modality
        records[f"unimodal:{modality}"] = rec
    elapsed = time.perf_counter() - t0

    n_test = session5_rows(sheet)
    assert 0 < n_test < N_ROWS
    for name, rec in records.items():
        assert rec["status"] == "ok", (name, rec.get("failure"))
        assert rec["n_test"] == n_test, name
        assert rec["n_train"] + rec["n_dev"] + rec["n_test"] == N_ROWS, name
        assert "Ses05" in rec["protocol"]["split"], name
        assert rec["encoders"]["text"]["name"] == "tfidf", name

    wf1 = {name: rec["metrics"]["test"]["weighted_f1"] for name, rec in records.items()}
    labels = [row[-1] for row in seed_rows(N_ROWS, SEED) if row[0].startswith("Ses05")]
    majority = Counter(labels).most_common(1)[0][0]
    majority_wf1 = f1_score(labels, [majority] * len(labels), average="weighted")
    best_unimodal = max(wf1[f"unimodal:{m}"] for m in ("text", "audio", "visual"))
    report = ", ".join(f"{k} {v:.3f}" for k, v in sorted(wf1.items())) + f"; majority {majority_wf1:.3f}"
    for fusion in ("concat", "cross_attention"):
        assert wf1[fusion] > best_unimodal + MARGIN, report
        assert wf1[fusion] > majority_wf1 + 3 * MARGIN, report
    assert best_unimodal > majority_wf1, report  # each baseline learnt its part of the label
    assert np.isfinite(list(wf1.values())).all()
    print(f"\n{report}; {elapsed:.1f} s")


def test_seed_csv_with_short_codes_through_the_cli(tmp_path, one_thread):
    sheet = write_seed_sheet(tmp_path / "IEMOCAP.csv", 800, seed=1, fmt="csv", label_style="codes")
    out = tmp_path / "runs"
    args = ["run", "--dataset", "iemocap", "--data", str(sheet), "--fusion", "concat,unimodal"]
    args += ["--seeds", "0", "--max-epochs", "2", "--device", "cpu", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = load_records(out)
    assert sorted(r["fusion"] for r in records) == ["concat", "unimodal"]
    for rec in records:
        assert rec["status"] == "ok"
        assert rec["n_test"] == session5_rows(sheet)
        assert rec["n_train"] + rec["n_dev"] + rec["n_test"] == 800
