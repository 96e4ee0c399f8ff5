"""Linear probes and 2-D projections of a dataset's features (part of ``mmbench inspect``).

Linear probes: an L2 logistic regression (``C`` = :data:`PROBE_C`) on the train-standardised
features, fitted on train and scored on dev, beside the majority-class baseline; signal is
judged with Cohen's kappa (see :mod:`mmbench.inspection.checks`). Projections: PCA of the
all-modality view (and t-SNE on request) of a sample of at most ``max_points`` rows.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from mmbench.data import SPLITS, MultimodalData

PROBE_C = 0.01
PROBE_MAX_ITER = 300
PROBE_TOL = 1e-3  # the probe needs its predictions, not the last digit of its weights
TSNE_MAX_POINTS = 1500
TSNE_ITERATIONS = 500
PCA_FIT_MAX_ROWS = 20_000
MIN_KAPPA_MARGIN = 0.02
ALL = "all modalities"


# ------------------------------------------------------------------------ probes


def kappa_and_margin(cm: np.ndarray) -> tuple[float, float]:
    """Cohen's kappa from a confusion matrix, and 2 standard errors of kappa under chance."""
    n = float(cm.sum())
    if n == 0:
        return 0.0, 1.0
    po = float(np.trace(cm)) / n
    pe = float((cm.sum(axis=1) * cm.sum(axis=0)).sum()) / (n * n)
    if pe >= 1.0:
        return 0.0, 1.0
    kappa = (po - pe) / (1.0 - pe)
    margin = max(MIN_KAPPA_MARGIN, 2.0 * math.sqrt(pe / (n * (1.0 - pe))))
    return kappa, margin


