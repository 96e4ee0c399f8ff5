"""``mmbench bench --numerics ...``: the trainer on one device under each numeric setting.

For each fusion and each numeric configuration (``fp32``, ``bf16``, ``fp16``, ``compile`` =
fp32 with ``torch.compile``, ``bf16+compile``) the fusion's model is trained by mmbench's own
:class:`~mmbench.training.trainer.Trainer` (early stopping off) and measured:

* ``samples_per_second`` and ``step_ms``: train samples per second and milliseconds per
  optimizer step, over the training steps of ``epochs`` whole epochs (the trainer's own step
  clock, which waits for the device at the end of each epoch; dev evaluation excluded), after a
  one-epoch warm-up on the same trainer (allocator, kernels, compilation);
* ``host_syncs_per_step``: how often the host waits for the device inside a training step, from
  two short fits (2 and 4 batches) on the warm trainer: the difference over the 2 extra steps.
  ``host_syncs_per_epoch`` is that times the steps of an epoch (0 is the goal: a CUDA step then
  never waits for the host), ``host_syncs_epoch_end`` what the end of an epoch adds (the
  divergence check, dev evaluation, model selection). On CUDA every synchronising call is counted
  by ``torch.cuda.set_sync_debug_mode("warn")``; elsewhere, Python-level reads of tensor values
  (``item``, ``float``, ``int``, ``bool``, ``tolist``, ``numpy``), each of which would be a
  synchronisation on CUDA (``sync_counter`` says which);
* ``peak_memory_bytes``: the measured fit's own peak (:mod:`mmbench.training.memory`).

CUDA graphs are not used: no GPU was available to show that they help, so none is captured.
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from mmbench.errors import UsageError

#: Numeric configurations: name -> (precision, compile).
CONFIGS: dict[str, tuple[str, bool]] = {
    "fp32": ("fp32", False),
    "bf16": ("bf16", False),
    "fp16": ("fp16", False),
    "compile": ("fp32", True),
    "bf16+compile": ("bf16", True),
}
#: Tensor methods that read a value to the host (a device synchronisation on CUDA).
HOST_READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__")


def parse_configs(text: str, device: str) -> list[str]:
    """``"fp32,bf16,compile"`` -> checked names; ``all`` = every configuration the device runs.

    Raises:
        UsageError: an unknown name, or fp16 off CUDA (it needs a GradScaler on CUDA).
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    on_cuda = torch.device(device).type == "cuda"
    if names == ["all"]:
        return [n for n in CONFIGS if on_cuda or n == "fp32" or n == "bf16"]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        raise UsageError(
            f"--numerics: unknown configuration {unknown[:1] or text!r}; known: all, {', '.join(CONFIGS)}"
        )
    if "fp16" in names and not on_cuda:
        raise UsageError("--numerics fp16 needs --device cuda (loss scaling); on CPU use fp32 or bf16")
    return names


@contextlib.contextmanager
def count_host_syncs(device: torch.device) -> Iterator[dict[str, Any]]:
    """Count host-device synchronisations in the block; the count is in ``["n"]`` afterwards."""
    result: dict[str, Any] = {"n": 0}
    if device.type == "cuda":
        result["counter"] = "torch.cuda.set_sync_debug_mode"
        previous = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield result
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        result["n"] = sum("synchroniz" in str(w.message) for w in caught)
        return
    result["counter"] = "tensor value reads (" + ", ".join(HOST_READS) + ")"
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def counted(original: Any) -> Any:
        def read(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            result["n"] += 1
            return original(self, *args, **kwargs)

        return read

    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, counted(original))
        yield result
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def _syncs(trainer: Any, train: Any, dev: Any, batches: int, batch_size: int) -> int:
    """Host syncs of a one-epoch fit on the first ``batches`` full batches of ``train``."""
    rows = torch.arange(min(len(train), batches * batch_size), device=train.labels.device)
    subset = train.take(rows)
    with count_host_syncs(trainer.device) as syncs:
        trainer.fit(subset, dev, seed=1)
    return int(syncs["n"])


