"""Tuning results as plain data: a study's summary, the comparison with the default parameters,
the exported tuned file (what ``mmbench run --params tuned`` reads) and finding a stored study.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmbench.errors import UsageError
from mmbench.tuning.storage import DEFAULT_ATTR
from mmbench.tuning.tuned_params import tuned_relpath


def _trial_row(t: Any) -> dict[str, Any]:
    duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "value": t.value,
        "default": bool(t.user_attrs.get(DEFAULT_ATTR)),
        "params": dict(t.params),
        "fusion_params": t.user_attrs.get("fusion_params"),
        "context_params": t.user_attrs.get("context_params"),
        "train_params": t.user_attrs.get("train_params"),
        "best_epoch": t.user_attrs.get("best_epoch"),
        "pruned_at_epoch": t.user_attrs.get("pruned_at_epoch"),
        "fail_reason": t.user_attrs.get("fail_reason"),
        "seconds": round(duration, 2) if duration is not None else None,
    }


def maximises(study: Any) -> bool:
    """Whether ``study`` maximises its objective (``False``: it minimises, e.g. dev MAE)."""
    from optuna.study import StudyDirection

    return study.direction == StudyDirection.MAXIMIZE


def summarize_study(study: Any, storage: str, top: int = 10) -> dict[str, Any]:
    """A finished (or running) study as plain data: counts, best and default trials, top trials."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "running": sum(t.state == TrialState.RUNNING for t in trials),
        "waiting": sum(t.state == TrialState.WAITING for t in trials),
    }
    sign = -1.0 if maximises(study) else 1.0  # the best first: highest, or lowest (MAE)
    complete = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: (sign * t.value, t.number)
    )
    defaults = [t for t in trials if t.user_attrs.get(DEFAULT_ATTR)]
    default = next((t for t in defaults if t.state == TrialState.COMPLETE), defaults[0] if defaults else None)
    best = complete[0] if complete else None
    attrs = study.user_attrs
    summary = {
        "study_name": study.study_name,
        "storage": storage,
        "dataset": attrs.get("dataset"),
        "data_name": attrs.get("data_name", attrs.get("dataset")),
        "fusion": attrs.get("fusion"),
        "metric": attrs.get("metric", "value"),
        "direction": "maximize" if sign < 0 else "minimize",
        "split": "dev",
        "seed": attrs.get("seed"),
        "protocol_fingerprint": attrs.get("protocol_fingerprint"),
        "dataset_fingerprint": attrs.get("dataset_fingerprint"),
        "study_key": attrs.get("study_key"),
        "encoders": attrs.get("encoders"),
        "counts": counts,
        "n_trials": counts["complete"] + counts["pruned"] + counts["failed"],
        "best": _trial_row(best) if best else None,
        "default": _trial_row(default) if default else None,
        "top": [_trial_row(t) for t in complete[:top]],
        "failures": [
            {"number": t.number, "reason": t.user_attrs.get("fail_reason", "?")}
            for t in trials
            if t.state == TrialState.FAIL
        ],
    }
    summary["comparison"] = compare_with_default(summary)
    return summary


def compare_with_default(summary: dict[str, Any]) -> dict[str, Any]:
    """Whether the best trial beats the default parameters on dev, and by how much."""
    best, default, metric = summary["best"], summary["default"], summary["metric"]
    if best is None:
        return {"improved": None, "delta": None, "text": "no trial completed; there is no best parameter set"}
    if default is None or default["state"] != "complete":
        if default is None:
            how = "were not evaluated"
        else:
            reason = f", {default['fail_reason']}" if default["fail_reason"] else ""
            how = f"did not complete (trial {default['number']}: {default['state']}{reason})"
        text = f"best dev {metric} {best['value']:.4f} (trial {best['number']}); the default parameters {how}"
        return {"improved": None, "delta": None, "text": text}
    delta = best["value"] - default["value"]
    # ``direction`` is absent from summaries made before minimised studies: they maximised.
    improved = delta > 0 if summary.get("direction", "maximize") == "maximize" else delta < 0
    if improved:
        text = (
            f"tuning improved dev {metric} from {default['value']:.4f} (default parameters, trial "
            f"{default['number']}) to {best['value']:.4f} (trial {best['number']}): {delta:+.4f}"
        )
    else:
        text = (
            f"tuning did not improve on the default parameters: their dev {metric} "
            f"{default['value']:.4f} (trial {default['number']}) is the best of "
            f"{summary['counts']['complete']} completed trials"
        )
    return {"improved": improved, "delta": delta, "text": text}


def export_tuned(summary: dict[str, Any], path: Path) -> Path:
    """Write the best trial's parameters and their provenance (the file ``--params tuned`` reads)."""
    import yaml

    from mmbench import __version__
    from mmbench.records import atomic_write_text

    best = summary["best"]
    if best is None:
        raise UsageError(f"study {summary['study_name']} has no completed trial to export")
    counts = summary["counts"]
    doc = {
        "dataset": summary["data_name"],
        "fusion": summary["fusion"],
        "metric": summary["metric"],
        "split": "dev",
        "best_value": round(float(best["value"]), 6),
        "best_trial": best["number"],
        "default_value": round(float(summary["default"]["value"]), 6)
        if summary["default"] and summary["default"]["value"] is not None
        else None,
        "params": best["fusion_params"] or {},
        "train": best["train_params"] or {},
        "study_name": summary["study_name"],
        "storage": summary["storage"],
        "n_trials": summary["n_trials"],
        "trials": {k: counts[k] for k in ("complete", "pruned", "failed")},
        "protocol_fingerprint": summary["protocol_fingerprint"],
        "dataset_fingerprint": summary["dataset_fingerprint"],
        "study_key": summary.get("study_key"),
        "encoders": summary.get("encoders"),
        "seed": summary["seed"],
        "mmbench_version": __version__,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    header = (
        f"# Tuned by `mmbench tune` (study {summary['study_name']}); selected on the dev split.\n"
        f"# Retrain on every protocol seed and evaluate test once:\n"
        f"#   mmbench run --fusion {summary['fusion']} --dataset {summary['dataset']} --params tuned\n"
    )
    path = Path(path)
    atomic_write_text(path, header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return path


def default_export_path(summary: dict[str, Any]) -> Path:
    """``configs/tuned/<dataset>/<fusion>.yaml``, where ``--params tuned`` looks first."""
    return tuned_relpath(summary["data_name"], summary["fusion"])


def find_study_name(storage: Any, dataset: str, fusion: str) -> str:
    """The study of (dataset, fusion) in ``storage``; the most recent one if there are several."""
    import optuna

    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    matching = [
        s
        for s in summaries
        if s.user_attrs.get("dataset") == dataset and s.user_attrs.get("fusion") == fusion
    ]
    if not matching:
        names = ", ".join(sorted(s.study_name for s in summaries)) or "(none)"
        raise UsageError(
            f"no study of fusion {fusion!r} on dataset {dataset!r} in this storage; studies: {names}"
        )
    matching.sort(key=lambda s: (s.datetime_start is not None, s.datetime_start or datetime.min))
    return matching[-1].study_name


def load_study(storage: Any, name: str) -> Any:
    """The study ``name``; an unknown name is a usage error listing the studies there."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = ", ".join(sorted(optuna.get_all_study_names(storage))) or "(none)"
        raise UsageError(f"no study named {name!r} in this storage; studies: {names}") from None
