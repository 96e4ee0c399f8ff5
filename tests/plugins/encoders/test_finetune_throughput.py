"""Fine-tuning throughput options of ``hf-text``: frozen lower layers, their cache, checkpointing."""

from __future__ import annotations

import copy

import pytest
import torch

from mmbench.errors import UsageError
from mmbench.plugins.encoders.hf_text import HFTextEncoder
from mmbench.registry.manager import build_registry
from mmbench.runner.encoding_cache import encode_dataset
from mmbench.runner.run import RunRequest, run_benchmark
from mmbench.training.in_model import attach_encoders
from mmbench.training.tensors import split_tensors
from tests.plugins.encoders.encoder_fixtures import TinyTextPlugin, text_data, tiny_bert


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert", hidden=32, layers=3)


@pytest.fixture(scope="module")
def registry():
    reg, _ = build_registry(extra_plugins=[("tiny-text", TinyTextPlugin())])
    return reg


def encoded(bert_dir, registry, **options):
    spec = {"name": "hf-text-finetune", "model": str(bert_dir), "batch_size": 4, **options}
    return encode_dataset(text_data(24), {"encoders": {"text": spec}}, registry)


def module_of(bert_dir, **options):
    return HFTextEncoder().build_module({"model": str(bert_dir), "mode": "finetune", **options})


def test_frozen_layers_take_no_gradient_and_no_dropout(bert_dir):
    module = module_of(bert_dir, freeze_layers=2).train()
    layers = module.model.encoder.layer
    assert not any(p.requires_grad for p in module.model.embeddings.parameters())
    assert not any(p.requires_grad for layer in layers[:2] for p in layer.parameters())
    assert all(p.requires_grad for p in layers[2].parameters())
    assert not module.model.embeddings.training and not layers[1].training and layers[2].training


def test_frozen_layers_leave_the_optimizer(bert_dir, registry):
    data, _ = encoded(bert_dir, registry, freeze_layers=3)
    fusion = registry.create("fusion", "concat")
    model = attach_encoders(fusion.build(data.input_spec(), fusion.resolve_params()), data, registry)
    in_groups = {id(p) for g in model.optimizer_groups(1e-3) for p in g["params"]}
    text = model.encoders["text"].model
    frozen = [*text.embeddings.parameters(), *text.encoder.parameters()]
    assert not in_groups & {id(p) for p in frozen}  # every transformer layer frozen
    assert {id(p) for p in model.fusion.parameters()} <= in_groups


def test_cached_frozen_states_give_the_full_forward(bert_dir, registry):
    """The top layers trained from the cache see what the full model computes, in train mode too
    (frozen layers draw no dropout, so the top layers' dropout masks are the same)."""
    data, used = encoded(bert_dir, registry, freeze_layers=2)
    assert used["text"]["identity"]["freeze_layers"] == 2
    tokens = data.in_model["text"]["tokens"]
    assert tokens["row"].shape == (data.n, 1)
    cached = module_of(bert_dir, freeze_layers=2)
    plain = copy.deepcopy(cached)
    cached.prepare(tokens)
    assert cached.cached and not plain.cached
    assert cached.cached_states.shape[0] == int(tokens["attention_mask"].sum())
    batch = {k.split(":")[-1]: v for k, v in split_tensors(data, "train", "cpu").inputs.items()}
    for mode in (False, True):
        cached.train(mode), plain.train(mode)
        torch.manual_seed(0)
        a = cached(batch)
        torch.manual_seed(0)
        b = plain(batch)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    a.sum().backward(), b.sum().backward()
    top_a = cached.model.encoder.layer[2].output.dense.weight.grad
    top_b = plain.model.encoder.layer[2].output.dense.weight.grad
    torch.testing.assert_close(top_a, top_b, atol=1e-5, rtol=1e-4)
    assert "cached_states" not in cached.state_dict()  # recomputed from the weights, never saved


