"""`reproduce` re-runs on CPU with the record's thread count, or says it could not (issue 19, kind 10)."""

import json

import torch

from mmbench.registry.manager import build_registry
from mmbench.runner.reproduce import reproduce
from mmbench.runner.run import RunRequest, run_benchmark


def test_reproduce_uses_the_recorded_thread_count_and_says_so(tmp_path):
    registry, _ = build_registry()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        request = RunRequest(
            fusions=["concat"], seeds=[0], overrides=["data.n_samples=300"], out_dir=tmp_path, device="cpu"
        )
        request.max_epochs = 1
        _, (record,) = run_benchmark(request, registry)
        path = tmp_path / record["_path"].rsplit("/", 1)[-1]
        assert record["environment"]["torch_threads"] == 1
        same = reproduce(path, registry)
        assert same["match"] and same["threads"]["original"] == same["threads"]["reproduced"] == 1
        assert same["threads"]["note"] == "re-run with the recorded 1 CPU threads"

        doc = json.loads(path.read_text())
        doc["environment"]["torch_threads"] = 2
        path.write_text(json.dumps(doc))
        two = reproduce(path, registry)
        assert two["threads"] == {
            "original": 2,
            "reproduced": 2,
            "note": "re-run with the recorded 2 CPU threads",
        }
        assert torch.get_num_threads() == 1, "the caller's thread count is restored"

        del doc["environment"]["torch_threads"]
        path.write_text(json.dumps(doc))
        unknown = reproduce(path, registry)
        assert (
            unknown["threads"]["original"] is None
            and "does not say how many CPU threads" in unknown["threads"]["note"]
        )
    finally:
        torch.set_num_threads(before)
