"""``mmbench bench``: the trainer's throughput against a bare PyTorch loop, per fusion.

For each fusion the same model (same initial weights) is trained on the same in-memory tensors
twice, alternately, ``repeats`` times each:

* by mmbench's :class:`~mmbench.training.trainer.Trainer` — everything a real run does per epoch
  (shuffle, class-weighted loss, gradient clipping, scheduler, dev evaluation, early-stopping
  bookkeeping), with early stopping disabled so both do the same number of epochs;
* by a bare loop: ``randperm``, index the tensors per batch, forward, cross-entropy, backward,
  AdamW step. Nothing else.

Throughput is train samples per second of wall time over whole epochs (dev evaluation included
for the trainer: it is work the trainer chooses to do). The median over repeats is reported.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any

import torch
from torch import nn

from mmbench.tasks import Task, task_of
from mmbench.training.tensors import TensorSplit


def bare_loop(
    model: nn.Module,
    train: TensorSplit,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    fused: bool = False,
) -> float:
    """Train with a plain PyTorch loop; return samples/s over the whole run.

    ``fused=False`` is the loop a researcher writes (default AdamW); ``fused=True`` gives it the
    same optimizer kernel as the trainer, so the ratio to it measures the trainer's overhead alone.
    """
    from mmbench.training.trainer import make_adamw

    generator = torch.Generator().manual_seed(seed)
    opt = (
        make_adamw(model.parameters(), lr, weight_decay)
        if fused
        else torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    )
    loss_fn = nn.CrossEntropyLoss()
    n = len(train)
    stop = n - 1 if n % batch_size == 1 else n
    model.train()
    device = train.labels.device
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator).to(device)
        for start in range(0, stop, batch_size):
            idx = perm[start : start + batch_size]
            batch = {k: v[idx] for k, v in train.inputs.items()}
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(batch), train.labels[idx])
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return epochs * stop / (time.perf_counter() - t0)


def trainer_loop(
    model: nn.Module,
    train: TensorSplit,
    dev: TensorSplit,
    train_cfg: dict[str, Any],
    metric: str,
    task: Task,
    epochs: int,
    seed: int,
    modalities: list[str],
) -> float:
    """Train with mmbench's Trainer for exactly ``epochs`` epochs; return samples/s (wall)."""
    from mmbench.training.trainer import Trainer

    cfg = dict(train_cfg, max_epochs=epochs, patience=epochs + 1)
    trainer = Trainer(model, cfg, metric, task, train.labels.device, modalities=modalities)
    n = len(train)
    stop = n - 1 if n % int(cfg["batch_size"]) == 1 else n
    t0 = time.perf_counter()
    trainer.fit(train, dev, seed)
    if train.labels.device.type == "cuda":
        torch.cuda.synchronize(train.labels.device)
    return epochs * stop / (time.perf_counter() - t0)


def inference_ms_per_sample(model: nn.Module, split: TensorSplit, batch_size: int = 1024) -> float:
    model.eval()
    n = len(split)
    with torch.inference_mode():
        model(split.slice(0, min(batch_size, n)))  # warm-up
        t0 = time.perf_counter()
        for start in range(0, n, batch_size):
            model(split.slice(start, start + batch_size))
        if split.labels.device.type == "cuda":
            torch.cuda.synchronize(split.labels.device)
    return 1000 * (time.perf_counter() - t0) / n


def bench_fusion(
    prep: Any, fusion: str, device: str, epochs: int, repeats: int, seed: int = 0
) -> dict[str, Any]:
    """Trainer vs bare-loop throughput, inference time, peak memory and size of one fusion."""
    from mmbench.runner.run import build_model
    from mmbench.training.memory import PeakMemory
    from mmbench.training.tensors import split_tensors

    registry, protocol, data = prep.registry, prep.protocol, prep.data
    plugin, params, spec = checked_fusion(prep, fusion)
    dev_t = torch.device(device)
    train = split_tensors(data, "train", dev_t)
    dev = split_tensors(data, "dev", dev_t)
    torch.manual_seed(seed)
    initial = build_model(plugin, spec, params, data, registry).to(dev_t)
    cfg = protocol["train"]
    bs = int(cfg["batch_size"])

    lr, wd = float(cfg["lr"]), float(cfg["weight_decay"])

    def trainer_run(r: int) -> float:
        return trainer_loop(
            copy.deepcopy(initial),
            train,
            dev,
            cfg,
            protocol["metric"],
            task_of(data),
            epochs,
            seed + r,
            spec.names,
        )

    def bare_run(r: int, fused: bool) -> float:
        return bare_loop(copy.deepcopy(initial), train, epochs, bs, lr, wd, seed + r, fused=fused)

    # Warm up (allocator, kernels), then alternate the three loops so drift hits all alike.
    bare_run(0, False)
    runs: dict[str, list[float]] = {"trainer": [], "bare": [], "bare_fused": []}
    peaks = []
    for r in range(repeats):
        with PeakMemory(device) as peak:
            runs["trainer"].append(trainer_run(r))
        peaks.append(peak.bytes)
        runs["bare"].append(bare_run(r, False))
        runs["bare_fused"].append(bare_run(r, True))
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "fusion": fusion,
        "params": sum(p.numel() for p in initial.parameters()),
        "n_train": len(train),
        "epochs": epochs,
        "repeats": repeats,
        "batch_size": bs,
        "trainer_samples_per_second": round(med["trainer"], 1),
        "bare_samples_per_second": round(med["bare"], 1),
        "bare_fused_samples_per_second": round(med["bare_fused"], 1),
        # ratio: against the plain loop a researcher writes; overhead_ratio: against the same loop
        # with the trainer's optimizer kernel, i.e. what the trainer's extra work costs.
        "ratio": round(med["trainer"] / med["bare"], 4),
        "overhead_ratio": round(med["trainer"] / med["bare_fused"], 4),
        "runs": {k: [round(x, 1) for x in v] for k, v in runs.items()},
        "inference_ms_per_sample": round(inference_ms_per_sample(initial, dev), 5),
        "peak_memory_bytes": max(peaks),
    }


