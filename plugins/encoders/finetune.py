"""Torch side of ``hf-text``: pooling, and the text module fine-tuned inside the fusion model.

Imported only when a model is encoded or built, so registering the plugin never imports torch.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from mmbench.errors import UsageError


def pool(hidden: Tensor, mask: Tensor, pooling: str, pooler_output: Any = None) -> Tensor:
    """``[B, T, D]`` states and ``[B, T]`` mask -> ``[B, D]`` by masked mean, [CLS] or the pooler."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "pooler":
        if pooler_output is None:
            raise UsageError("pooling=pooler: this model has no pooler layer; use pooling=mean or cls")
        return pooler_output
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


class HFTextModule(nn.Module):
    """Token tensors -> pooled embedding ``[B, D]`` (or states ``[B, T, D]`` + mask), trained end to end.

    Batches carry the dataset-wide padded ``input_ids``/``attention_mask``; for pooled output
    each batch is trimmed to its own longest text first (dynamic padding).
    """

    def __init__(self, model: nn.Module, pooling: str, output: str) -> None:
        super().__init__()
        self.model = model
        self.pooling, self.output = pooling, output

    def forward(self, tokens: dict[str, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        if self.output == "sequence":
            out = self.model(input_ids=ids, attention_mask=mask)
            return out.last_hidden_state, mask.bool()
        steps = int(mask.sum(1).max())
        ids, mask = ids[:, :steps], mask[:, :steps]
        out = self.model(input_ids=ids, attention_mask=mask)
        return pool(out.last_hidden_state, mask, self.pooling, getattr(out, "pooler_output", None))
