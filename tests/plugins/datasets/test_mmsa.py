"""The ``mosi``/``mosei``/``sims`` datasets on small files in the MMSA feature-pickle layout."""

from __future__ import annotations

import json
import os
import pickle
import shlex
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import DataError, UsageError
from mmbench.plugins.datasets.emotions import DatasetWarning
from mmbench.plugins.datasets.mmsa import MoseiDataset, MosiDataset, SimsDataset
from mmbench.testing.mmsa import mmsa_splits, write_mmsa_pickle

N = (40, 10, 12)


def _load(plugin, path: Path, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = plugin.load(path, options)
    return data, [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]


def _write(tmp_path: Path, splits: dict, name: str = "unaligned_50.pkl") -> Path:
    path = tmp_path / name
    with path.open("wb") as fh:
        pickle.dump(splits, fh, protocol=4)
    return path


# ------------------------------------------------------------------------------------- layout
def test_unaligned_mosi_file_gives_sequences_with_the_files_lengths_and_official_split(tmp_path):
    path = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=N, aligned=False, neg_inf=4)
    raw = mmsa_splits(N, aligned=False, neg_inf=4)
    data, notes = _load(MosiDataset(), path)
    data.validate()
    assert data.split_counts() == {"train": 40, "dev": 10, "test": 12}
    assert data.task == "regression" and data.target_range == (-3.0, 3.0) and data.class_names == []
    assert data.labels.dtype == np.float32
    np.testing.assert_allclose(data.labels[data.splits["dev"]], raw["valid"]["regression_labels"])
    spec = data.input_spec()
    assert [(m.name, m.dim, m.max_len, m.sequence) for m in spec.modalities] == [
        ("text", 16, 12, True),
        ("audio", 5, 30, True),
        ("visual", 20, 20, True),
    ]
    np.testing.assert_array_equal(data.lengths["audio"][data.splits["test"]], raw["test"]["audio_lengths"])
    np.testing.assert_array_equal(data.lengths["visual"][:40], raw["train"]["vision_lengths"])
    np.testing.assert_array_equal(data.lengths["text"][:40], raw["train"]["text_bert"][:, 1].sum(1))
    # MMSA's loader sets audio -inf to 0: counted, warned, and nothing non-finite is left
    assert data.meta["audio_neg_inf_replaced"] == 4
    assert np.isfinite(data.modalities["audio"]["audio"]).all()
    assert any("4 audio values were -inf" in n for n in notes)
    assert data.ids[40] == raw["valid"]["id"][0] and data.groups["video"][40] == "vid0_valid"


def test_aligned_file_takes_every_modalitys_lengths_from_the_text_mask(tmp_path):
    path = write_mmsa_pickle(tmp_path / "aligned_50.pkl", n=N, aligned=True)
    raw = mmsa_splits(N, aligned=True)
    assert "audio_lengths" not in raw["train"]
    data, _ = _load(MosiDataset(), path)
    data.validate()
    mask_counts = np.concatenate([raw[s]["text_bert"][:, 1].sum(1) for s in ("train", "valid", "test")])
    for modality in ("text", "audio", "visual"):
        np.testing.assert_array_equal(data.lengths[modality], mask_counts)
    assert data.meta["format"] == "MMSA aligned feature pickle"


def test_aligned_file_without_text_bert_counts_every_step_as_real(tmp_path):
    splits = mmsa_splits(N, aligned=True)
    for part in splits.values():
        del part["text_bert"]
    data, _ = _load(MosiDataset(), _write(tmp_path, splits, "aligned_50.pkl"))
    assert (data.lengths["audio"] == 12).all() and (data.lengths["text"] == 12).all()


def test_sims_range_and_per_modality_labels(tmp_path):
    path = write_mmsa_pickle(tmp_path / "unaligned_39.pkl", n=N, kind="sims")
    data, _ = _load(SimsDataset(), path)
    data.validate()
    assert data.target_range == (-1.0, 1.0)
    assert np.abs(data.labels).max() <= 1.0 and np.abs(data.labels).max() > 0.2
    assert sorted(data.meta["modality_labels"]) == ["A", "T", "V"]
    assert data.meta["modality_labels"]["A"].shape == (62,)


