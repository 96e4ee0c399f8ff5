"""Run the robustness analysis on stored runs: reload each best-dev checkpoint, evaluate the test
split under perturbations, and write the results into the record (atomically)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mmbench.errors import DataError
from mmbench.records import atomic_write_json, load_records
from mmbench.robustness.analysis import DEFAULT_LEVELS, effective_robustness, evaluate_robustness
from mmbench.runner.methods import record_method
from mmbench.tasks import Task, task_of

BASELINE = "late"


def _group_key(rec: dict[str, Any]) -> tuple:
    return (
        rec["dataset"],
        rec["protocol_fingerprint"],
        rec["dataset_fingerprint"],
        rec.get("data_path"),
        repr(sorted((m, repr(e.get("identity"))) for m, e in rec.get("encoders", {}).items())),
    )


def _predictor(model: Any, task: Task, batch_size: int = 1024):
    """``split -> [N]`` predictions of ``model`` in split order (classes, or values for regression)."""
    import torch

    def predict(split: Any) -> Any:
        model.eval()
        out = []
        with torch.inference_mode():
            for start, stop in split.batch_ranges(batch_size):
                out.append(model(split.batch(start, stop)[0]).float())
        return task.predictions(split.in_split_order(torch.cat(out))).cpu().numpy()

    return predict


def analyse_records(
    records: list[dict[str, Any]],
    registry: Any,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    device: str = "cpu",
    reporter: Any = None,
    pool: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Add ``record["robustness"]`` to every successful record with a checkpoint; return them.

    ``pool`` holds other records (already analysed) where the ``late`` baselines may be found.
    """
    import torch

    from mmbench.runner.context import record_context_model
    from mmbench.runner.reproduce import request_from_record
    from mmbench.runner.run import SilentReporter, build_model, prepare, resolve_device
    from mmbench.training.dialogue import dialogue_split
    from mmbench.training.tensors import split_tensors

    reporter = reporter or SilentReporter()
    device = resolve_device(device)  # "auto": CUDA when present
    usable = []
    for rec in records:
        ckpt = Path(rec["_path"]).parent / str(rec.get("checkpoint_file", ""))
        if rec.get("status") == "ok" and rec.get("checkpoint_file") and ckpt.exists():
            usable.append(rec)
        elif rec.get("status") == "ok" and not rec.get("checkpoint_file"):
            reporter.log(
                f"skip {Path(rec['_path']).name}: written without a checkpoint (--no-checkpoints); "
                "robustness needs the trained model, so run it again without --no-checkpoints"
            )
        elif rec.get("status") == "ok":
            reporter.log(f"skip {Path(rec['_path']).name}: its checkpoint {ckpt.name} is missing")
        else:
            reporter.log(f"skip {Path(rec['_path']).name}: the run failed")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for rec in usable:
        groups.setdefault(_group_key(rec), []).append(rec)

    done = []
    dev_t = torch.device(device)
    for recs in groups.values():
        with tempfile.TemporaryDirectory(prefix="mmbench-robustness-") as tmp:
            request = request_from_record(recs[0], Path(tmp) / "protocol.yaml", Path(tmp), device)
            prep = prepare(request, registry, reporter)
        if prep.data.fingerprint != recs[0]["dataset_fingerprint"]:
            reporter.log(
                f"skip {len(recs)} run(s) of {recs[0]['dataset']}: the data changed since they ran "
                f"(fingerprint {prep.data.fingerprint} != {recs[0]['dataset_fingerprint']})"
            )
            continue
        train = split_tensors(prep.data, "train", dev_t)
        test = split_tensors(prep.data, "test", dev_t)
        spec = prep.data.input_spec()
        for rec in recs:
            plugin = registry.create("fusion", rec["fusion"])
            context = record_context_model(registry, rec)
            model = build_model(plugin, spec, rec["fusion_params"], prep.data, registry, context).to(dev_t)
            load_checkpoint(model, Path(rec["_path"]).parent / rec["checkpoint_file"], rec["fusion"])
            reporter.log(f"robustness: {record_method(rec)} seed {rec['seed']}")
            # With a context model, modalities are removed or noised per utterance inside whole dialogues.
            dialogues = context is not None and context[0].uses_dialogues
            rec["robustness"] = evaluate_robustness(
                _predictor(model, task_of(prep.data)),
                dialogue_split(prep.data, "train", train) if dialogues else train,
                dialogue_split(prep.data, "test", test) if dialogues else test,
                spec.names,
                prep.data.class_names,
                rec["protocol"]["metric"],
                supports_missing=bool(getattr(plugin, "supports_missing", False)),
                levels=levels,
                seed=int(rec["seed"]),
                task=task_of(prep.data),
            )
            done.append(rec)
    others = [r for r in pool or [] if "robustness" in r and r["_path"] not in {d["_path"] for d in done}]
    add_effective_robustness(done, others)
    for rec in done:
        atomic_write_json(Path(rec["_path"]), {k: v for k, v in rec.items() if k != "_path"})
    return done


def load_checkpoint(model: Any, file: Path, fusion: str) -> None:
    """Load best-dev weights into ``model``; a damaged checkpoint, or one whose tensors do not fit the
    model rebuilt from the record and its data, is a ``DataError`` naming the file (not a crash)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(file)
    except (SafetensorError, OSError) as exc:
        raise DataError(f"not a readable safetensors checkpoint ({exc})", path=file) from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if state[k].shape != expected[k].shape)
    if missing or unexpected or reshaped:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                parts.append(f"{len(keys)} {what} tensor(s) (e.g. {keys[0]!r})")
        if reshaped:
            k = reshaped[0]
            parts.append(
                f"{len(reshaped)} tensor(s) of another shape (e.g. {k!r}: {tuple(state[k].shape)} in the "
                f"file, {tuple(expected[k].shape)} for the data)"
            )
        raise DataError(
            f"the checkpoint does not fit the {fusion} model built from its record and data: "
            f"{'; '.join(parts)}. Was the checkpoint replaced, or the record or data changed? "
            "Re-run the record with `mmbench run` to get a matching checkpoint",
            path=file,
        )
    model.load_state_dict(state)


def add_effective_robustness(records: list[dict[str, Any]], others: list[dict[str, Any]] = ()) -> None:
    """Effective robustness against the ``late`` run of the same dataset, protocol and seed."""
    baselines = {
        (r["dataset"], r["protocol_fingerprint"], r["seed"]): r
        for r in [*others, *records]
        if r["fusion"] == BASELINE and "robustness" in r
    }
    for rec in records:
        base = baselines.get((rec["dataset"], rec["protocol_fingerprint"], rec["seed"]))
        noise = rec["robustness"]["noise"]
        if base is None:
            noise["effective_robustness"] = None
            continue
        b = base["robustness"]["noise"]
        noise["effective_robustness"] = {
            t: effective_robustness(c, b["curves"][t], noise["levels"]) for t, c in noise["curves"].items()
        }


def analyse_runs(
    runs_dir: Path, registry: Any, dataset: str | None = None, fusion: str | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """``analyse_records`` over the records under ``runs_dir`` (optionally of some dataset spec(s)
    ``NAME[:PRESET]``, comma-separated, and one fusion)."""
    from mmbench.leaderboard.build import matches_spec

    specs = [s.strip() for s in (dataset or "").split(",") if s.strip()]
    records = [
        r
        for r in load_records(runs_dir)
        if (not specs or any(matches_spec(r, s) for s in specs)) and (fusion is None or r["fusion"] == fusion)
    ]
    return analyse_records(records, registry, **kw)