def device_check(
    prep: Any, fusion: str, device: str, config: str, epochs: int, seed: int = 0
) -> dict[str, Any]:
    """One JSON-ready line: samples/s, step time, host syncs and peak memory (module docstring)."""
    from mmbench.runner.run import build_model
    from mmbench.tasks import task_of
    from mmbench.tools.bench import checked_fusion
    from mmbench.training.memory import PeakMemory
    from mmbench.training.tensors import split_tensors
    from mmbench.training.trainer import Trainer, precision_name

    precision, compiled = CONFIGS[config]
    registry, protocol, data = prep.registry, prep.protocol, prep.data
    plugin, params, spec = checked_fusion(prep, fusion)
    dev_t = torch.device(device)
    train, dev = split_tensors(data, "train", dev_t), split_tensors(data, "dev", dev_t)
    torch.manual_seed(seed)
    model = build_model(plugin, spec, params, data, registry)
    cfg = dict(protocol["train"], max_epochs=1, patience=epochs + 2)
    bs = int(cfg["batch_size"])
    trainer = Trainer(
        copy.deepcopy(model),
        cfg,
        protocol["metric"],
        task_of(data),
        dev_t,
        precision=precision,
        modalities=spec.names,
        compile=compiled,
    )
    t0 = time.perf_counter()
    trainer.fit(train, dev, seed)  # warm-up: allocator, kernels, compilation
    warmup = time.perf_counter() - t0
    trainer.cfg = dict(cfg, max_epochs=epochs)
    with PeakMemory(device) as peak:
        fit = trainer.fit(train, dev, seed)
    steps = len(train.batch_ranges(bs, training=True))
    trainer.cfg = dict(cfg, max_epochs=1)
    two, four = (_syncs(trainer, train, dev, k, bs) for k in (2, 4))
    per_step = (four - two) / 2
    return {
        "config": config,
        "fusion": fusion,
        "device": dev_t.type,
        "device_name": torch.cuda.get_device_name(dev_t) if dev_t.type == "cuda" else "cpu",
        "precision": precision_name(dev_t, precision),
        "compile": compiled,
        "n_train": len(train),
        "batch_size": bs,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "samples_per_second": round(fit.samples_per_second, 1),
        "step_ms": round(1000 * fit.step_seconds / max(steps * fit.epochs_run, 1), 3),
        "warmup_seconds": round(warmup, 2),
        "host_syncs_per_step": per_step,
        "host_syncs_per_epoch": round(per_step * steps, 2),
        "host_syncs_epoch_end": round(two - 2 * per_step, 2),
        "sync_counter": "torch.cuda.set_sync_debug_mode"
        if dev_t.type == "cuda"
        else "tensor value reads (" + ", ".join(HOST_READS) + ")",
        "peak_memory_bytes": int(peak.bytes),
        "peak_memory_source": getattr(peak, "source", ""),
        "cuda_graphs": False,
    }


def report_device_check(
    prep: Any, fusions: list[str], numerics: str, device: str, epochs: int, as_json: bool, reporter: Any
) -> None:
    """Run :func:`device_check` for every fusion x configuration and print the report (JSON or a table)."""
    from datetime import datetime, timezone

    from mmbench.tools.bench import environment_line
    from mmbench.ui.console import out_console, print_json

    configs = parse_configs(numerics, device)
    results = []
    for fusion in fusions:
        for config in configs:
            reporter.log(f"device check: {fusion} {config} on {device} ({epochs} epochs)")
            results.append(device_check(prep, fusion, device, config, epochs))
    report = {
        "dataset": prep.data.name,
        "protocol_fingerprint": prep.protocol_fingerprint,
        "environment": environment_line(device),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "device_check": results,
    }
    if as_json:
        print_json(report)
        return
    from rich.table import Table

    table = Table(title=f"mmbench bench --numerics — {prep.data.name} on {device}")
    columns = ("fusion", "config", "samples/s", "step ms", "syncs/epoch", "syncs at epoch end", "peak MiB")
    for col in columns:
        table.add_column(col, justify="left" if col in ("fusion", "config") else "right")
    for r in results:
        table.add_row(
            r["fusion"],
            r["config"],
            f"{r['samples_per_second']:,.0f}",
            f"{r['step_ms']:.2f}",
            f"{r['host_syncs_per_epoch']:g}",
            f"{r['host_syncs_epoch_end']:g}",
            f"{r['peak_memory_bytes'] / 2**20:,.0f}",
        )
    out_console.print(table)
