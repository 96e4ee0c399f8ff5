"""End-to-end runs: records, determinism, options, and the preset behaviour the design promises."""

import json
from pathlib import Path

import numpy as np
import pytest

from mmbench.errors import DataError, UsageError
from mmbench.records import load_records
from mmbench.registry.manager import build_registry
from mmbench.runner.run import RunRequest, run_benchmark, summarize

REGISTRY, _ = build_registry()
SMALL = ["data.n_samples=1200"]

RECORD_KEYS = {
    "schema_version",
    "dataset",
    "fusion",
    "encoders",
    "seed",
    "protocol",
    "protocol_fingerprint",
    "dataset_fingerprint",
    "metrics",
    "best_epoch",
    "history",
    "efficiency",
    "n_train",
    "n_dev",
    "n_test",
    "environment",
    "created_at",
}


def run(tmp_path, **kw):
    req = RunRequest(out_dir=tmp_path / "runs", device="cpu", **kw)
    return run_benchmark(req, REGISTRY)


def test_record_contents(tmp_path):
    prep, records = run(tmp_path, fusions=["concat"], seeds=[0], max_epochs=2, overrides=SMALL)
    rec = records[0]
    assert set(rec) >= RECORD_KEYS
    for split in ("dev", "test"):
        assert {"accuracy", "weighted_f1", "macro_f1", "per_class", "confusion_matrix"} <= set(
            rec["metrics"][split]
        )
    assert set(rec["efficiency"]) >= {
        "params",
        "train_seconds",
        "train_samples_per_second",
        "peak_memory_bytes",
        "inference_ms_per_sample",
    }
    assert rec["n_train"] + rec["n_dev"] + rec["n_test"] == 1200
    assert rec["budget_cut"] is True and rec["protocol"]["train"]["max_epochs"] == 2
    assert len(rec["history"]) == 2
    on_disk = json.loads(Path(rec["_path"]).read_text())
    assert on_disk["metrics"] == rec["metrics"]
    preds = json.loads((Path(rec["_path"]).parent / on_disk["predictions_file"]).read_text())
    assert len(preds["y_pred"]) == rec["n_test"]
    cm = np.array(rec["metrics"]["test"]["confusion_matrix"])
    assert cm.sum() == rec["n_test"]
    assert (np.array(preds["y_true"]) == np.array(preds["y_pred"])).mean() == pytest.approx(
        rec["metrics"]["test"]["accuracy"]
    )
    assert (Path(rec["_path"]).parent / on_disk["checkpoint_file"]).exists()


@pytest.mark.parametrize("fusion", REGISTRY.names("fusion"))
def test_same_seed_same_metrics(tmp_path, fusion):
    """Every registered fusion: the same seed gives identical CPU metrics and loss history."""
    tiny = ["data.n_samples=300"]
    _, a = run(tmp_path / "a", fusions=[fusion], seeds=[3], max_epochs=2, overrides=tiny)
    _, b = run(tmp_path / "b", fusions=[fusion], seeds=[3], max_epochs=2, overrides=tiny)
    assert a[0]["status"] == "ok" and b[0]["status"] == "ok"
    assert a[0]["metrics"] == b[0]["metrics"]
    assert [h["train_loss"] for h in a[0]["history"]] == [h["train_loss"] for h in b[0]["history"]]
    _, c = run(tmp_path / "c", fusions=[fusion], seeds=[4], max_epochs=2, overrides=tiny)
    assert [h["train_loss"] for h in c[0]["history"]] != [h["train_loss"] for h in a[0]["history"]]


def test_seeds_and_summary(tmp_path):
    _, records = run(tmp_path, fusions=["late", "unimodal"], seeds=[0, 1], max_epochs=1, overrides=SMALL)
    assert [(r["fusion"], r["seed"]) for r in records] == [
        ("late", 0),
        ("late", 1),
        ("unimodal", 0),
        ("unimodal", 1),
    ]
    summary = {s["fusion"]: s for s in summarize(records)}
    vals = [r["metrics"]["test"]["accuracy"] for r in records if r["fusion"] == "late"]
    assert summary["late"]["test"]["accuracy"]["mean"] == pytest.approx(np.mean(vals))
    assert summary["late"]["test"]["accuracy"]["std"] == pytest.approx(np.std(vals, ddof=1))
    assert len(load_records(tmp_path / "runs")) == 4


def test_fusion_override_applies_to_fusions_that_know_it(tmp_path):
    _, records = run(
        tmp_path, fusions=["unimodal"], seeds=[0], max_epochs=1, overrides=[*SMALL, "fusion.modality=visual"]
    )
    assert records[0]["fusion_params"]["modality"] == "visual"
    with pytest.raises(UsageError, match="fusion.nothing"):
        run(
            tmp_path,
            fusions=["concat", "late"],
            seeds=[0],
            max_epochs=1,
            overrides=[*SMALL, "fusion.nothing=1"],
        )


def test_missing_data_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        run(tmp_path, dataset="iemocap", fusions=["concat"], data_path=tmp_path / "nope.xlsx")


def test_data_path_refused_for_built_in_dataset(tmp_path):
    with pytest.raises(UsageError, match="built in"):
        run(tmp_path, fusions=["concat"], data_path=tmp_path / "nope.xlsx")


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["synergy", "redundant"])
def test_preset_behaviour(tmp_path, preset):
    """synergy: late/unimodal near chance, concat/cross_attention far above; redundant: all above."""
    _, records = run(
        tmp_path,
        fusions=["concat", "cross_attention", "late", "unimodal"],
        seeds=[0],
        overrides=[f"data.preset={preset}", "data.n_samples=4000"],
        max_epochs=25,
    )
    acc = {r["fusion"]: r["metrics"]["test"]["accuracy"] for r in records}
    test_labels = np.array(
        json.loads((Path(records[0]["_path"]).parent / records[0]["predictions_file"]).read_text())["y_true"]
    )
    majority = np.bincount(test_labels).max() / len(test_labels)
    if preset == "synergy":
        for f in ("late", "unimodal"):
            assert acc[f] < majority + 0.05, acc
        for f in ("concat", "cross_attention"):
            assert acc[f] > majority + 0.3, acc
    else:
        for f in acc:
            assert acc[f] > majority + 0.25, acc


