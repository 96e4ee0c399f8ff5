"""Batching by dialogue: whole dialogues padded to a batch, and the model that runs a context model.

A :class:`DialogueSplit` holds a split's utterances as device tensors (like
:class:`~mmbench.training.tensors.TensorSplit`) plus the dialogue structure: the rows of each
dialogue in order of position, and each utterance's party (0, 1, ... by first appearance in its
dialogue). A batch is a run of whole dialogues; besides the per-utterance inputs of its rows
(``[n, ...]``, dialogue by dialogue) it carries

* ``dialogue:index`` int64 ``[B, T]``: row of the batch at each dialogue position (0 when padded);
* ``dialogue:mask`` bool ``[B, T]``: True at real utterances;
* ``dialogue:speaker`` int64 ``[B, T]``: party of the utterance (0 when padded).

:class:`DialogueModel` runs the fusion model on the ``n`` real utterances (``[n, d]``; padding never
reaches it, so BatchNorm statistics are those of real utterances), places them into the padded
dialogues, runs the context model and classifies every real position: logits ``[n, C]`` in the
batch's row order. Loss and metrics are therefore computed per utterance and never see a padded
position; predictions come back in the split's own row order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.data import MultimodalData
from mmbench.errors import UsageError
from mmbench.training.tensors import TensorSplit

DIALOGUE_INDEX = "dialogue:index"
DIALOGUE_MASK = "dialogue:mask"
DIALOGUE_SPEAKER = "dialogue:speaker"


def dialogue_order(data: MultimodalData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order ``rows`` (indices into ``data``) dialogue by dialogue, by position inside each.

    Returns ``(order, offsets, party)``: ``order`` int64 ``[n]`` indexes ``rows`` (dialogues in order
    of first appearance, utterances by ``data.positions`` or else by row), ``offsets`` int64
    ``[D + 1]`` the start of each dialogue in that order, ``party`` int64 ``[n]`` (aligned with
    ``rows``) each utterance's party: its speaker's rank of first appearance in the dialogue (all
    0 without speaker ids). Raises ``UsageError`` when the data has no dialogue ids.
    """
    if "dialogue" not in data.groups:
        raise UsageError(
            f"dataset {data.name!r} has no dialogue ids (groups['dialogue']): a context model needs "
            "conversations; use --context none"
        )
    rows = np.asarray(rows, dtype=np.int64)
    dialogue = np.asarray(data.groups["dialogue"])[rows].astype(str)
    _, first, dialogue_code = np.unique(dialogue, return_index=True, return_inverse=True)
    rank_of_code = np.argsort(np.argsort(first))  # dialogues in order of first appearance
    dcode = rank_of_code[dialogue_code.reshape(-1)]
    pos = data.positions[rows] if data.positions is not None else np.arange(len(rows))
    order = np.lexsort((np.arange(len(rows)), pos, dcode)).astype(np.int64)
    counts = np.bincount(dcode, minlength=len(first))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    party = np.zeros(len(rows), dtype=np.int64)
    if "speaker" in data.groups:
        speakers = np.asarray(data.groups["speaker"])[rows].astype(str)
        for d in range(len(counts)):
            seen: dict[str, int] = {}
            for r in order[offsets[d] : offsets[d + 1]]:
                party[r] = seen.setdefault(speakers[r], len(seen))
    return order, offsets, party


