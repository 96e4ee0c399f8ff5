"""``mfeat``: UCI Multiple Features, real data shipped inside the package (nothing to download).

2,000 handwritten digits (200 per class), six feature views, each a modality with one stream:
``fou`` 76 Fourier coefficients of the character shapes, ``fac`` 216 profile correlations,
``kar`` 64 Karhunen-Loève coefficients, ``pix`` 240 pixel averages in 2 x 3 windows, ``zer`` 47
Zernike moments, ``mor`` 6 morphological features. Licence: CC BY 4.0 (see
``data/MFEAT_LICENSE.txt``).

Split: fixed, stratified by digit, 60/20/20 (1,200 / 400 / 400), stored in ``data/mfeat.npz``.
By default (``data.standardize: true``) each feature is z-scored with the **train** split's mean
and standard deviation, because the views' scales differ by four orders of magnitude.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.contracts import DatasetPlugin
from mmbench.data import MultimodalData
from mmbench.errors import UsageError

VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")


def load_mfeat(standardize: bool = True) -> MultimodalData:
    """The shipped data as ``MultimodalData`` (float32 features)."""
    with resources.files("mmbench.plugins.datasets").joinpath("data", "mfeat.npz").open("rb") as fh:
        npz = np.load(fh, allow_pickle=False)
        raw = {v: npz[v] for v in VIEWS}
        labels = npz["labels"].astype(np.int64)
        splits = {s: npz[f"split_{s}"].astype(np.int64) for s in ("train", "dev", "test")}
    modalities = {}
    for view, x in raw.items():
        if standardize:
            train = x[splits["train"]]
            std = train.std(axis=0)
            x = (x - train.mean(axis=0)) / np.where(std > 0, std, 1.0)
        modalities[view] = {view: x.astype(np.float32)}
    return MultimodalData(
        name="mfeat",
        modalities=modalities,
        labels=labels,
        class_names=[str(d) for d in range(10)],
        splits=splits,
        ids=[f"mfeat{i:04d}" for i in range(len(labels))],
        meta={
            "source": "UCI Multiple Features (mmbench.plugins.datasets/data/mfeat.npz)",
            "split_scheme": "stratified 60/20/20, seed 0 (fixed in mfeat.npz)",
            "standardize": "train-split z-score" if standardize else "none",
        },
    )


class MfeatDataset(DatasetPlugin):
    """UCI Multiple Features; options: ``standardize`` (default true)."""

    def load(self, path: Path | None, options: dict[str, Any]) -> MultimodalData:
        unknown = sorted(set(options) - {"standardize"})
        if unknown:
            raise UsageError(
                f"unknown option(s) data.{', data.'.join(unknown)} for dataset mfeat; known: standardize"
            )
        if path is not None:
            raise UsageError("dataset mfeat ships with mmbench; --data (or MMBENCH_DATA) is not used for it")
        return load_mfeat(bool(options.get("standardize", True)))
