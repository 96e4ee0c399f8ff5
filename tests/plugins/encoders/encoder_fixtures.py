"""Tiny text datasets and a tiny BERT for the encoder tests (no downloads, fast on CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmbench.contracts import DatasetPlugin
from mmbench.data import MultimodalData
from mmbench.registry import Registry, hookimpl

POSITIVE = ["great", "happy", "wonderful", "lovely", "glad", "fantastic"]
NEGATIVE = ["awful", "sad", "terrible", "gloomy", "angry", "miserable"]
FILLER = ["the", "day", "was", "really", "quite", "and", "it", "felt", "so", "today", "we", "all"]


def sentences(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` short sentences of varied length whose label (0/1) shows in a sentiment word."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    texts = []
    for i, label in enumerate(labels):
        words = list(rng.choice(FILLER, size=int(rng.integers(2, 14))))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(POSITIVE if label else NEGATIVE)))
        texts.append(" ".join(words) + f" {i}")  # the index keeps every text unique
    return texts, labels.astype(np.int64)


def text_data(n: int = 24, seed: int = 0, with_audio: bool = True) -> MultimodalData:
    """A labelled dataset with raw ``text`` (and a numeric ``audio``), split 60/20/20 in order."""
    texts, labels = sentences(n, seed)
    rng = np.random.default_rng(seed + 1)
    modalities = {}
    if with_audio:
        audio = rng.normal(size=(n, 6)).astype(np.float32)
        audio[:, 0] += labels  # a weak audio cue
        modalities["audio"] = {"A": audio}
    cut1, cut2 = int(n * 0.6), int(n * 0.8)
    idx = np.arange(n)
    return MultimodalData(
        name="tinytext",
        modalities=modalities,
        labels=labels,
        class_names=["negative", "positive"],
        splits={"train": idx[:cut1], "dev": idx[cut1:cut2], "test": idx[cut2:]},
        raw={"text": texts},
        meta={"source": "tinytext"},
    ).validate()


class TinyTextDataset(DatasetPlugin):
    """``tinytext``: :func:`text_data` with ``n_samples`` rows (a dataset plugin for runner tests)."""

    def load(self, path: Path | None, options: dict) -> MultimodalData:
        return text_data(int(options.get("n_samples", 40)))


class TinyTextPlugin:
    """In-process plugin registering ``tinytext``."""

    @hookimpl
    def mmbench_register_datasets(self, registry: Registry) -> None:
        registry.add_dataset(
            "tinytext", "tests.plugins.encoders.encoder_fixtures:TinyTextDataset", "tiny raw-text data"
        )


def tiny_bert(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A randomly initialised BertModel + WordPiece tokenizer saved to ``folder`` (fast to load)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + POSITIVE + NEGATIVE + FILLER
    vocab += [str(i) for i in range(100)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    try:  # transformers >= 5 takes the vocabulary itself
        tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    except TypeError:
        tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    assert tokenizer("great")["input_ids"][1] == vocab.index("great")
    tokenizer.save_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(folder))
    return folder