def test_records_carry_ua_and_the_datasets_cluster_ids(tmp_path, monkeypatch):
    from sklearn.metrics import balanced_accuracy_score

    from mmbench.plugins.datasets.synthetic import SyntheticDataset

    monkeypatch.setattr(SyntheticDataset, "cluster_unit", "session", raising=False)
    prep, records = run(tmp_path, fusions=["concat"], seeds=[0], max_epochs=1, overrides=SMALL)
    rec = records[0]
    preds = json.loads((Path(rec["_path"]).parent / rec["predictions_file"]).read_text())
    test_idx = prep.data.splits["test"]
    assert rec["cluster_unit"] == "session"
    assert preds["clusters"] == [str(s) for s in prep.data.groups["session"][test_idx]]
    test = rec["metrics"]["test"]
    assert test["unweighted_accuracy"] == pytest.approx(
        balanced_accuracy_score(preds["y_true"], preds["y_pred"])
    )
    assert test["weighted_accuracy"] == test["accuracy"]


def test_efficiency_is_the_runs_own(tmp_path, monkeypatch):
    import mmbench.training.latency as latency

    calls = []
    real = latency.inference_ms_per_sample

    def spy(trainer, split, *args, **kw):
        calls.append(len(split))
        return real(trainer, split, *args, **kw)

    monkeypatch.setattr(latency, "inference_ms_per_sample", spy)
    prep, records = run(tmp_path, fusions=["concat"], seeds=[0], max_epochs=1, overrides=SMALL)
    eff = records[0]["efficiency"]
    assert calls == [len(prep.data.splits["dev"])]  # timed on dev, never on test
    # peak memory: the increase during the run, far below the process (data + torch runtime)
    import resource

    assert eff["peak_memory_source"] in ("rss", "rss-process-peak")
    assert 0 <= eff["peak_memory_bytes"] < resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # encode time: the encoders' own (precomputed: zero but known)
    assert eff["encode_seconds"] == pytest.approx(
        sum(e["encode_seconds"] for e in records[0]["encoders"].values())
    )


def test_peak_memory_counts_what_the_block_allocates():
    from mmbench.training.memory import PeakMemory

    with PeakMemory("cpu") as quiet:
        pass
    with PeakMemory("cpu") as busy:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        del block
    if quiet.source != "rss":
        pytest.skip("no per-block peak counter on this system (/proc/self/clear_refs)")
    assert busy.bytes >= 60 * 2**20 > quiet.bytes


def test_latency_is_the_median_of_timed_passes_after_warm_up(monkeypatch):
    import time

    import torch

    from mmbench.training import latency

    durations = iter([5.0, 0.3, 0.1, 0.2, 9.0, 0.2])  # warm-up 5 s, then five timed passes
    clock = {"t": 0.0}

    class Fake:
        device = torch.device("cpu")

        def predict_logits(self, split):
            clock["t"] += next(durations)

    monkeypatch.setattr(time, "perf_counter", lambda: clock["t"])
    from mmbench.training.tensors import TensorSplit

    split = TensorSplit({"x": torch.zeros(100, 2)}, torch.zeros(100, dtype=torch.long))
    assert latency.inference_ms_per_sample(Fake(), split) == pytest.approx(0.2 * 1000 / 100)


def test_bf16_and_fp32_runs_get_their_own_fingerprints_and_tables(tmp_path):
    from mmbench.leaderboard.build import build_leaderboard
    from mmbench.leaderboard.render import render_markdown

    common = {"fusions": ["concat"], "seeds": [0, 1], "max_epochs": 1, "overrides": SMALL}
    prep32, fp32 = run(tmp_path, **common, precision="fp32")
    prep16, bf16 = run(tmp_path, **common, precision="bf16")
    assert (
        prep32.protocol["numerics"]["precision"] == "fp32"
        and prep16.protocol["numerics"]["precision"] == "bf16"
    )
    assert prep32.protocol_fingerprint != prep16.protocol_fingerprint
    assert {r["protocol_fingerprint"] for r in fp32} == {prep32.protocol_fingerprint}
    assert fp32[0]["_path"] != bf16[0]["_path"]  # no record overwrites the other
    assert fp32[0]["annotation"]["description"] == prep32.protocol.get("description")
    records = load_records(tmp_path / "runs")
    board = build_leaderboard(records, tmp_path / "runs", include_budget_cut=True)
    assert len(board.groups) == 2
    titles = sorted(g.title for g in board.groups)
    assert any("numerics.precision=" in t and "bf16" in t for t in titles), titles
    md = render_markdown(board)
    assert "**Numerics**: precision fp32, compile off" in md and "**Numerics**: precision bf16" in md
    mixed = build_leaderboard(records, tmp_path / "runs", include_budget_cut=True, mix_numerics=True)
    assert len(mixed.groups) == 1
    labels = sorted(r.label for r in mixed.groups[0].rows)
    assert len(labels) == 2 and "[bf16 cpu torch" in labels[0] and "[fp32 cpu torch" in labels[1], labels
    assert all(r.seeds == [0, 1] for r in mixed.groups[0].rows)
    assert "mixed on request (--mix-numerics)" in render_markdown(mixed)
