"""Fine-tuning throughput of an in-model text encoder on MELD text (docs/PERFORMANCE.md, "Fine-tuning").

Runs mmbench's own run path (``prepare`` + ``run_one``: tokenisation, ``attach_encoders``,
the trainer, dev selection) on the official MELD CSVs with the train split cut to a seeded
random subset of ``--train-rows`` utterances (dev and test stay whole unless ``--eval-rows``
cuts them too, for timing runs), and prints one JSON line:
train utterances per second of training-step time, the wall and CPU time of the run (dev and
test evaluation included) and the best dev weighted F1.

    OMP_NUM_THREADS=2 python scripts/finetune_throughput.py --data ../shared/data/meld \\
        --train-rows 2000 --epochs 1 --seed 0 [--set encoders.text.freeze_layers=4 ...]

The data is read in place and never copied; records go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (less sensitive to other processes' load)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with MELD's *_sent_emo.csv")
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument(
        "--eval-rows", type=int, default=None, help="also cut dev and test to seeded subsets (timing runs)"
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fusion", default="concat")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value")
    args = parser.parse_args()

    import torch

    from mmbench.registry.manager import build_registry
    from mmbench.runner.run import RunRequest, prepare, run_one
    from mmbench.training import trainer as trainer_mod

    # CPU seconds of Trainer.fit (training steps + per-epoch dev evaluation): robust to other
    # processes' load, unlike wall time.
    fit_cpu: list[float] = []
    plain_fit = trainer_mod.Trainer.fit

    def timed_fit(self: Any, *a: Any, **k: Any) -> Any:
        start = cpu_seconds()
        try:
            return plain_fit(self, *a, **k)
        finally:
            fit_cpu.append(cpu_seconds() - start)

    trainer_mod.Trainer.fit = timed_fit  # type: ignore[method-assign]

    registry, _ = build_registry()
    with tempfile.TemporaryDirectory() as out:
        request = RunRequest(
            dataset="meld",
            fusions=[args.fusion],
            seeds=[args.seed],
            data_path=args.data,
            overrides=list(args.overrides),
            encoders={"text": "hf-text-finetune"},
            max_epochs=args.epochs,
            device="cpu",
            out_dir=Path(out),
            save_checkpoints=False,
        )
        t0 = time.perf_counter()
        prep = prepare(request, registry)
        prepare_s = time.perf_counter() - t0
        rng = np.random.default_rng(args.seed)
        splits = dict(prep.data.splits)
        keep = np.sort(rng.permutation(splits["train"])[: args.train_rows])
        splits["train"] = keep
        if args.eval_rows is not None:
            for name in ("dev", "test"):
                splits[name] = np.sort(rng.permutation(splits[name])[: args.eval_rows])
        prep.data = replace(prep.data, splits=splits)
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        record = run_one(prep, args.fusion, args.seed, "cpu")
        run_s, run_cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    eff = record["efficiency"]
    print(
        json.dumps(
            {
                "train_rows": int(len(keep)),
                "dev_rows": int(len(splits["dev"])),
                "epochs": args.epochs,
                "seed": args.seed,
                "overrides": args.overrides,
                "threads": torch.get_num_threads(),
                "train_utterances_per_s": round(eff["train_samples_per_second"], 2),
                "train_seconds": round(eff["train_seconds"], 1),
                "run_seconds": round(run_s, 1),
                "run_cpu_seconds": round(run_cpu, 1),
                "fit_cpu_seconds": round(sum(fit_cpu), 1),
                "train_utterances_per_fit_cpu_s": round(len(keep) * args.epochs / max(sum(fit_cpu), 1e-9), 2),
                "prepare_seconds": round(prepare_s, 1),
                "best_epoch": record.get("best_epoch"),
                "dev_weighted_f1": round(record["metrics"]["dev"]["weighted_f1"], 4),
                "test_weighted_f1": round(record["metrics"]["test"]["weighted_f1"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