def test_gradient_checkpointing_gives_the_same_gradients(bert_dir, registry):
    data, _ = encoded(bert_dir, registry)
    batch = {k.split(":")[-1]: v for k, v in split_tensors(data, "train", "cpu").inputs.items()}
    grads = []
    for checkpointing in (False, True):
        module = module_of(bert_dir, gradient_checkpointing=checkpointing).train()
        assert all(layer.gradient_checkpointing == checkpointing for layer in module.model.encoder.layer)
        torch.manual_seed(0)
        module(batch).pow(2).sum().backward()
        grads.append(module.model.encoder.layer[0].attention.self.query.weight.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"freeze_layers": -1}, "freeze_layers must be an integer"),
        ({"freeze_layers": 4}, "exceeds the model's 3 layers"),
        ({"cache_frozen": "yes"}, "cache_frozen must be true or false"),
        ({"gradient_checkpointing": 1}, "gradient_checkpointing must be true or false"),
    ],
)
def test_bad_throughput_options_are_usage_errors(bert_dir, options, message):
    with pytest.raises(UsageError, match=message):
        HFTextEncoder().identity({"model": str(bert_dir), "mode": "finetune", **options})


def test_identities_without_freezing_do_not_move(bert_dir):
    enc = HFTextEncoder()
    base = enc.identity({"model": str(bert_dir), "mode": "finetune"})
    assert "freeze_layers" not in base
    same = enc.identity({"model": str(bert_dir), "mode": "finetune", "cache_frozen": False})
    assert same == enc.identity({"model": str(bert_dir), "mode": "finetune", "gradient_checkpointing": True})
    assert same == base


@pytest.mark.parametrize("cache", [True, False])
def test_bucketed_run_with_frozen_layers_trains_only_the_top(bert_dir, registry, tmp_path, cache):
    request = RunRequest(
        dataset="tinytext",
        fusions=["concat"],
        seeds=[0],
        max_epochs=2,
        encoders={"text": "hf-text-finetune"},
        overrides=[
            f"encoders.text.model={bert_dir}",
            "encoders.text.freeze_layers=2",
            f"encoders.text.cache_frozen={str(cache).lower()}",
            "encoders.text.lr=0.01",
            "data.n_samples=40",
            "train.batch_size=4",
            "train.length_bucketing=2",
        ],
        device="cpu",
        out_dir=tmp_path / "runs",
    )
    prep, records = run_benchmark(request, registry)
    rec = records[0]
    assert rec["status"] == "ok", rec.get("failure")
    assert rec["protocol"]["train"]["length_bucketing"] == 2
    assert rec["encoders"]["text"]["identity"]["freeze_layers"] == 2
    from pathlib import Path

    from safetensors.torch import load_file

    ckpt = load_file(str(Path(rec["_path"]).parent / rec["checkpoint_file"]))
    initial = load_file(str(bert_dir / "model.safetensors"))
    frozen, top = "encoder.layer.1.output.dense.weight", "encoder.layer.2.output.dense.weight"
    assert torch.equal(ckpt[f"encoders.text.model.{frozen}"], initial[frozen])
    assert not torch.allclose(ckpt[f"encoders.text.model.{top}"], initial[top])


def test_dynamic_padding_reads_one_value_per_batch(bert_dir, registry):
    """Two host reads per forward, cached or not (each a sync per step on CUDA): the batch's longest
    text (dynamic padding) and transformers' check whether the batch has padding at all
    (``padding_mask.all()`` in ``masking_utils``)."""
    from mmbench.tools.bench_device import count_host_syncs

    data, _ = encoded(bert_dir, registry, freeze_layers=1)
    batch = {k.split(":")[-1]: v for k, v in split_tensors(data, "train", "cpu").inputs.items()}
    cached = module_of(bert_dir, freeze_layers=1)
    cached.prepare(data.in_model["text"]["tokens"])
    for module in (module_of(bert_dir), cached):
        with count_host_syncs(torch.device("cpu")) as syncs:
            module(batch)
        assert syncs["n"] == 2