def test_classification_labels_are_negative_neutral_positive(tmp_path):
    path = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=N)
    data, _ = _load(MosiDataset(), path, labels="classification")
    data.validate()
    assert data.class_names == ["negative", "neutral", "positive"]
    regression, _ = _load(MosiDataset(), path)
    np.testing.assert_array_equal(data.labels, np.sign(regression.labels).astype(int) + 1)


def test_text_raw_makes_the_transcript_the_text_modality(tmp_path):
    path = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=N)
    data, _ = _load(MosiDataset(), path, text="raw")
    assert "text" not in data.modalities and len(data.raw["text"]) == 62
    assert data.raw["text"][0] == mmsa_splits(N)["train"]["raw_text"][0]
    assert sorted(data.lengths) == ["audio", "visual"]


def test_text_bert_tokens_are_kept_as_ids_and_mask(tmp_path):
    path = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=N)
    data, _ = _load(MosiDataset(), path, text="bert_tokens", labels="classification")
    assert "text" not in data.modalities
    tokens = data.in_model["text"]["tokens"]
    raw = mmsa_splits(N)["test"]["text_bert"]
    np.testing.assert_array_equal(tokens["input_ids"][-12:], raw[:, 0].astype(np.int64))
    np.testing.assert_array_equal(tokens["attention_mask"][-12:], raw[:, 1].astype(np.int64))
    assert tokens["input_ids"].dtype == np.int64


# ------------------------------------------------------------------------------ split sizes
def test_split_sizes_other_than_the_published_ones_are_warned_about(tmp_path):
    path = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=N)
    for plugin, published in (
        (MosiDataset(), "1,284 / 229 / 686"),
        (MoseiDataset(), "16,326 / 1,871 / 4,659"),
    ):
        data, notes = _load(plugin, path)
        assert any(published in n and "40 / 10 / 12" in n for n in notes), notes
        assert data.meta["split_sizes"] == {"train": 40, "dev": 10, "test": 12}

    class SmallMosi(MosiDataset):
        expected_sizes = {"train": 40, "dev": 10, "test": 12}

    _, notes = _load(SmallMosi(), path)
    assert not any("split sizes" in n for n in notes)


# ---------------------------------------------------------------------------------- errors
def _broken(change) -> dict:
    splits = mmsa_splits(N)
    change(splits)
    return splits


def _set(split: str, key: str, value) -> object:
    def change(splits: dict) -> None:
        splits[split][key] = value(splits[split][key]) if callable(value) else value

    return change


def _nan_at(split: str, key: str, row: int) -> object:
    def change(splits: dict) -> None:
        splits[split][key][row, 2, 1] = np.nan

    return change


