"""``dialoguernn``: speaker-aware party, global and emotion GRU states.

Source: Majumder et al., "DialogueRNN: An Attentive RNN for Emotion Detection in Conversations",
AAAI 2019 (reference code: declare-lab/conv-emotion, ``DialogueRNN/model.py``). At each utterance
``t`` spoken by party ``s``:

* global state ``g_t = GRU_G([u_t ; q_{s,t-1}], g_{t-1})``;
* context ``c_t`` = attention over the earlier global states ``g_1..g_{t-1}``;
* the speaker's party state ``q_{s,t} = GRU_P([u_t ; c_t], q_{s,t-1})``; listeners keep theirs;
* emotion state ``e_t = GRU_E(q_{s,t}, e_{t-1})`` — the classifier reads ``e_t``.

Without ``causal`` the model is the paper's BiDialogueRNN: a second DialogueRNN runs over the
reversed dialogue and the two emotion states are concatenated. Padded positions change no state.
Party indices come from the batch (``speaker``: 0, 1, ... by first appearance in the dialogue).

Shapes: ``x`` ``[B, T, D]`` -> ``[B, T, hidden]`` (causal) or ``[B, T, 2 * hidden]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mmbench.plugins.context.common import BuiltinContext, SpeakerEmbedding, reverse_padded


class DialogueRNNCell(nn.Module):
    """One direction of DialogueRNN over a padded batch of dialogues."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.hidden = hidden
        self.g_cell = nn.GRUCell(dim + hidden, hidden)
        self.p_cell = nn.GRUCell(dim + hidden, hidden)
        self.e_cell = nn.GRUCell(hidden, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)  # the paper's simple attention over g
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor, speaker: Tensor) -> Tensor:
        b, t, _ = x.shape
        parties = int(speaker.max()) + 1 if speaker.numel() else 1
        h = self.hidden
        q = x.new_zeros(b, parties, h)
        g = x.new_zeros(b, h)
        e = x.new_zeros(b, h)
        rows = torch.arange(b, device=x.device)
        g_hist: list[Tensor] = []
        outputs = []
        for step in range(t):
            u, real, s = x[:, step], mask[:, step].unsqueeze(-1), speaker[:, step]
            q_s = q[rows, s]
            g_new = self.g_cell(torch.cat([u, q_s], dim=-1), g)
            if g_hist:
                hist = torch.stack(g_hist, dim=1)  # [B, t, H]
                alpha = torch.softmax(self.score(hist).squeeze(-1), dim=1)
                c = torch.einsum("bt,bth->bh", alpha, hist)
            else:
                c = torch.zeros_like(g)
            q_new_s = self.p_cell(torch.cat([u, c], dim=-1), q_s)
            e_new = self.e_cell(self.drop(q_new_s), e)
            # A padded step changes no state (its own outputs are discarded).
            g = torch.where(real, g_new, g)
            e = torch.where(real, e_new, e)
            speaking = nn.functional.one_hot(s, parties).unsqueeze(-1).bool() & real.unsqueeze(1)
            q = torch.where(speaking, q_new_s.unsqueeze(1), q)
            g_hist.append(g)
            outputs.append(e)
        return torch.stack(outputs, dim=1)


class DialogueRNNModule(nn.Module):
    """DialogueRNN (causal) or BiDialogueRNN (both directions concatenated)."""

    def __init__(self, dim: int, hidden: int, causal: bool, dropout: float, speaker_embedding: bool) -> None:
        super().__init__()
        self.speaker = SpeakerEmbedding(dim) if speaker_embedding else None
        self.forward_rnn = DialogueRNNCell(dim, hidden, dropout)
        self.backward_rnn = None if causal else DialogueRNNCell(dim, hidden, dropout)
        self.drop = nn.Dropout(dropout)
        self.out_dim = hidden * (1 if causal else 2)

    def forward(self, x: Tensor, mask: Tensor, speaker: Tensor) -> Tensor:
        if self.speaker is not None:
            x = self.speaker(x, mask, speaker)
        x = x * mask.unsqueeze(-1).to(x.dtype)
        speaker = speaker * mask
        out = self.forward_rnn(x, mask, speaker)
        if self.backward_rnn is not None:
            back = self.backward_rnn(reverse_padded(x, mask), mask, reverse_padded(speaker, mask))
            out = torch.cat([out, reverse_padded(back, mask)], dim=-1)
        return self.drop(out) * mask.unsqueeze(-1).to(out.dtype)


class DialogueRNNContext(BuiltinContext):
    """DialogueRNN (Majumder et al., AAAI 2019): party, global and emotion GRU states."""

    default_params = dict(BuiltinContext.default_params)

    def build(self, dim: int, params: dict[str, Any]) -> nn.Module:
        return DialogueRNNModule(
            dim, params["hidden"], params["causal"], params["dropout"], params["speaker_embedding"]
        )