def _scores(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    from mmbench.metrics import classification_metrics, confusion_matrix

    m = classification_metrics(y_true, y_pred, class_names)
    kappa, margin = kappa_and_margin(confusion_matrix(y_true, y_pred, len(class_names)))
    return {
        "accuracy": round(m["accuracy"], 4),
        "weighted_f1": round(m["weighted_f1"], 4),
        "macro_f1": round(m["macro_f1"], 4),
        "kappa": round(kappa, 4),
        "chance_margin": round(margin, 4),
    }


def linear_probe(x: np.ndarray, y: np.ndarray, train: np.ndarray, dev: np.ndarray) -> tuple[np.ndarray, bool]:
    """Fit an L2 logistic regression on train rows; predict dev rows. Returns (pred, converged)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y[train])) < 2:
        return np.full(len(dev), y[train][0]), True
    clf = LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER, tol=PROBE_TOL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(x[train], y[train])
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return clf.predict(x[dev]), converged


def probe_report(data: MultimodalData, standardised: dict[str, np.ndarray]) -> dict[str, Any]:
    """Linear probes per modality and on all modalities (train -> dev) and the verdict line."""
    y = data.labels
    train, dev = data.splits["train"], data.splits["dev"]
    majority = int(np.bincount(y[train], minlength=data.num_classes).argmax())
    rows = []
    views = {m: [m] for m in standardised}
    if len(standardised) > 1:
        views[ALL] = list(standardised)
    for label, mods in views.items():
        x = (
            np.concatenate([standardised[m] for m in mods], axis=1)
            if len(mods) > 1
            else standardised[mods[0]]
        )
        pred, converged = linear_probe(x, y, train, dev)
        row = {"probe": label, "modalities": mods, "dim": int(x.shape[1]), "converged": converged}
        row.update(_scores(y[dev], pred, data.class_names))
        row["beats_chance"] = row["kappa"] > row["chance_margin"]
        rows.append(row)
    base = {"probe": "majority class", "class": data.class_names[majority]}
    base.update(_scores(y[dev], np.full(len(dev), majority), data.class_names))
    verdict, kind = probe_verdict(rows)
    return {
        "model": f"logistic regression (L2, C={PROBE_C}) on train-standardised features",
        "fit_on": "train",
        "scored_on": "dev",
        "n_train": int(len(train)),
        "n_dev": int(len(dev)),
        "rows": rows,
        "majority": base,
        "verdict": verdict,
        "verdict_kind": kind,
    }


def probe_verdict(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """One honest line on what the probes show, and a machine-readable kind."""
    singles = [r for r in rows if r["probe"] != ALL]
    joint = next((r for r in rows if r["probe"] == ALL), None)
    best = max(singles, key=lambda r: r["kappa"])
    if not any(r["beats_chance"] for r in rows):
        head = (
            "No linear probe, neither a single modality nor all modalities together, beats chance"
            if joint
            else "The linear probe does not beat chance"
        )
        return (
            f"{head} on dev (Cohen's kappa within {max(r['chance_margin'] for r in rows):.3f} of the "
            "majority-class baseline's 0): the signal, if any, is not linearly available in these "
            "features; expect linear and late fusions to stay near chance, and use nonlinear fusions "
            "(e.g. cross_attention) to look for interactions between modalities.",
            "no_linear_signal",
        )
    if joint is None:
        return (
            f"The {best['probe']} probe beats chance on dev (kappa {best['kappa']:.3f}, accuracy "
            f"{best['accuracy']:.3f}).",
            "single_modality",
        )
    if joint["kappa"] - best["kappa"] > joint["chance_margin"]:
        return (
            f"The all-modality probe (kappa {joint['kappa']:.3f}, accuracy {joint['accuracy']:.3f}) "
            f"clearly beats the best single modality ({best['probe']}: kappa {best['kappa']:.3f}, "
            f"accuracy {best['accuracy']:.3f}): together the modalities carry more linearly usable "
            "signal than any one of them (complementary information, or independent noisy views of "
            "the label), so fusing them should pay off.",
            "complementary",
        )
    chance = [r["probe"] for r in singles if not r["beats_chance"]]
    tail = f"; {', '.join(chance)} alone stay(s) at chance" if chance else ""
    return (
        f"The all-modality probe (kappa {joint['kappa']:.3f}) is not clearly better than the best "
        f"single modality ({best['probe']}: kappa {best['kappa']:.3f}){tail}: linearly, the other "
        "modalities add little to it (redundant or only nonlinearly useful information).",
        "dominated_by_one",
    )


# ------------------------------------------------------------------------ projections


def plot_sample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` rows, drawn without replacement (seeded)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def project(
    data: MultimodalData,
    standardised: dict[str, np.ndarray],
    joint: np.ndarray,
    *,
    tsne: bool,
    max_points: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """2-D PCA (fitted on train rows) of each modality and of all together; optional t-SNE."""
    from sklearn.decomposition import PCA

    idx = plot_sample(data.n, max_points, seed)
    split_of = np.empty(data.n, dtype=object)
    for s in SPLITS:
        split_of[data.splits[s]] = s
    train = data.splits["train"]
    if len(train) > PCA_FIT_MAX_ROWS:
        train = np.sort(np.random.default_rng(seed).choice(train, size=PCA_FIT_MAX_ROWS, replace=False))
    panels = dict(standardised)
    if len(standardised) > 1:
        panels[ALL] = joint
    pca_points, explained = {}, {}
    for name, x in panels.items():
        k = min(2, x.shape[1], len(train))
        # A panel constant on train (e.g. one constant feature column) has no variance to share out:
        # its explained-variance ratio is 0/0. Reported as 0, without numpy's divide warning.
        with np.errstate(invalid="ignore", divide="ignore"):
            pca = PCA(n_components=k, random_state=seed).fit(x[train])
        coords = pca.transform(x[idx])
        if k < 2:
            coords = np.pad(coords, ((0, 0), (0, 2 - k)))
        pca_points[name] = coords.astype(np.float32)
        explained[name] = [round(float(np.nan_to_num(v)), 4) for v in pca.explained_variance_ratio_]
    points: dict[str, Any] = {
        "labels": data.labels[idx],
        "splits": split_of[idx].astype(str),
        "class_names": list(data.class_names),
        "pca": pca_points,
    }
    info: dict[str, Any] = {
        "points": int(len(idx)),
        "seed": seed,
        "pca_explained_variance": explained,
        "tsne_points": None,
    }
    if tsne:
        t_idx = plot_sample(len(idx), min(TSNE_MAX_POINTS, max_points), seed + 1)
        points["tsne"] = {name: tsne_2d(x[idx[t_idx]], seed) for name, x in panels.items()}
        points["tsne_labels"] = points["labels"][t_idx]
        info["tsne_points"] = int(len(t_idx))
    return points, info


def tsne_2d(x: np.ndarray, seed: int) -> np.ndarray:
    """t-SNE of rows (after PCA to at most 50 dimensions, the usual speed-up)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    k = min(50, x.shape[1], len(x))
    reduced = PCA(n_components=k, random_state=seed).fit_transform(x) if x.shape[1] > k else x
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    return (
        TSNE(n_components=2, init="pca", perplexity=perplexity, max_iter=TSNE_ITERATIONS, random_state=seed)
        .fit_transform(reduced)
        .astype(np.float32)
    )