def cli_startup(repeats: int = 5) -> dict[str, Any]:
    """Wall time of ``mmbench --help`` and ``mmbench list``, and whether they import torch."""
    import subprocess
    import sys

    probe = (
        "import sys, time; t=time.perf_counter(); from mmbench.cli import main; sys.argv={argv!r}\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('torch','transformers') if m in sys.modules], file=sys.stderr)"
    )
    out: dict[str, Any] = {}
    for name, argv in (("help", ["mmbench", "--help"]), ("list", ["mmbench", "list"])):
        times, heavy = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", probe.format(argv=argv)], capture_output=True, text=True, check=False
            )
            times.append(time.perf_counter() - t0)
            heavy = [ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY")][-1]
        out[name] = {"seconds_median": round(statistics.median(times), 3), "imports": heavy[6:]}
    t0 = time.perf_counter()
    for _ in range(repeats):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    out["python_startup_seconds"] = round((time.perf_counter() - t0) / repeats, 3)
    return out


def checked_fusion(prep: Any, fusion: str) -> tuple[Any, dict[str, Any], Any]:
    """The fusion plugin, its protocol parameters and the data's ``InputSpec``, checked together
    (``FusionPlugin.validate``) as a run checks them; for the benchmarks of this module."""
    from mmbench.runner.run import fusion_params

    plugin = prep.registry.create("fusion", fusion)
    params = fusion_params(plugin, prep.protocol["fusion"], [fusion])
    spec = prep.data.input_spec()
    plugin.validate(spec, params)
    return plugin, params, spec


def bench_report(
    prep: Any, device: str, key: str, results: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """The JSON report of a ``mmbench bench`` mode: dataset, protocol, environment, date, then
    ``extra`` and the per-fusion ``results`` under ``key``."""
    from datetime import datetime, timezone

    return {
        "dataset": prep.data.name,
        "protocol_fingerprint": prep.protocol_fingerprint,
        **{k: v for k, v in extra.items() if k == "max_epochs"},
        "environment": environment_line(device),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        key: results,
        **{k: v for k, v in extra.items() if k != "max_epochs"},
    }


def environment_line(device: str) -> dict[str, Any]:
    import os
    import platform

    return {
        "device": device,
        "device_name": torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def bench_context(
    prep: Any, fusion: str, context: str, device: str, epochs: int, repeats: int, seed: int = 0
) -> dict[str, Any]:
    """Trainer samples/s (utterances per second, whole epochs), inference time per utterance, peak
    memory and size of one fusion with one dialogue context model (``none``: utterance batches).

    There is no bare-loop comparison: dialogue batching is the trainer's own work.
    """
    from mmbench.runner.context import context_tensors, resolve_context
    from mmbench.runner.run import build_model
    from mmbench.training.memory import PeakMemory
    from mmbench.training.tensors import split_tensors
    from mmbench.training.trainer import Trainer

    registry, protocol, data = prep.registry, prep.protocol, prep.data
    plugin, params, spec = checked_fusion(prep, fusion)
    context_plugin, context_params = resolve_context(prep, context)
    dev_t = torch.device(device)
    base = {s: split_tensors(data, s, dev_t) for s in ("train", "dev")}
    tensors = context_tensors(prep, context_plugin, base)
    torch.manual_seed(seed)
    initial = build_model(plugin, spec, params, data, registry, (context_plugin, context_params)).to(dev_t)
    cfg = dict(protocol["train"], max_epochs=epochs, patience=epochs + 1)
    train = tensors["train"]
    per_epoch = sum(b - a for a, b in train.batch_ranges(int(cfg["batch_size"]), training=True))
    rates, peaks = [], []
    for r in range(repeats + 1):  # the first run warms up and is not counted
        trainer = Trainer(
            copy.deepcopy(initial), cfg, protocol["metric"], task_of(data), dev_t, modalities=spec.names
        )
        with PeakMemory(device) as peak:
            t0 = time.perf_counter()
            trainer.fit(train, tensors["dev"], seed + r)
            if dev_t.type == "cuda":
                torch.cuda.synchronize(dev_t)
            seconds = time.perf_counter() - t0
        if r:
            rates.append(epochs * per_epoch / seconds)
            peaks.append(peak.bytes)
    evaluator = Trainer(initial, cfg, protocol["metric"], task_of(data), dev_t, modalities=spec.names)
    evaluator.predict_logits(tensors["dev"])  # warm-up
    t0 = time.perf_counter()
    evaluator.predict_logits(tensors["dev"])
    infer = 1000 * (time.perf_counter() - t0) / max(len(tensors["dev"]), 1)
    lengths = getattr(train, "lengths", None)
    return {
        "fusion": fusion,
        "context": context,
        "context_params": context_params,
        "params": sum(p.numel() for p in initial.parameters()),
        "n_train": len(train),
        "dialogues": int(len(lengths)) if lengths is not None else None,
        "longest_dialogue": int(lengths.max()) if lengths is not None and len(lengths) else None,
        "epochs": epochs,
        "repeats": repeats,
        "batch_size": int(cfg["batch_size"]),
        "trainer_samples_per_second": round(statistics.median(rates), 1),
        "runs": [round(x, 1) for x in rates],
        "inference_ms_per_sample": round(infer, 5),
        "peak_memory_bytes": max(peaks),
    }
