"""An independent check of `mmbench bench`: a bare PyTorch training loop written without mmbench's
tensors, trainer or bench code, on the same data and model, printing train samples/s as JSON.

    python scripts/independent_bare_loop.py --fusion cross_attention --epochs 2 --repeats 3

Only the data generator and the fusion's model class come from mmbench (the thing being
measured); batching, loss and optimizer are plain PyTorch, as a researcher writes them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn

from mmbench.plugins.datasets.synthetic import generate
from mmbench.registry import get_registry


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fusion", default="cross_attention")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--fused", action="store_true", help="AdamW(fused=True), as mmbench's trainer uses")
    args = parser.parse_args()

    data = generate()  # the embedded default: synthetic, preset mixed, 7,400 utterances
    train = data.splits["train"]
    inputs = {
        m: torch.from_numpy(np.concatenate([s[train] for s in streams.values()], axis=1))
        for m, streams in data.modalities.items()
    }
    labels = torch.from_numpy(data.labels[train])
    plugin = get_registry().create("fusion", args.fusion)
    params = plugin.resolve_params({})
    n = len(labels)
    rates = []
    for repeat in range(args.repeats):
        torch.manual_seed(repeat)
        model = plugin.build(data.input_spec(), params)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5, fused=args.fused or None)
        loss_fn = nn.CrossEntropyLoss()
        model.train()
        t0 = time.perf_counter()
        seen = 0
        for _ in range(args.epochs):
            perm = torch.randperm(n)
            for start in range(0, n - args.batch_size // 2, args.batch_size):
                idx = perm[start : start + args.batch_size]
                opt.zero_grad()
                loss_fn(model({m: x[idx] for m, x in inputs.items()}), labels[idx]).backward()
                opt.step()
                seen += len(idx)
        rates.append(seen / (time.perf_counter() - t0))
    print(
        json.dumps(
            {
                "fusion": args.fusion,
                "fused_adamw": args.fused,
                "train_samples": n,
                "epochs": args.epochs,
                "samples_per_s_median": round(statistics.median(rates), 1),
                "samples_per_s": [round(r, 1) for r in rates],
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
