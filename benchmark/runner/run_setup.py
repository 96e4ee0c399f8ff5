"""One (fusion, context, seed) resolved for training: its plugin, parameters, tensors, run info and
record path (``setup_run``), shared by ``runner.run.run_one`` and ``runner.seed_batching``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench.errors import UsageError
from mmbench.records import record_path, record_stem
from mmbench.runner.context import context_tensors, resolve_context
from mmbench.runner.methods import NO_CONTEXT, method_label

if TYPE_CHECKING:
    from mmbench.runner.run import Prepared, Reporter


@dataclass
class RunSetup:
    """One (fusion, context, seed) resolved for training: names, parameters, tensors, record path."""

    fusion: str
    seed: int
    context: str
    plugin: Any
    params: dict[str, Any]
    tuning: dict[str, Any] | None
    tag: str
    context_plugin: Any
    context_params: dict[str, Any]
    spec: Any
    stem: str
    out_file: Path
    device: Any
    tensors: dict
    run_info: dict[str, Any]
    train_overrides: dict[str, Any]

    @property
    def label(self) -> str:
        return method_label(self.fusion, self.context)


def setup_run(
    prep: Prepared,
    fusion: str,
    seed: int,
    device: str,
    tensors: dict | None = None,
    context: str = NO_CONTEXT,
) -> RunSetup:
    """Resolve one run of ``run_one`` (checks the fusion's parameters and a tuned seed)."""
    import torch

    from mmbench.runner.run import resolve_fusion
    from mmbench.training.tensors import split_tensors

    data = prep.data
    plugin, params, tuning, tag = resolve_fusion(prep, fusion, context)
    context_plugin, context_params = resolve_context(prep, context)
    spec = data.input_spec()
    plugin.validate(spec, params)
    stem = record_stem(data.name, method_label(fusion, context, "+"), prep.protocol_fingerprint, tag, seed)
    dev_t = torch.device(device)
    if tensors is None:
        tensors = {s: split_tensors(data, s, dev_t) for s in ("train", "dev", "test")}
    tensors = context_tensors(prep, context_plugin, tensors)
    run_info = {
        "dataset": data.name,
        "fusion": fusion,
        "context": context,  # the method's label is fusion + context
        "seed": seed,
        "protocol": prep.protocol,
        "protocol_fingerprint": prep.protocol_fingerprint,
    }
    train_overrides = dict((tuning or {}).get("train") or {})
    if tuning and tuning.get("seed") is not None and int(tuning["seed"]) == int(seed):
        raise UsageError(
            f"seed {seed} is the training seed of every trial of {tuning.get('source')} (study "
            f"{tuning.get('study_name')}); a retrain on it repeats the best trial, whose dev score "
            "chose it. Retrain on other --seeds (mmbench tune trains its trials on seed 1000 + the "
            "first protocol seed by default)"
        )
    out_file = record_path(prep.request.out_dir, stem)
    if out_file.exists():  # never overwrite (or skip for) a run on other data under the same name
        from mmbench.errors import DataError
        from mmbench.records import check_same_data, load_record

        try:
            existing = load_record(out_file)
        except DataError:  # not a readable record: the run replaces it, as before
            existing = None
        check_same_data(existing, data.fingerprint)
    return RunSetup(
        fusion, seed, context, plugin, params, tuning, tag, context_plugin, context_params, spec, stem,
        out_file, dev_t, tensors, run_info, train_overrides,
    )  # fmt: skip


def existing_record(prep: Prepared, setup: RunSetup, reporter: Reporter) -> dict[str, Any] | None:
    """The run's record already on disk when ``--skip-existing`` asks to keep it, else None."""
    if not prep.request.skip_existing:
        return None
    from mmbench.records import load_record

    existing = load_record(setup.out_file)
    if existing is not None:
        reporter.log(f"skip {setup.label} seed {setup.seed}: record exists ({setup.out_file.name})")
    return existing
