"""Built-in dialogue context models (registered lazily: torch is imported only when one is built)."""

from mmbench.registry import Registry, hookimpl

_PKG = "mmbench.plugins.context"


@hookimpl
def mmbench_register_context_models(registry: Registry) -> None:
    registry.add_context_model(
        "none", f"{_PKG}.none:NoContext", "No dialogue context: each utterance classified alone (default)"
    )
    registry.add_context_model(
        "bigru", f"{_PKG}.bigru:BiGRUContext", "bc-LSTM style recurrent net over the dialogue (GRU or LSTM)"
    )
    registry.add_context_model(
        "transformer",
        f"{_PKG}.transformer:TransformerContext",
        "Self-attention over the dialogue, padding masks, learned relative positions",
    )
    registry.add_context_model(
        "dialoguernn",
        f"{_PKG}.dialoguernn:DialogueRNNContext",
        "DialogueRNN: speaker-aware party, global and emotion GRU states",
    )
