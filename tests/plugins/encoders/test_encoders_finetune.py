"""Fine-tuning a text model inside the fusion model (a tiny random BERT keeps this fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmbench.plugins.encoders.hf_text import HFTextEncoder
from mmbench.registry.manager import build_registry
from mmbench.runner.encoding_cache import encode_dataset
from mmbench.runner.run import RunRequest, prepare, run_benchmark
from mmbench.training.in_model import WithEncoders
from mmbench.training.tensors import split_tensors
from tests.plugins.encoders.encoder_fixtures import TinyTextPlugin, text_data, tiny_bert


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert", hidden=32, layers=2)


@pytest.fixture(scope="module")
def registry():
    reg, _ = build_registry(extra_plugins=[("tiny-text", TinyTextPlugin())])
    return reg


class Passthrough(nn.Module):
    """A 'fusion' that returns what it was given for ``text`` (and its mask, if any)."""

    def __init__(self):
        super().__init__()
        self.seen: dict = {}
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        self.seen = dict(batch)
        return batch["text"] + self.bias


def test_in_model_module_computes_the_frozen_embedding(bert_dir, registry):
    data = text_data(20)
    opts = {"model": str(bert_dir), "batch_size": 3}
    frozen = HFTextEncoder().encode(data, "text", opts)["embedding"]
    encoded, used = encode_dataset(
        data, {"encoders": {"text": {"name": "hf-text-finetune", **opts}}}, registry
    )
    assert used["text"]["mode"] == "finetune" and used["text"]["cache"] == "none"
    assert "text" not in encoded.modalities and encoded.input_spec()["text"].dim == 32
    split = split_tensors(encoded, "test", "cpu")
    ids = split.inputs["tokens:text:input_ids"]
    assert ids.dtype == torch.int64 and "text" not in split.inputs
    model = WithEncoders(Passthrough(), {"text": HFTextEncoder().build_module(opts)}, {"text": None}).eval()
    with torch.no_grad():
        out = model(split.inputs)
    assert not any(k.startswith("tokens:") for k in model.fusion.seen)  # tokens do not reach the fusion
    np.testing.assert_allclose(out.numpy(), frozen[encoded.splits["test"]], atol=1e-5, rtol=1e-4)


def test_sequence_output_gives_states_and_mask(bert_dir, registry):
    data = text_data(20)
    opts = {"name": "hf-text", "mode": "finetune", "output": "sequence", "model": str(bert_dir)}
    encoded, _ = encode_dataset(data, {"encoders": {"text": opts}}, registry)
    spec = encoded.input_spec()["text"]
    steps = encoded.in_model["text"]["tokens"]["input_ids"].shape[1]
    assert spec.sequence and spec.max_len == steps and spec.dim == 32
    split = split_tensors(encoded, "dev", "cpu")
    fusion = Passthrough()
    module_opts = {k: v for k, v in opts.items() if k != "name"}
    model = WithEncoders(fusion, {"text": HFTextEncoder().build_module(module_opts)}, {"text": None})
    states = model(split.inputs)
    assert states.shape == (len(split), steps, 32)
    mask = fusion.seen["mask:text"]
    assert mask.dtype == torch.bool
    assert torch.equal(mask, split.inputs["tokens:text:attention_mask"].bool())


def test_text_model_gets_its_own_learning_rate(bert_dir, monkeypatch):
    import mmbench.training.trainer as trainer_mod

    captured = {}
    real = trainer_mod.make_adamw

    def spy(params, lr, weight_decay):
        opt = real(params, lr, weight_decay)
        captured["lrs"] = [g["lr"] for g in opt.param_groups]
        return opt

    monkeypatch.setattr(trainer_mod, "make_adamw", spy)
    data = text_data(20)
    opts = {"model": str(bert_dir), "lr": 5e-5}
    registry, _ = build_registry()
    encoded, _ = encode_dataset(data, {"encoders": {"text": {"name": "hf-text-finetune", **opts}}}, registry)
    from mmbench.protocol import load_protocol
    from mmbench.training.in_model import attach_encoders

    fusion = registry.create("fusion", "concat")
    spec = encoded.input_spec()
    model = attach_encoders(fusion.build(spec, fusion.resolve_params()), encoded, registry)
    cfg = dict(load_protocol("tinytext")["train"], max_epochs=1, batch_size=8)
    t = trainer_mod.Trainer(model, cfg, "weighted_f1", 2, torch.device("cpu"))
    t.fit(split_tensors(encoded, "train", "cpu"), split_tensors(encoded, "dev", "cpu"), seed=0)
    assert captured["lrs"] == [cfg["lr"], 5e-5]


@pytest.mark.slow
def test_finetune_run_trains_the_text_model_end_to_end(bert_dir, registry, tmp_path):
    from safetensors.torch import load_file

    request = RunRequest(
        dataset="tinytext",
        fusions=["concat"],
        seeds=[0],
        max_epochs=2,
        encoders={"text": "hf-text"},
        overrides=[
            "encoders.text.mode=finetune",
            f"encoders.text.model={bert_dir}",
            "encoders.text.lr=0.001",
            "data.n_samples=40",
            "train.batch_size=8",
            "train.modality_dropout=0.2",
        ],
        device="cpu",
        out_dir=tmp_path / "runs",
    )
    prep, records = run_benchmark(request, registry)
    rec = records[0]
    assert rec["status"] == "ok"
    assert (
        rec["encoders"]["text"]["mode"] == "finetune" and rec["encoders"]["text"]["identity"]["lr"] == 0.001
    )
    assert rec["protocol"]["encoders"]["text"]["mode"] == "finetune"
    from pathlib import Path

    ckpt = load_file(str(Path(rec["_path"]).parent / rec["checkpoint_file"]))
    initial = load_file(str(bert_dir / "model.safetensors"))
    key = "embeddings.word_embeddings.weight"
    assert ckpt[f"encoders.text.model.{key}"].shape == initial[key].shape
    assert not torch.allclose(ckpt[f"encoders.text.model.{key}"], initial[key])  # BERT was trained
    assert any(k.startswith("fusion.") for k in ckpt)


def test_hf_text_finetune_alias_and_frozen_default(bert_dir, registry):
    alias = registry.create("encoder", "hf-text-finetune")
    plain = registry.create("encoder", "hf-text")
    assert alias.in_model({"model": str(bert_dir)}) and not plain.in_model({"model": str(bert_dir)})
    assert alias.identity({"model": str(bert_dir)}) == plain.identity(
        {"model": str(bert_dir), "mode": "finetune"}
    )
    prep = prepare(
        RunRequest(
            dataset="tinytext",
            encoders={"text": "hf-text-finetune"},
            overrides=[f"encoders.text.model={bert_dir}", "data.n_samples=20"],
            device="cpu",
        ),
        registry,
    )
    assert prep.encoders["text"]["mode"] == "finetune" and "text" in prep.data.in_model
