"""``tfidf``: TF-IDF + truncated SVD (latent semantic analysis) over raw text.

Both the vocabulary/IDF weights and the SVD are fitted on the TRAIN split only and then applied
to every split, so dev and test words never shape the features. Options: ``max_features``
(vocabulary size, default 20000), ``n_components`` (output width, default 256), ``ngram_range``
(default ``[1, 2]``), ``min_df`` (default 1), ``sublinear_tf`` (default true), ``lowercase``
(default true), ``seed`` (SVD, default 0). When the train vocabulary is smaller than
``n_components``, the SVD keeps what exists and the remaining columns are zero, so the output
width is always ``n_components``.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np

from mmbench.contracts import EncoderPlugin
from mmbench.data import MultimodalData
from mmbench.errors import UsageError

DEFAULTS: dict[str, Any] = {
    "max_features": 20000,
    "n_components": 256,
    "ngram_range": [1, 2],
    "min_df": 1,
    "sublinear_tf": True,
    "lowercase": True,
    "seed": 0,
}


class TfidfEncoder(EncoderPlugin):
    """TF-IDF + TruncatedSVD, fitted on the train split, applied to all splits."""

    def resolve(self, options: dict[str, Any]) -> dict[str, Any]:
        """Defaults updated with ``options``; unknown keys and bad values are a ``UsageError``."""
        unknown = sorted(set(options) - set(DEFAULTS))
        if unknown:
            raise UsageError(
                f"unknown option encoders.<modality>.{unknown[0]} for tfidf; "
                f"known: {', '.join(sorted(DEFAULTS))}"
            )
        opts = {**DEFAULTS, **options}
        for key in ("max_features", "n_components", "min_df"):
            value = opts[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"tfidf {key} must be a positive integer, got {value!r}")
        ngram = opts["ngram_range"]
        if (
            not isinstance(ngram, (list, tuple))
            or len(ngram) != 2
            or not all(isinstance(v, int) and v >= 1 for v in ngram)
            or ngram[0] > ngram[1]
        ):
            raise UsageError(
                f"tfidf ngram_range must be [min_n, max_n] with 1 <= min_n <= max_n, got {ngram!r}"
            )
        opts["ngram_range"] = [int(ngram[0]), int(ngram[1])]
        return opts

    def identity(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"name": "tfidf", **self.resolve(options), "scikit-learn": metadata.version("scikit-learn")}

    def encode(self, data: MultimodalData, modality: str, options: dict[str, Any]) -> dict[str, np.ndarray]:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        opts = self.resolve(options)
        if modality not in data.raw:
            raise UsageError(f"tfidf needs raw text, but modality {modality!r} of {data.name} holds features")
        texts = ["" if t is None else str(t) for t in data.raw[modality]]
        train = [texts[i] for i in data.splits["train"]]
        vectorizer = TfidfVectorizer(
            max_features=opts["max_features"],
            ngram_range=tuple(opts["ngram_range"]),
            min_df=opts["min_df"],
            sublinear_tf=opts["sublinear_tf"],
            lowercase=opts["lowercase"],
            dtype=np.float32,
        )
        try:
            train_matrix = vectorizer.fit_transform(train)
        except ValueError as exc:  # e.g. an empty vocabulary
            raise UsageError(f"tfidf cannot be fitted on the train texts of {modality!r}: {exc}") from None
        width = opts["n_components"]
        k = min(width, train_matrix.shape[1] - 1, train_matrix.shape[0] - 1)
        out = np.zeros((len(texts), width), dtype=np.float32)
        if k >= 1:
            svd = TruncatedSVD(n_components=k, random_state=opts["seed"])
            svd.fit(train_matrix)
            out[:, :k] = svd.transform(vectorizer.transform(texts))
            self.svd_ = svd
        self.vectorizer_ = vectorizer  # kept for inspection (fitted vocabulary)
        return {"tfidf": out}