class DialogueSplit(TensorSplit):
    """A split's utterances (split row order, as ``TensorSplit``) plus its dialogues.

    ``rows`` (int64 ``[n]``, device) lists the split's rows dialogue by dialogue; ``offsets``
    (numpy int64 ``[D + 1]``) delimits the dialogues in ``rows``; ``party`` (int64 ``[n]``, device,
    split row order) is each utterance's party in its dialogue. :meth:`batch_ranges` and
    :meth:`batch` count rows in ``rows`` order.
    """

    def __init__(
        self,
        inputs: dict[str, Tensor],
        labels: Tensor,
        rows: Tensor,
        offsets: np.ndarray,
        party: Tensor,
        contiguous: bool = False,
    ) -> None:
        super().__init__(inputs, labels)
        self.rows, self.offsets, self.party = rows, np.asarray(offsets, dtype=np.int64), party
        #: ``rows`` is ``0..n-1`` (the split is already stored dialogue by dialogue).
        self.contiguous = contiguous

    @property
    def n_dialogues(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Utterances per dialogue, int64 ``[D]``."""
        return np.diff(self.offsets)

    def batch_ranges(self, batch_size: int, training: bool = False) -> list[tuple[int, int]]:
        """Runs of whole dialogues holding at least ``batch_size`` utterances each (the last may hold
        fewer; a dialogue longer than ``batch_size`` is a batch of its own). ``training``: a final
        batch of a single utterance is dropped (BatchNorm cannot train on one row)."""
        ranges, start = [], 0
        for end in self.offsets[1:].tolist():
            if end - start >= batch_size:
                ranges.append((start, end))
                start = end
        if start < self.offsets[-1]:
            ranges.append((start, int(self.offsets[-1])))
        if training and len(ranges) > 1 and ranges[-1][1] - ranges[-1][0] == 1:
            ranges.pop()
        return ranges

    def batch(self, start: int, stop: int) -> tuple[dict[str, Tensor], Tensor]:
        """Rows ``[start, stop)`` of ``rows`` (whole dialogues) and their padded dialogue layout."""
        d0, d1 = np.searchsorted(self.offsets, [start, stop])
        if self.offsets[d0] != start or self.offsets[d1] != stop:
            raise ValueError(f"rows [{start}, {stop}) do not delimit whole dialogues")
        if self.contiguous:
            inputs = {k: v[start:stop] for k, v in self.inputs.items()}
            labels, party = self.labels[start:stop], self.party[start:stop]
        else:
            sel = self.rows[start:stop]
            inputs = {k: v.index_select(0, sel) for k, v in self.inputs.items()}
            labels, party = self.labels.index_select(0, sel), self.party.index_select(0, sel)
        lengths = np.diff(self.offsets[d0 : d1 + 1])
        steps = np.arange(int(lengths.max()))[None, :]
        real = steps < lengths[:, None]
        index = np.where(real, (self.offsets[d0:d1] - start)[:, None] + steps, 0)
        device = labels.device
        index_t = torch.from_numpy(index).to(device)
        mask_t = torch.from_numpy(real).to(device)
        inputs[DIALOGUE_INDEX] = index_t
        inputs[DIALOGUE_MASK] = mask_t
        inputs[DIALOGUE_SPEAKER] = party[index_t] * mask_t
        return inputs, labels

    def in_split_order(self, outputs: Tensor) -> Tensor:
        """Outputs of all batches (``rows`` order) back in the split's row order."""
        return torch.empty_like(outputs).index_copy_(0, self.rows, outputs)

    def with_inputs(self, inputs: dict[str, Tensor]) -> DialogueSplit:
        return DialogueSplit(inputs, self.labels, self.rows, self.offsets, self.party, self.contiguous)

    def take_dialogues(self, index: Tensor) -> DialogueSplit:
        """A split of the dialogues ``index`` (int64 ``[k]``) in that order, stored contiguously."""
        index = index.cpu().numpy()
        lengths = self.lengths[index]
        starts = self.offsets[:-1][index]
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions = torch.from_numpy(np.repeat(starts, lengths) + within).to(self.rows.device)
        sel = self.rows.index_select(0, positions)
        return DialogueSplit(
            {k: v.index_select(0, sel) for k, v in self.inputs.items()},
            self.labels.index_select(0, sel),
            torch.arange(len(sel), device=sel.device),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            self.party.index_select(0, sel),
            contiguous=True,
        )

    def take(self, index: Tensor) -> TensorSplit:
        raise TypeError("a DialogueSplit is reordered by whole dialogues: use take_dialogues")


def dialogue_split(data: MultimodalData, split: str, base: TensorSplit) -> DialogueSplit:
    """``base`` (the split's :func:`~mmbench.training.tensors.split_tensors`) with its dialogues."""
    order, offsets, party = dialogue_order(data, data.splits[split])
    device = base.labels.device
    return DialogueSplit(
        dict(base.inputs),
        base.labels,
        torch.from_numpy(order).to(device),
        offsets,
        torch.from_numpy(party).to(device),
    )


class DialogueModel(nn.Module):
    """Fusion per utterance -> context model per dialogue -> linear classifier per utterance.

    ``utterance``: the fusion model built with ``num_classes = d`` (its output is the fused
    utterance representation ``[n, d]``); ``context``: a module ``(x [B, T, d], mask [B, T],
    speaker [B, T]) -> [B, T, out_dim]`` with an ``out_dim`` attribute (see
    :class:`mmbench.contracts.ContextPlugin`). ``forward(batch)`` returns logits ``[n, C]`` for the
    batch's ``n`` real utterances, in its row order.
    """

    def __init__(self, utterance: nn.Module, context: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.utterance = utterance
        self.context = context
        self.head = nn.Linear(int(context.out_dim), num_classes)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        batch = dict(batch)
        index, mask = batch.pop(DIALOGUE_INDEX), batch.pop(DIALOGUE_MASK)
        speaker = batch.pop(DIALOGUE_SPEAKER)
        u = self.utterance(batch)  # [n, d]
        x = u[index] * mask.unsqueeze(-1).to(u.dtype)  # [B, T, d], zeros at padded positions
        h = self.context(x, mask, speaker)
        logits = self.head(h[mask])  # real positions, dialogue by dialogue
        return torch.empty_like(logits).index_copy_(0, index[mask], logits)

    def optimizer_groups(self, lr: float) -> list[dict[str, Any]]:
        """The utterance model's own groups (in-model encoders) plus context and head at ``lr``."""
        inner = getattr(self.utterance, "optimizer_groups", None)
        groups = inner(lr) if callable(inner) else [{"params": list(self.utterance.parameters()), "lr": lr}]
        rest = list(self.context.parameters()) + list(self.head.parameters())
        return [*groups, {"params": rest, "lr": lr}]
