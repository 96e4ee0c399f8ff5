"""The protocol runner: dataset -> protocol -> encoders -> fusion -> trainer -> RunRecord.

``prepare`` resolves the protocol and loads, checks and encodes the data once; ``run_one``
trains one (fusion, seed) and writes its record; ``run_benchmark`` does the grid and returns
per-fusion summaries (mean and std over seeds).
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mmbench.data import MultimodalData
from mmbench.errors import DataError, PluginError, RunFailed, UsageError
from mmbench.protocol import (
    NUMERICS_KEY,
    check_seeds,
    execution_settings,
    fingerprint,
    load_protocol,
    params_tag,
)
from mmbench.records import (
    SCHEMA_VERSION,
    record_path,
    record_stem,
    write_record,
)
from mmbench.runner.context import (
    check_context_overrides,
    context_record,
    resolve_context,
)
from mmbench.runner.environment import data_identity, record_meta
from mmbench.runner.faults import check_fusions, evaluate_outputs, fusion_origin

# training one run (model build, out-of-memory retries, peak memory) lives in mmbench.runner.fitting
from mmbench.runner.fitting import FitOutcome as FitOutcome
from mmbench.runner.fitting import build_model as build_model
from mmbench.runner.fitting import fit_run as fit_run
from mmbench.runner.fitting import is_out_of_memory as is_out_of_memory
from mmbench.runner.methods import NO_CONTEXT, method_label, record_method

# record parts and summaries live in mmbench.runner.results (re-exported)
from mmbench.runner.results import SUMMARY_METRICS as SUMMARY_METRICS
from mmbench.runner.results import encode_seconds, save_checkpoint
from mmbench.runner.results import summarize as summarize

# one run resolved for training (names, parameters, tensors, record path): mmbench.runner.run_setup
from mmbench.runner.run_setup import RunSetup as RunSetup
from mmbench.runner.run_setup import existing_record as existing_record
from mmbench.runner.run_setup import setup_run as setup_run
from mmbench.tasks import task_of


class Reporter(Protocol):
    """Where the runner sends progress (the CLI draws rich progress bars on stderr)."""

    def log(self, message: str) -> None: ...
    def run_started(self, label: str, max_epochs: int) -> None: ...
    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None: ...
    def run_ended(self, label: str, record: dict[str, Any]) -> None: ...


class SilentReporter:
    def log(self, message: str) -> None:
        pass

    def run_started(self, label: str, max_epochs: int) -> None:
        pass

    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def run_ended(self, label: str, record: dict[str, Any]) -> None:
        pass


@dataclass
class RunRequest:
    """What the user asked for (the CLI's options)."""

    dataset: str = "synthetic"
    fusions: list[str] = field(default_factory=lambda: ["cross_attention"])
    seeds: list[int] | None = None
    data_path: Path | None = None
    protocol_file: Path | None = None
    overrides: list[str] = field(default_factory=list)
    encoders: dict[str, str] = field(default_factory=dict)
    max_epochs: int | None = None
    device: str = "auto"
    out_dir: Path = Path("runs")
    skip_existing: bool = False
    precision: str = "auto"
    #: ``--compile``: wrap the model's forward in ``torch.compile`` (execution only, like the device).
    compile: bool = False
    save_checkpoints: bool = True
    #: ``--params``: ``tuned`` (the tuned parameters of each fusion) or a YAML file.
    params: str | None = None
    #: ``--track``: experiment trackers (registry kind ``tracker``) active during the runs.
    trackers: list[str] = field(default_factory=list)
    #: ``--context``: dialogue context models crossed with the fusions (``none``: utterance level).
    contexts: list[str] = field(default_factory=lambda: ["none"])


@dataclass
class Prepared:
    """Data and protocol resolved once and shared by every (fusion, seed) run."""

    request: RunRequest
    protocol: dict[str, Any]
    protocol_fingerprint: str
    data: MultimodalData
    encoders: dict[str, Any]
    budget_cut: bool
    registry: Any
    duplicates: dict[str, Any]
    #: The duplicate guard's evidence (``leakage.DuplicateReport``), for `mmbench inspect`.
    duplicate_report: Any = None
    #: The dataset's cluster unit (``DatasetPlugin.cluster_unit``) when its groups have it.
    cluster_unit: str | None = None
    #: How runs execute (``protocol.execution_settings``: ``seed_batching``); not fingerprinted.
    execution: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine")
    if name != "cpu" and not name.startswith("cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    return name


def data_path_for(request: RunRequest) -> Path | None:
    """``--data`` or else ``MMBENCH_DATA``."""
    if request.data_path is not None:
        return Path(request.data_path)
    env = os.environ.get("MMBENCH_DATA")
    return Path(env) if env else None


def prepare(request: RunRequest, registry: Any, reporter: Reporter | None = None) -> Prepared:
    """Resolve the protocol, load and validate the data, guard against leaks, encode."""
    from mmbench.runner.encoding_cache import encode_dataset
    from mmbench.runner.environment import numerics
    from mmbench.runner.leakage import find_duplicates

    reporter = reporter or SilentReporter()
    ds_plugin = registry.create("dataset", request.dataset)
    # --encoder names the encoder first, so --set encoders.<modality>.<option>=... refines it.
    overrides = [f"encoders.{m}={e}" for m, e in request.encoders.items()]
    overrides += list(request.overrides)
    protocol = load_protocol(
        request.dataset,
        getattr(ds_plugin, "protocol_path", None),
        request.protocol_file,
        overrides,
    )
    execution = execution_settings(protocol)
    protocol_max_epochs = protocol["train"]["max_epochs"]
    budget_cut = False
    if request.max_epochs is not None:
        if request.max_epochs < 1:
            raise UsageError(f"--max-epochs must be at least 1, got {request.max_epochs}")
        budget_cut = request.max_epochs < protocol_max_epochs
        protocol["train"]["max_epochs"] = request.max_epochs
    if request.seeds is not None:
        protocol["seeds"] = check_seeds(list(request.seeds), "--seeds")

    path = data_path_for(request)
    if not getattr(ds_plugin, "needs_data", False):
        # Built-in data (generated or shipped): MMBENCH_DATA is meant for file datasets, and an
        # explicit --data would otherwise be silently ignored.
        if request.data_path is not None:
            raise UsageError(
                f"--data: dataset {request.dataset!r} is built in (generated or shipped with mmbench) "
                f"and reads no file; did you mean --dataset iemocap or --dataset meld?"
            )
        path = None
    if path is not None and not path.exists():
        raise DataError("file or folder does not exist", path=path)
    options = dict(protocol["data"])
    allow_duplicates = bool(options.pop("allow_duplicates", False))
    if protocol.get("classes") is not None:
        options["classes"] = protocol["classes"]
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = ds_plugin.load(path, options)
    for w in caught:
        reporter.log(f"warning: {w.message}")
    if caught:
        data.meta.setdefault("warnings", [str(w.message) for w in caught])
    data.validate()
    task_of(data).check_protocol(protocol, request.dataset)
    reporter.log(
        f"loaded {request.dataset}: {data.n} samples, {task_of(data).target_summary()}, "
        f"modalities {', '.join(data.modality_names)} ({time.perf_counter() - t0:.1f}s)"
    )
    report = find_duplicates(data)
    if report.total and not allow_duplicates:
        raise DataError(
            f"{report.describe()}. The same utterance (id or feature vector, also after rounding) in "
            "two splits usually means the data was over-sampled or augmented before splitting, which "
            "leaks test rows into training. Fix the data, or accept it with "
            "--set data.allow_duplicates=true (recorded in the protocol).",
            path=data.meta.get("source", request.dataset),
        )
    if report.total:
        reporter.log(f"warning: {report.describe()} (allowed by data.allow_duplicates)")
    if report.describe_repeats():
        reporter.log(f"note: {report.describe_repeats()}")
    encoded, encoders = encode_dataset(data, protocol, registry, log=reporter.log)
    unit = getattr(ds_plugin, "cluster_unit", None)
    if unit is not None and unit not in data.groups:
        reporter.log(f"note: no {unit} ids in this data; the tie test treats test utterances as independent")
        unit = None
    protocol.setdefault("split", data.meta.get("split_scheme", "dataset"))
    # What changes the numbers besides the protocol file: part of the fingerprint (mmbench.protocol).
    protocol[NUMERICS_KEY] = numerics(resolve_device(request.device), request.precision, request.compile)
    return Prepared(
        request=request,
        protocol=protocol,
        protocol_fingerprint=fingerprint(protocol),
        data=encoded,
        encoders=encoders,
        budget_cut=budget_cut,
        registry=registry,
        duplicates={**report.as_record(), "accepted": bool(report.total and allow_duplicates)},
        duplicate_report=report,
        cluster_unit=unit,
        execution=execution,
    )


def fusion_params(plugin: Any, protocol_fusion: dict[str, Any], names: list[str]) -> dict:
    """Protocol ``fusion.*`` overrides restricted to the keys this fusion knows.

    With several fusions in one run, ``--set fusion.modality=audio`` applies to the fusions that
    have that parameter; a key that no requested fusion knows is an error (caught by the caller).
    """
    known = {k: v for k, v in protocol_fusion.items() if k in plugin.default_params}
    if len(names) == 1:
        known = dict(protocol_fusion)
    return plugin.resolve_params(known)


def resolve_fusion(
    prep: Prepared, fusion: str, context: str = NO_CONTEXT
) -> tuple[Any, dict[str, Any], dict[str, Any] | None, str]:
    """The fusion's plugin, hyper-parameters, tuning source and params tag (part of the record name);
    a context model other than ``none`` and its parameters enter the tag (part of the method)."""
    plugin = prep.registry.create("fusion", fusion)
    tuning = None
    overrides = dict(prep.protocol["fusion"])
    if prep.request.params:
        from mmbench.tuning.tuned_params import load_params

        tuned = load_params(prep.request.params, prep.data.name, fusion, prep.protocol_fingerprint)
        tuning = tuned.get("tuning")
        overrides = {**tuned["params"], **overrides}
    params = fusion_params(plugin, overrides, prep.request.fusions)
    tagged: dict[str, Any] = {
        "fusion": params,
        "encoders": {m: e["identity"] for m, e in prep.encoders.items()},
    }
    if context != NO_CONTEXT:
        tagged["context"] = {"name": context, "params": resolve_context(prep, context)[1]}
    if tuning and tuning.get("train"):
        # Tuned trainer values (lr, batch size...) change the result but not the protocol
        # fingerprint, so they enter the params tag (the record name) instead.
        tagged["train"] = tuning["train"]
    tag = params_tag(tagged)
    return plugin, params, tuning, tag


def run_record_path(prep: Prepared, fusion: str, seed: int, context: str = NO_CONTEXT) -> Path:
    """The record file ``run_one(prep, fusion, seed, context=...)`` writes (sweeps lock and skip by it)."""
    tag, label = resolve_fusion(prep, fusion, context)[3], method_label(fusion, context, "+")
    stem = record_stem(prep.data.name, label, prep.protocol_fingerprint, tag, seed)
    return record_path(prep.request.out_dir, stem)


def run_one(
    prep: Prepared,
    fusion: str,
    seed: int,
    device: str,
    reporter: Reporter | None = None,
    tensors: dict | None = None,
    context: str = NO_CONTEXT,
    execution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one (fusion, context, seed); write and return its RunRecord.

    ``execution`` adds to the record's ``execution`` block (how seeds were batched, and why).
    """
    reporter = reporter or SilentReporter()
    setup = setup_run(prep, fusion, seed, device, tensors, context)
    existing = existing_record(prep, setup, reporter)
    if existing is not None:
        return existing
    ctx = (setup.context_plugin, setup.context_params)
    outcome = fit_run(
        prep, setup.plugin, setup.spec, setup.params, seed, setup.device, setup.tensors, reporter,
        setup.run_info, setup.train_overrides, ctx,
    )  # fmt: skip
    return finish_run(prep, setup, outcome, reporter, execution)


def finish_run(
    prep: Prepared,
    setup: RunSetup,
    outcome: FitOutcome,
    reporter: Reporter,
    execution: dict[str, Any] | None = None,
    cost_basis: str = "run",
) -> dict[str, Any]:
    """Evaluate a trained run once on dev and test, write its record, predictions and checkpoint."""

    from mmbench.registry.manager import call_lifecycle
    from mmbench.runner.environment import environment
    from mmbench.training.trainer import precision_name

    registry, protocol, data = prep.registry, prep.protocol, prep.data
    fusion, seed, context = setup.fusion, setup.seed, setup.context
    tensors, dev_t, device = setup.tensors, setup.device, str(setup.device)
    params, tuning, tag, stem = setup.params, setup.tuning, setup.tag, setup.stem
    run_info, train_overrides, label = setup.run_info, setup.train_overrides, setup.label
    trainer, fit, failure, n_params = outcome.trainer, outcome.fit, outcome.failure, outcome.n_params
    status = "ok" if failure is None else "failed"
    protocol_fp = prep.protocol_fingerprint
    if outcome.oom_retries:
        # The batch an out-of-memory retry ended with changes the numbers: its own protocol. The
        # file keeps the requested protocol's name, so a sweep finds (and skips) this cell.
        protocol = copy.deepcopy(protocol)
        protocol[NUMERICS_KEY]["after_oom"] = {
            "batch_size": outcome.train_cfg["batch_size"],
            "grad_accum": outcome.train_cfg["grad_accum"],
        }
        protocol_fp = fingerprint(protocol)

    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "dataset": data.name,
        "fusion": fusion,
        "fusion_params": params,
        "tuning": tuning,
        "train_overrides": train_overrides,
        "params_tag": tag,
        "encoders": prep.encoders,
        "seed": seed,
        "protocol": protocol,
        "protocol_fingerprint": protocol_fp,
        "dataset_fingerprint": data.fingerprint,
        # Not fingerprinted: words and paths that change no result.
        "annotation": {
            "description": protocol.get("description"),
            "data_path": str(data_path_for(prep.request)) if data_path_for(prep.request) else None,
            "protocol_file": str(prep.request.protocol_file) if prep.request.protocol_file else None,
        },
        "budget_cut": prep.budget_cut,
        "train_config": outcome.train_cfg,
        "execution": {
            "precision": prep.request.precision,
            "effective_precision": precision_name(dev_t, prep.request.precision),
            "compile": prep.request.compile,
            **(execution or {}),
        },
        "oom_retries": outcome.oom_retries,
        **data_identity(data_path_for(prep.request)),
        "class_names": data.class_names,
        "task": task_of(data).describe(),
        "cluster_unit": prep.cluster_unit,
        "data_meta": record_meta(data.meta),
        "n_train": len(tensors["train"]),
        "n_dev": len(tensors["dev"]),
        "n_test": len(tensors["test"]),
        "duplicates": prep.duplicates,
        "environment": environment(device, [p.as_dict() for p in registry.plugins if p.error is None]),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    record.update(context_record(prep, context, setup.context_params))
    predictions: dict[str, Any] = {"ids": None, "y_true": [], "y_pred": []}
    if fit is None:
        record.update(
            {
                "metrics": {},
                "best_epoch": None,
                "history": [],
                "failure": failure,
                "efficiency": {"params": n_params},
            }
        )
    else:
        evaluated = evaluate_outputs(
            trainer, tensors, dev_t, data.num_outputs, fusion_origin(registry, fusion)
        )
        if isinstance(evaluated, dict):  # the model's outputs cannot be scored: the run failed
            fit, failure, status = None, evaluated, "failed"
            record.update({"status": status, "metrics": {}, "best_epoch": None, "history": []})
            record.update({"failure": failure, "efficiency": {"params": n_params}})
    if fit is not None:
        dev_pred, test_logits, _ = evaluated
        from mmbench.training.latency import inference_ms_per_sample

        # Latency: the median of timed dev passes after a warm-up (test is evaluated once, above).
        latency_ms = inference_ms_per_sample(trainer, tensors["dev"])
        task = trainer.task
        test_pred = task.predictions(test_logits).cpu().numpy()
        dev_true = tensors["dev"].labels.cpu().numpy()
        test_true = tensors["test"].labels.cpu().numpy()
        record.update(
            {
                "metrics": {
                    "dev": task.metrics(dev_true, dev_pred),
                    "test": task.metrics(test_true, test_pred),
                },
                "best_epoch": fit.best_epoch,
                "epochs_run": fit.epochs_run,
                "stopped_early": fit.stopped_early,
                "history": fit.history,
                "efficiency": {
                    "params": n_params,
                    "train_seconds": round(fit.train_seconds, 4),
                    "train_samples_per_second": round(fit.samples_per_second, 2),
                    "peak_memory_bytes": outcome.peak_bytes,
                    "peak_memory_source": outcome.peak_source,
                    "inference_ms_per_sample": round(latency_ms, 5),
                    "encode_seconds": encode_seconds(prep.encoders),
                    "cost_basis": cost_basis,
                },
            }
        )
        test_idx = data.splits["test"]
        predictions = {
            "ids": [data.ids[i] for i in test_idx] if data.ids else test_idx.tolist(),
            "y_true": test_true.tolist(),
            "y_pred": test_pred.tolist(),
        }
        values = task.output_values(test_logits)
        if values is not None:  # class probabilities (classification)
            predictions["probabilities"] = values
        if prep.cluster_unit is not None:
            predictions["clusters"] = [str(c) for c in np.asarray(data.groups[prep.cluster_unit])[test_idx]]
    if fit is not None and prep.request.save_checkpoints:
        record["checkpoint_file"] = save_checkpoint(
            record_path(prep.request.out_dir, stem), trainer.model
        ).name
    path = write_record(prep.request.out_dir, stem, record, predictions)
    record["_path"] = str(path)
    try:
        call_lifecycle("mmbench_run_end", run=run_info, record=record)
    except PluginError as exc:
        # The record is already valid on disk; the plugin's failure is reported, not hidden.
        reporter.log(f"warning: {exc}")
    reporter.run_ended(f"{label} seed {seed}", record)
    return record


def run_benchmark(
    request: RunRequest, registry: Any, reporter: Reporter | None = None
) -> tuple[Prepared, list[dict[str, Any]]]:
    """Run every (fusion, seed) of the request, with its trackers active; return the prepared
    state and the records."""
    from mmbench.runner.tracking import tracking

    reporter = reporter or SilentReporter()
    with tracking(request.trackers, registry, request.out_dir, reporter.log):
        return _run_all(request, registry, reporter)


def _run_all(request: RunRequest, registry: Any, reporter: Reporter) -> tuple[Prepared, list[dict[str, Any]]]:
    import torch

    from mmbench.runner.output_paths import check_writable_dir
    from mmbench.runner.seed_batching import run_seeds
    from mmbench.training.tensors import split_tensors
    from mmbench.ui.console import announce_runs, finish_runs

    device = resolve_device(request.device)
    check_writable_dir(request.out_dir, "--out")
    for name in request.fusions:
        registry.get("fusion", name)  # unknown names fail before any data is loaded
    if len(set(request.fusions)) < len(request.fusions):
        raise UsageError(f"fusions {request.fusions} name a fusion more than once; each fusion is one run")
    prep = prepare(request, registry, reporter)
    plugins = {f: registry.create("fusion", f) for f in request.fusions}
    unknown = [k for k in prep.protocol["fusion"] if not any(k in p.default_params for p in plugins.values())]
    if unknown:
        raise UsageError(f"--set fusion.{unknown[0]}: no requested fusion has a parameter {unknown[0]!r}")
    check_fusions(prep)
    check_context_overrides(prep)
    dev_t = torch.device(device)
    tensors = {s: split_tensors(prep.data, s, dev_t) for s in ("train", "dev", "test")}
    records = []
    announce_runs(reporter, len(request.contexts) * len(request.fusions) * len(prep.protocol["seeds"]))
    for context in request.contexts:
        for fusion in request.fusions:
            # The seeds of a cell train as one stacked model where that applies (train.seed_batching).
            records += run_seeds(
                prep, fusion, list(prep.protocol["seeds"]), device, reporter, tensors, context
            )
    finish_runs(reporter)
    failed = [r for r in records if r.get("status") != "ok"]
    if failed and len(failed) == len(records):
        raise RunFailed(
            "every run failed: "
            + "; ".join(f"{record_method(r)} seed {r['seed']}: {r['failure']['reason']}" for r in failed)
        )
    return prep, records