BAD = {
    "missing key": (lambda s: s["valid"].pop("vision"), ["'valid'", "'vision'"]),
    "wrong rank": (_set("test", "audio", lambda a: a[:, 0, :]), ["'test'", "'audio'", "[n,t,d]"]),
    "row mismatch": (_set("train", "audio", lambda a: a[:-1]), ["'train'", "'audio'", "39rows"]),
    "nan": (_nan_at("valid", "vision", 3), ["'valid'", "'vision'", "row3", "nan"]),
    "label range": (_set("test", "regression_labels", lambda a: a + 5.5), ["'test'", "outside[-3,3]"]),
    "length beyond axis": (_set("train", "audio_lengths", lambda a: a + 100), ["'train'", "'audio_lengths'"]),
    "ragged text": (
        _set("train", "text", lambda a: [row[: 1 + i % 3] for i, row in enumerate(a)]),
        ["'text'"],
    ),
    "no splits": (lambda s: s.pop("valid"), ["train,valid,test"]),
    "empty split": (_set("valid", "regression_labels", np.zeros(0, np.float32)), ["'valid'", "norows"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_file_is_a_data_error_naming_file_split_and_key(tmp_path, case):
    change, words = BAD[case]
    path = _write(tmp_path, _broken(change))
    with pytest.raises(DataError) as info:
        MosiDataset().load(path, {})
    message = "".join(str(info.value).split()).lower()
    assert str(path).lower().replace(" ", "") in message
    for word in words:
        assert word.lower() in message, (case, message)


def _cli_run(tmp_path: Path, data: Path) -> tuple[int, str]:
    args = ["run", "--dataset", "mosi", "--data", str(data), "--fusion", "late", "--seeds", "0"]
    args += ["--max-epochs", "1", "--device", "cpu", "--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, args)
    output = (result.stdout or "") + (getattr(result, "stderr", "") or "")
    return result.exit_code, "".join(output.split()).lower()


@pytest.mark.parametrize("case", ["missing key", "nan", "row mismatch", "empty file", "missing file"])
def test_bad_file_through_mmbench_run_exits_2_with_one_message(tmp_path, case):
    if case == "empty file":
        path, words = tmp_path / "unaligned_50.pkl", ["notareadablepickle"]
        path.write_bytes(b"")
    elif case == "missing file":
        path, words = tmp_path / "absent" / "unaligned_50.pkl", ["doesnotexist"]
    else:
        change, words = BAD[case]
        path = _write(tmp_path, _broken(change))
    code, output = _cli_run(tmp_path, path)
    assert code == 2, output
    assert str(path).lower() in output and "traceback" not in output
    for word in words:
        assert word.lower() in output, (case, output)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.json"))


def test_empty_split_with_a_huge_time_axis_allocates_nothing(tmp_path):
    splits = mmsa_splits(N)
    splits["valid"] = {k: v[:0] for k, v in splits["valid"].items() if isinstance(v, np.ndarray)}
    splits["valid"]["audio"] = np.zeros((0, 10**12, 5), np.float32)  # 0 bytes in the file
    with pytest.raises(DataError, match="no rows"):
        MosiDataset().load(_write(tmp_path, splits), {})


def test_unknown_option_and_mode_are_usage_errors(tmp_path):
    path = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=N)
    with pytest.raises(UsageError, match="data.text must be one of"):
        MosiDataset().load(path, {"text": "glove"})
    with pytest.raises(UsageError, match="unknown option"):
        MosiDataset().load(path, {"preset": "x"})


def test_folder_with_aligned_and_unaligned_files_asks_for_one(tmp_path):
    write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=N)
    write_mmsa_pickle(tmp_path / "aligned_50.pkl", n=N, aligned=True)
    with pytest.raises(UsageError, match="several mosi data files"):
        MosiDataset().load(tmp_path, {})
    (tmp_path / "aligned_50.pkl").unlink()
    data, _ = _load(MosiDataset(), tmp_path)
    assert data.meta["format"] == "MMSA unaligned feature pickle"


# ------------------------------------------------------------------------------ code payload
class _RunsShell:
    """Pickles to ``os.system(command)``: unpickling it runs the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _hostile(tmp_path: Path, marker: Path) -> Path:
    splits = mmsa_splits(N)
    splits["train"]["annotations"] = _RunsShell(f"touch {shlex.quote(str(marker))}")
    return _write(tmp_path, splits)


def test_a_pickle_with_a_code_payload_is_refused_and_the_payload_never_runs(tmp_path):
    probe = tmp_path / "probe"
    with _hostile(tmp_path, probe).open("rb") as fh:
        pickle.load(fh)  # the payload is live: a plain pickle.load runs it
    assert probe.exists()

    marker = tmp_path / "marker"
    path = _hostile(tmp_path, marker)
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--dataset",
            "mosi",
            "--data",
            str(path),
            "--fusion",
            "late",
            "--seeds",
            "0",
            "--max-epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "runs"),
        ],
    )
    output = "".join(((result.stdout or "") + (getattr(result, "stderr", "") or "")).split()).lower()
    assert result.exit_code == 2, output
    assert "refusedtoload" in output and "posix.system" in output and "traceback" not in output
    assert not marker.exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.json"))


# --------------------------------------------------------------------------- text_bert in-model
def test_bert_tokens_need_an_encoder_trained_inside_the_model(tmp_path):
    from mmbench.registry.manager import build_registry
    from mmbench.runner.encoding_cache import encode_dataset

    registry, _ = build_registry()
    path = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=N)
    data, _ = _load(MosiDataset(), path, text="bert_tokens", labels="classification")
    with pytest.raises(UsageError, match="hf-text-finetune"):
        encode_dataset(data, {"encoders": {}}, registry)


def test_bert_tokens_feed_the_in_model_text_encoder(tmp_path):
    import torch

    from mmbench.registry.manager import build_registry
    from mmbench.runner.encoding_cache import encode_dataset
    from mmbench.training.in_model import attach_encoders
    from mmbench.training.tensors import split_tensors
    from tests.plugins.encoders.encoder_fixtures import tiny_bert

    bert = tiny_bert(tmp_path / "tiny-bert", hidden=32, layers=1)
    path = write_mmsa_pickle(tmp_path / "unaligned_50.pkl", n=N, vocab_size=100)
    data, _ = _load(MosiDataset(), path, text="bert_tokens", labels="classification")
    registry, _ = build_registry()
    protocol = {"encoders": {"text": {"name": "hf-text-finetune", "model": str(bert)}}}
    encoded, used = encode_dataset(data, protocol, registry)
    assert used["text"]["mode"] == "finetune"
    given = mmsa_splits(N, vocab_size=100)["train"]["text_bert"]
    np.testing.assert_array_equal(encoded.in_model["text"]["tokens"]["input_ids"][:40], given[:, 0])
    assert encoded.input_spec()["text"].dim == 32

    class Head(torch.nn.Module):
        def forward(self, batch):
            return batch["text"]

    model = attach_encoders(Head(), encoded, registry).eval()
    with torch.no_grad():
        out = model(split_tensors(encoded, "test", "cpu").inputs)
    assert out.shape == (12, 32) and torch.isfinite(out).all()


# --------------------------------------------------------------------------------- end to end
FUSIONS = ("concat", "late", "tensor", "low_rank", "mult", "gated", "cross_attention", "unimodal")


@pytest.mark.parametrize("aligned", [False, True], ids=["unaligned", "aligned"])
def test_every_fusion_runs_on_an_mmsa_file_and_records_regression_metrics(tmp_path, aligned):
    path = write_mmsa_pickle(
        tmp_path / ("aligned_50.pkl" if aligned else "unaligned_50.pkl"), n=N, aligned=aligned
    )
    out = tmp_path / "runs"
    args = ["run", "--dataset", "mosi", "--data", str(path), "--fusion", ",".join(FUSIONS), "--seeds", "0"]
    result = CliRunner().invoke(app, [*args, "--max-epochs", "1", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "MAE" in result.output
    records = [p for p in out.glob("mosi__*.json") if not p.name.endswith(".predictions.json")]
    assert sorted(p.name.split("__")[1] for p in records) == sorted(FUSIONS)
    for p in records:
        record = json.loads(p.read_text())
        assert record["task"] == {"kind": "regression", "target_range": [-3.0, 3.0]}
        assert record["protocol"]["metric"] == "mae" and record["protocol"]["train"]["loss"] == "l1"
        test = record["metrics"]["test"]
        for key in ("mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7"):
            assert key in test, (p.name, key)
        assert test["mae"] >= 0 and 0 <= test["acc2_non0"] <= 1
        assert record["n_train"] == 40 and record["n_dev"] == 10 and record["n_test"] == 12


# The dataset conformance kit runs on sample files of mosi (aligned, unaligned), mosei and sims in
# tests/plugins/fusions/test_conformance_builtin.py (TestBuiltinFileDatasets).


def test_aligned_file_with_unaligned_frame_counts_uses_the_text_mask(tmp_path):
    splits = mmsa_splits(N, aligned=True)
    for part in splits.values():
        part["audio_lengths"] = np.full(len(part["regression_labels"]), 400)  # frames before alignment
    data, notes = _load(MosiDataset(), _write(tmp_path, splits, "aligned_50.pkl"))
    mask_counts = np.concatenate([splits[s]["text_bert"][:, 1].sum(1) for s in ("train", "valid", "test")])
    np.testing.assert_array_equal(data.lengths["audio"], mask_counts)
    assert any("audio_lengths exceed the 12 steps aligned to the text" in n for n in notes)


def test_sequences_stay_float32_and_fortran_order_is_handled(tmp_path):
    splits = mmsa_splits(N, neg_inf=3)
    splits["train"]["audio"] = np.asfortranarray(splits["train"]["audio"].astype(np.float64))
    data, _ = _load(MosiDataset(), _write(tmp_path, splits))
    assert data.modalities["audio"]["audio"].dtype == np.float32
    assert data.meta["audio_neg_inf_replaced"] == 3 and np.isfinite(data.modalities["audio"]["audio"]).all()
