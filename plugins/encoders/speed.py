"""Encoding throughput of ``hf-text`` against the model's own plain batched loop.

Both paths get the same loaded model and tokenizer and the same texts, and both include
tokenisation; model loading is excluded from both (it is the same one-off cost):

* **mmbench**: what ``HFTextEncoder.encode`` runs: tokenise every text once, sort by length,
  pad each batch only to its own longest text, ``torch.inference_mode``, masked mean pooling.
* **plain**: the loop a researcher writes: for each slice of ``batch_size`` texts in the given
  order, ``tokenizer(slice, padding=True, truncation=True, return_tensors="pt")``, forward
  under ``torch.inference_mode``, the same pooling.

The two are run alternately ``repeats`` times after one warm-up each; the median is reported,
together with the largest absolute difference between their embeddings (a correctness check).

API: :func:`text_encoder_speed` returns a JSON-able dict; ``python -m mmbench.plugins.encoders.speed
[--n 512] [--batch-size 64] [--max-length 128] [--model NAME_OR_FOLDER] [--device auto]`` prints it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

WORDS = [
    "i",
    "you",
    "we",
    "they",
    "it",
    "that",
    "this",
    "what",
    "why",
    "how",
    "no",
    "yes",
    "okay",
    "well",
    "really",
    "just",
    "know",
    "think",
    "want",
    "go",
    "going",
    "come",
    "back",
    "home",
    "now",
    "then",
    "never",
    "always",
    "something",
    "nothing",
    "anything",
    "everything",
    "tell",
    "told",
    "said",
    "say",
    "feel",
    "felt",
    "love",
    "hate",
    "happy",
    "sad",
    "angry",
    "great",
    "fine",
    "good",
    "bad",
    "sorry",
    "please",
    "thank",
    "thanks",
    "right",
    "wrong",
    "sure",
    "maybe",
    "time",
    "day",
    "night",
    "tomorrow",
    "yesterday",
    "work",
    "money",
    "car",
    "house",
    "job",
    "friend",
    "mother",
    "father",
    "kids",
    "wedding",
    "party",
    "phone",
    "call",
    "leave",
    "stay",
    "wait",
    "believe",
    "understand",
    "remember",
    "forget",
    "matter",
    "care",
    "listen",
    "look",
    "talk",
    "mean",
    "trying",
]


def sample_utterances(n: int, seed: int = 0) -> list[str]:
    """``n`` synthetic conversational utterances, 1-60 words (median about 9, as in IEMOCAP)."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(mean=2.2, sigma=0.7, size=n)), 1, 60).astype(int)
    out = []
    for k in lengths:
        words = rng.choice(WORDS, size=k)
        text = " ".join(words)
        out.append(text[0].upper() + text[1:] + rng.choice([".", "?", "!", "..."]))
    return out


def _plain_loop(model: Any, tokenizer: Any, texts: list[str], batch_size: int, max_length: int, device: str):
    import torch

    from mmbench.plugins.encoders.finetune import pool

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            hidden = model(**enc).last_hidden_state
            out.append(pool(hidden, enc["attention_mask"], "mean").float().cpu().numpy())
    return np.concatenate(out)


def _mmbench_path(
    model: Any, tokenizer: Any, texts: list[str], batch_size: int, max_length: int, device: str
):
    from mmbench.plugins.encoders.hf_text import embed_tokens, tokenize_texts

    input_ids, mask = tokenize_texts(tokenizer, texts, max_length)
    return embed_tokens(model, input_ids, mask, pooling="mean", batch_size=batch_size, device=device)


def text_encoder_speed(
    texts: list[str] | None = None,
    *,
    n_texts: int = 512,
    model: str | None = None,
    batch_size: int = 64,
    max_length: int = 128,
    device: str = "auto",
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Utterances/s of hf-text's encoding loop vs a plain batched loop on the same texts."""
    import torch

    from mmbench.plugins.encoders.hf_text import load_pretrained, resolve_device, resolve_model_dir

    texts = list(texts) if texts is not None else sample_utterances(n_texts, seed)
    folder = resolve_model_dir(model)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    tokenizer, net = load_pretrained(folder, "mean", frozen=True)
    net = net.to(dev).eval()
    load_s = time.perf_counter() - t0

    def timed(fn: Any) -> tuple[float, np.ndarray]:
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn(net, tokenizer, texts, batch_size, max_length, dev)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start, result

    ours_emb = timed(_mmbench_path)[1]  # warm-up
    plain_emb = timed(_plain_loop)[1]
    ours_s, plain_s = [], []
    for _ in range(max(1, repeats)):
        ours_s.append(timed(_mmbench_path)[0])
        plain_s.append(timed(_plain_loop)[0])
    ours, plain = statistics.median(ours_s), statistics.median(plain_s)
    n_tokens = [len(x) for x in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    return {
        "model": str(folder),
        "device": dev,
        "torch_threads": torch.get_num_threads(),
        "n_texts": len(texts),
        "mean_tokens": round(float(np.mean(n_tokens)), 1),
        "max_tokens": int(np.max(n_tokens)),
        "batch_size": batch_size,
        "max_length": max_length,
        "repeats": repeats,
        "model_load_seconds": round(load_s, 3),
        "mmbench_utterances_per_s": round(len(texts) / ours, 1),
        "plain_utterances_per_s": round(len(texts) / plain, 1),
        "ratio": round(plain / ours, 3),
        "max_abs_diff": float(np.abs(ours_emb - plain_emb).max()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=512, help="number of synthetic utterances")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--model", default=None, help="model folder or name (default: all-MiniLM-L6-v2)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = text_encoder_speed(
        n_texts=args.n,
        model=args.model,
        batch_size=args.batch_size,
        max_length=args.max_length,
        device=args.device,
        repeats=args.repeats,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
