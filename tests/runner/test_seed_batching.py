"""The runner's seed batching: vectorised cells write the records the sequential path writes."""

from __future__ import annotations

import json

import pytest

from mmbench.errors import UsageError
from mmbench.registry.manager import build_registry
from mmbench.runner.run import RunRequest, run_benchmark
from mmbench.training.vectorised import DIALOGUE_REASON

REGISTRY, _ = build_registry()
#: A deterministic cell (no dropout, no modality dropout): vectorised and sequential runs select the
#: same epochs and predict the same test labels.
DETERMINISTIC = ["data.n_samples=400", "fusion.dropout=0", "train.max_epochs=3"]
#: ``auto`` (the default) trains one seed at a time on CPU; these tests ask for vectorised seeds.
VECTORISE = "train.seed_batching=true"


def run(out, seeds=(0, 1, 2), overrides=(VECTORISE,), fusions=("concat",), **kw):
    request = RunRequest(
        fusions=list(fusions), seeds=list(seeds), device="cpu", out_dir=out,
        overrides=[*DETERMINISTIC, *overrides], **kw,
    )  # fmt: skip
    return run_benchmark(request, REGISTRY)[1]


def board_without_timing(out) -> list[dict]:
    from mmbench.api import leaderboard
    from mmbench.leaderboard.render import render_json

    groups = json.loads(render_json(leaderboard(out)))["groups"]
    for group in groups:
        for row in group["rows"]:
            row.pop("efficiency")
    return groups


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed-batching")
    vectorised = run(out / "vectorised")
    sequential = run(out / "sequential", overrides=["train.seed_batching=false"])
    return out, vectorised, sequential


def test_vectorised_on_request_and_records_say_so(both):
    _, vectorised, sequential = both
    for rec in vectorised:
        assert rec["execution"]["seed_batching"] == "vectorised"
        assert rec["execution"]["seed_batch"] == [0, 1, 2]
        assert rec["efficiency"]["cost_basis"] == "vectorised cell"
        assert "seed_batching" not in rec["protocol"]["train"]
    for rec in sequential:
        assert rec["execution"]["seed_batching"] == "sequential"
        assert rec["execution"]["seed_batching_fallback"] == "train.seed_batching=false"
        assert rec["efficiency"]["cost_basis"] == "run"


def test_records_equal_the_sequential_records(both):
    _, vectorised, sequential = both
    for vec, seq in zip(vectorised, sequential, strict=True):
        assert vec["seed"] == seq["seed"] and vec["status"] == seq["status"] == "ok"
        # an execution setting: same protocol, fingerprint and record name
        assert vec["protocol_fingerprint"] == seq["protocol_fingerprint"]
        assert vec["protocol"] == seq["protocol"]
        assert vec["best_epoch"] == seq["best_epoch"]
        assert vec["metrics"] == seq["metrics"]
        for a, b in zip(vec["history"], seq["history"], strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        names = [p.rsplit("/", 1)[1] for p in (vec["_path"], seq["_path"])]
        assert names[0] == names[1]


def test_leaderboard_equals_the_sequential_one(both):
    out, _, _ = both
    assert board_without_timing(out / "vectorised") == board_without_timing(out / "sequential")


def test_auto_trains_one_seed_at_a_time_on_cpu_and_says_why(tmp_path):
    from mmbench.runner.seed_batching import CPU_REASON

    records = run(tmp_path, seeds=[0, 1], overrides=[])
    assert {r["execution"]["seed_batching_fallback"] for r in records} == {CPU_REASON}


def test_one_seed_runs_sequentially_with_the_reason(tmp_path):
    (rec,) = run(tmp_path, seeds=[4])
    assert rec["execution"]["seed_batching"] == "sequential"
    assert rec["execution"]["seed_batching_fallback"] == "one seed to train"


def test_unvectorisable_fusion_falls_back_per_cell(tmp_path, monkeypatch):
    """A cell whose model vmap cannot run trains its seeds one at a time; the reason is recorded."""
    from mmbench.training.vectorised import SeedBatch

    monkeypatch.setattr(SeedBatch, "probe", lambda self, train: "torch.vmap cannot run this model (test)")
    records = run(tmp_path, seeds=[0, 1])
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert {r["execution"]["seed_batching_fallback"] for r in records} == {
        "torch.vmap cannot run this model (test)"
    }


def test_seed_batching_must_be_a_boolean(tmp_path):
    with pytest.raises(UsageError, match="train.seed_batching must be true, false or auto"):
        run(tmp_path, overrides=["train.seed_batching=sometimes"])


def test_sweep_trains_a_cells_unfinished_seeds_together_under_their_locks(tmp_path):
    """A seed held by another live worker is left to it; the others train together; a re-run skips."""
    from mmbench.records import load_records
    from mmbench.runner.run import prepare, run_record_path
    from mmbench.runner.sweep import CellLock, SweepRequest, lock_path, run_request_for, run_sweep

    request = SweepRequest(
        fusions=["concat"],
        seeds=[0, 1, 2],
        overrides=[*DETERMINISTIC, VECTORISE],
        device="cpu",
        out_dir=tmp_path,
    )
    prep = prepare(run_request_for(request, "synthetic"), REGISTRY)
    held = CellLock(lock_path(run_record_path(prep, "concat", 1)))
    assert held.acquire()  # this live process holds seed 1's cell
    result = run_sweep(request, REGISTRY)
    held.release()
    status = {c.cell.seed: c.status for c in result.cells}
    assert status == {0: "trained", 1: "busy", 2: "trained"}
    records = {r["seed"]: r for r in load_records(tmp_path / "synthetic")}
    assert sorted(records) == [0, 2]
    assert all(r["execution"]["seed_batch"] == [0, 2] for r in records.values())
    again = run_sweep(request, REGISTRY)
    assert {c.cell.seed: c.status for c in again.cells} == {0: "existing", 1: "trained", 2: "existing"}


def test_reproduce_a_vectorised_record_retrains_its_cell(tmp_path):
    """With dropout the members' masks come from one generator: the re-run trains the same cell."""
    from pathlib import Path

    from mmbench.runner.reproduce import reproduce

    records = run(tmp_path, seeds=[0, 1], overrides=[VECTORISE, "fusion.dropout=0.3"])
    assert records[1]["execution"]["seed_batching"] == "vectorised"
    result = reproduce(Path(records[1]["_path"]), REGISTRY)
    assert result["seed"] == 1 and result["match"] is True


def test_out_of_memory_in_the_stacked_model_falls_back_to_one_seed_at_a_time(tmp_path, monkeypatch):
    import torch

    from mmbench.training.vectorised import SeedBatch

    def oom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("no room for 2 members")

    monkeypatch.setattr(SeedBatch, "fit", oom)
    records = run(tmp_path, seeds=[0, 1])
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert {r["execution"]["seed_batching_fallback"] for r in records} == {
        "the stacked model ran out of memory"
    }


def test_dialogue_context_models_train_one_seed_at_a_time(tmp_path):
    records = run(
        tmp_path,
        seeds=[0, 1],
        overrides=[VECTORISE, "data.preset=context", "data.n_samples=300"],
        contexts=["bigru"],
    )
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert {r["execution"]["seed_batching_fallback"] for r in records} == {DIALOGUE_REASON}
