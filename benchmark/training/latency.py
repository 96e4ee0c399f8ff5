"""Inference latency: the median of repeated timed passes over a split, after warm-up passes.

One pass is ``Trainer.predict_logits`` over the split (eval mode, large batches, autocast as in
training); CUDA work is synchronised before each clock read. The first passes pay for lazy
initialisation (kernels, allocator, ``torch.compile``), so they are run and not timed; the median
of the timed passes is robust to a pass disturbed by other work on the machine.
"""

from __future__ import annotations

import time
from typing import Any

#: Timed passes (odd: the median is one of them) and untimed warm-up passes.
REPEATS = 5
WARMUP = 1
#: At most this many rows are timed (the first of the split): the cost stays bounded on large splits.
MAX_ROWS = 4096


def inference_ms_per_sample(
    trainer: Any, split: Any, repeats: int = REPEATS, warmup: int = WARMUP, max_rows: int = MAX_ROWS
) -> float:
    """Median over ``repeats`` timed passes of one pass's milliseconds divided by its rows."""
    import numpy as np
    import torch

    from mmbench.training.tensors import TensorSplit

    rows = min(len(split), max_rows)
    if rows == 0:
        return 0.0
    part = split if rows == len(split) else TensorSplit(split.slice(0, rows), split.labels[:rows])
    cuda = trainer.device.type == "cuda"
    times = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize(trainer.device)
        t0 = time.perf_counter()
        trainer.predict_logits(part)
        if cuda:
            torch.cuda.synchronize(trainer.device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000.0 / rows
