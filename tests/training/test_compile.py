"""``--compile``: torch.compile wraps the forward only; checkpoints keep the plain module's keys."""

import torch
from safetensors.torch import load_file

from mmbench.registry.manager import build_registry
from mmbench.runner.run import RunRequest, run_benchmark
from mmbench.testing import example_batch, example_spec
from mmbench.training.trainer import Trainer


def test_compiled_forward_equals_eager_in_eval():
    registry, _ = build_registry()
    spec = example_spec()
    plugin = registry.create("fusion", "cross_attention")
    torch.manual_seed(0)
    model = plugin.build(spec, plugin.resolve_params({}))
    cfg = {"batch_size": 8, "max_epochs": 1}
    trainer = Trainer(model, cfg, "weighted_f1", spec.num_classes, torch.device("cpu"), compile=True)
    assert trainer.forward is not trainer.model
    batch = example_batch(spec, 8)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(trainer.forward(batch), model(batch), rtol=1e-4, atol=1e-5)


def test_compiled_run_records_and_plain_checkpoint(tmp_path):
    req = RunRequest(
        fusions=["concat"],
        seeds=[0],
        overrides=["data.n_samples=400", "data.preset=redundant"],
        max_epochs=3,
        out_dir=tmp_path,
        device="cpu",
        compile=True,
    )
    record = run_benchmark(req, build_registry()[0])[1][0]
    assert record["status"] == "ok"
    assert record["execution"] == {
        "precision": "auto",
        "effective_precision": "fp32",
        "compile": True,
        "seed_batching": "sequential",
        "seed_batching_fallback": "one seed to train",
    }
    assert record["protocol"]["numerics"]["compile"] is True
    # Inductor draws dropout masks from its own generator, so a compiled run is not bitwise the
    # eager run; it must still learn (redundant preset: every modality carries the label).
    assert record["metrics"]["test"]["accuracy"] > 0.5
    keys = set(load_file(tmp_path / record["checkpoint_file"]))
    assert keys and not any(k.startswith("_orig_mod") for k in keys)
