"""Built-in encoder plugins (registered lazily)."""

from mmbench.registry import Registry, hookimpl

_PKG = "mmbench.plugins.encoders"


@hookimpl
def mmbench_register_encoders(registry: Registry) -> None:
    registry.add_encoder(
        "precomputed",
        f"{_PKG}.precomputed:PrecomputedEncoder",
        "Pass-through for feature vectors already in the data",
    )
    registry.add_encoder(
        "hf-text",
        f"{_PKG}.hf_text:HFTextEncoder",
        "Hugging Face text model (default all-MiniLM-L6-v2): mean/cls/pooler or token states",
    )
    registry.add_encoder(
        "hf-text-finetune",
        f"{_PKG}.hf_text:HFTextFinetuneEncoder",
        "hf-text fine-tuned end to end inside the fusion model",
    )
    registry.add_encoder(
        "tfidf",
        f"{_PKG}.tfidf:TfidfEncoder",
        "TF-IDF + truncated SVD fitted on the train split only",
    )
