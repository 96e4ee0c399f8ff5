"""Length-bucketed batches for encoders trained inside the model (fine-tuning a text model).

A fine-tuned text module pads each batch only to its own longest text (dynamic padding), so a
batch costs about ``batch size x longest text``. Random batches of MELD utterances (mean 14
tokens, 99th percentile 38, longest 95 with all-MiniLM-L6-v2's tokenizer) are mostly padding.

* Training (``train.length_bucketing: P``, a protocol setting: it changes which rows share a
  batch, hence the numbers): the epoch's shuffled order is cut into pools of ``P`` batches, each
  pool is sorted by text length (longest first, stable), cut into batches, and the full batches
  are shuffled, so every batch holds texts of similar length while the epoch stays random
  (the bucket iterator of AllenNLP and fairseq). The last, partial batch stays last.
* Evaluation (always, an execution choice): rows are predicted longest first in batches of the
  training batch size, then put back in split order. Per-row outputs equal the unsorted ones up
  to float reassociation (padding is masked out).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmbench.errors import UsageError
from mmbench.training.tensors import TensorSplit, token_prefix

MASK_NAME = "attention_mask"
#: Start of every in-model token key (``tokens:<modality>:<name>``).
TOKENS = token_prefix("").rstrip(":") + ":"


def row_lengths(split: TensorSplit) -> Tensor | None:
    """Tokens per row ``[N]`` (int64): the longest over the split's in-model ``attention_mask``
    arrays (``tokens:<modality>:attention_mask``), or ``None`` when it has none."""
    masks = [v for k, v in split.inputs.items() if k.startswith(TOKENS) and k.endswith(":" + MASK_NAME)]
    if not masks:
        return None
    return torch.stack([m.sum(1) for m in masks]).amax(0)


def bucketed_order(
    order: Tensor, lengths: Tensor, batch_size: int, pool: int, generator: torch.Generator
) -> Tensor:
    """``order`` (an epoch's row indices, shuffled) rearranged into length buckets (module docstring).

    ``lengths`` ``[N]`` are per-row token counts; ``pool`` is the number of batches sorted
    together. Returns a tensor of the same rows (same multiset) on ``order``'s device.
    """
    n = int(order.numel())
    if n == 0:
        return order
    size = max(1, int(pool)) * int(batch_size)
    row_len = lengths.to(order.device).index_select(0, order)
    parts = []
    for start in range(0, n, size):
        chunk = order[start : start + size]
        ranks = torch.argsort(-row_len[start : start + size], stable=True)
        parts.append(chunk.index_select(0, ranks))
    arranged = torch.cat(parts)
    full = n // batch_size
    if full < 2:
        return arranged
    batches = arranged[: full * batch_size].view(full, batch_size)
    shuffled = batches.index_select(0, torch.randperm(full, generator=generator).to(order.device))
    return torch.cat([shuffled.reshape(-1), arranged[full * batch_size :]])


def bucketing_pool(train_cfg: dict, split: TensorSplit) -> int:
    """``train.length_bucketing`` (0 = off), checked against ``split``.

    Raises:
        UsageError: bucketing is asked for but no encoder is trained inside the model (there is
            no text length to bucket by), or the value is not a non-negative integer.
    """
    pool = train_cfg.get("length_bucketing") or 0
    if not isinstance(pool, int) or isinstance(pool, bool) or pool < 0:
        raise UsageError(f"train.length_bucketing must be an integer >= 0 (batches per pool), got {pool!r}")
    if pool and row_lengths(split) is None:
        raise UsageError(
            "train.length_bucketing needs an encoder trained inside the model (e.g. "
            "--encoder text=hf-text-finetune): these data have no token lengths to bucket by"
        )
    return pool


def eval_order(split: TensorSplit) -> Tensor | None:
    """Rows of ``split`` longest text first, or ``None`` without in-model token arrays."""
    lengths = row_lengths(split)
    if lengths is None:
        return None
    return torch.argsort(-lengths, stable=True)
