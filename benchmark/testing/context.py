"""Conformance checks for dialogue context models (import them from :mod:`mmbench.testing`).

A context model's own tests subclass :class:`ContextConformance` and name the model::

    from mmbench.testing import ContextConformance

    class TestMyContext(ContextConformance):
        context_name = "my-context"

Each check can also be called directly (``check_padding_invariance(plugin, params)``...). The
checks build the module that ``ContextPlugin.build`` returns and feed it padded dialogues
``x [B, T, D]``, ``mask [B, T]``, ``speaker [B, T]``:

* **padding invariance**: the outputs at real utterances do not change when the padded positions
  hold other values, or when the batch is padded to a longer ``T``;
* **causal leak**: with ``causal: true``, changing (or removing) future utterances changes no output
  at earlier positions;
* **uses context**: some output depends on another utterance of its dialogue;
* **long dialogues**: a dialogue of more than 100 utterances runs and gives finite outputs.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import optuna
import pytest
import torch
from torch import Tensor, nn

from mmbench.errors import UsageError

DIM = 12


def example_dialogues(
    lengths: tuple[int, ...] = (5, 3, 7), dim: int = DIM, pad_to: int | None = None, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """Random padded dialogues: ``x`` ``[B, T, dim]`` (random values at padded positions too),
    ``mask`` ``[B, T]`` and ``speaker`` ``[B, T]`` (two or three parties; 0 where padded)."""
    g = torch.Generator().manual_seed(seed)
    t = pad_to or max(lengths)
    x = torch.randn(len(lengths), t, dim, generator=g)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    speaker = torch.randint(0, 3, (len(lengths), t), generator=g) * mask
    return x, mask, speaker


def build_context(plugin: Any, params: dict[str, Any], dim: int = DIM, seed: int = 0) -> nn.Module:
    """Validate ``params`` and build the module in eval mode; checks ``out_dim``."""
    plugin.validate(params)
    torch.manual_seed(seed)
    module = plugin.build(dim, params)
    assert isinstance(module, nn.Module), f"build() returned {type(module).__name__}, not an nn.Module"
    assert isinstance(getattr(module, "out_dim", None), int), "the context module must expose out_dim (int)"
    return module.eval()


def _run(module: nn.Module, x: Tensor, mask: Tensor, speaker: Tensor) -> Tensor:
    with torch.no_grad():
        out = module(x, mask, speaker)
    b, t = mask.shape
    assert tuple(out.shape) == (b, t, module.out_dim), (
        f"output shape {tuple(out.shape)}, expected {(b, t, module.out_dim)}"
    )
    return out


def check_padding_invariance(plugin: Any, params: dict[str, Any]) -> None:
    """Outputs at real positions ignore padded values and the padded length."""
    module = build_context(plugin, params)
    x, mask, speaker = example_dialogues()
    base = _run(module, x, mask, speaker)
    noisy = x.clone()
    noisy[~mask] = 1e3 * torch.randn(int((~mask).sum()), x.shape[-1])
    torch.testing.assert_close(_run(module, noisy, mask, speaker)[mask], base[mask], atol=1e-5, rtol=1e-5)
    x2, mask2, speaker2 = example_dialogues(pad_to=x.shape[1] + 6)
    x2[:, : x.shape[1]][mask] = x[mask]
    speaker2[:, : x.shape[1]] = speaker
    speaker2 = speaker2 * mask2
    torch.testing.assert_close(_run(module, x2, mask2, speaker2)[mask2], base[mask], atol=1e-5, rtol=1e-5)


def check_causal(plugin: Any, params: dict[str, Any], cut: int = 2) -> None:
    """With ``causal: true``: outputs at positions ``<= cut`` ignore every later utterance."""
    module = build_context(plugin, {**params, "causal": True})
    x, mask, speaker = example_dialogues(lengths=(6, 4, 7))
    base = _run(module, x, mask, speaker)
    changed = x.clone()
    changed[:, cut + 1 :] = torch.randn_like(changed[:, cut + 1 :]) * 3
    other_speaker = speaker.clone()
    other_speaker[:, cut + 1 :] = (other_speaker[:, cut + 1 :] + 1) % 3 * mask[:, cut + 1 :]
    after = _run(module, changed, mask, other_speaker)
    torch.testing.assert_close(after[:, : cut + 1], base[:, : cut + 1], atol=1e-5, rtol=1e-5)
    short = mask.clone()
    short[:, cut + 1 :] = False  # the dialogue ends at cut: the past is all a causal model sees
    truncated = _run(module, x, short, speaker * short)
    torch.testing.assert_close(truncated[short], base[short], atol=1e-5, rtol=1e-5)


def check_uses_context(plugin: Any, params: dict[str, Any]) -> None:
    """Some utterance's output depends on another utterance of its dialogue (the second one's
    features are changed; outputs at other positions must move). Without ``causal``."""
    module = build_context(plugin, {**params, "causal": False})
    x, mask, speaker = example_dialogues()
    base = _run(module, x, mask, speaker)
    changed = x.clone()
    changed[:, 1] += 5.0
    after = _run(module, changed, mask, speaker)
    others = mask.clone()
    others[:, 1] = False
    assert not torch.allclose(after[others], base[others]), "no output depends on another utterance"


def check_long_dialogue(plugin: Any, params: dict[str, Any], length: int = 130) -> None:
    """A dialogue of ``length`` (> 100) utterances next to a short one: finite outputs, gradients."""
    module = build_context(plugin, params).train()
    x, mask, speaker = example_dialogues(lengths=(length, 3))
    x.requires_grad_(True)
    out = module(x, mask, speaker)
    assert torch.isfinite(out[mask]).all(), "outputs hold NaN or inf"
    out[mask].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


class ContextConformance:
    """Checks a context model plugin against the ContextPlugin contract (set ``context_name``)."""

    context_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}

    def plugin(self) -> Any:
        from mmbench.registry import get_registry

        if not self.context_name:
            pytest.fail(f"{type(self).__name__} must set context_name")
        return get_registry().create("context", self.context_name)

    def resolved(self) -> dict[str, Any]:
        return self.plugin().resolve_params(dict(self.params))

    def test_registered(self) -> None:
        from mmbench.contracts import ContextPlugin
        from mmbench.registry import get_registry

        assert self.context_name in get_registry().names("context")
        plugin = self.plugin()
        assert isinstance(plugin, ContextPlugin), "the registered class must derive from ContextPlugin"
        json.dumps(plugin.default_params)  # recorded in every run record: plain JSON values only
        with pytest.raises(UsageError):
            plugin.resolve_params({"__no_such_parameter__": 1})
        assert "causal" in plugin.default_params, "every context model must take the causal flag"

    def test_padding_invariance(self) -> None:
        check_padding_invariance(self.plugin(), self.resolved())

    def test_causal_leak(self) -> None:
        check_causal(self.plugin(), self.resolved())

    def test_uses_context(self) -> None:
        check_uses_context(self.plugin(), self.resolved())

    def test_long_dialogue(self) -> None:
        check_long_dialogue(self.plugin(), self.resolved())

    def test_search_space(self) -> None:
        """Sampled trials give known parameters that validate and build; FixedTrial replays them."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        plugin = self.plugin()
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(2):
            trial = study.ask()
            values = plugin.search_space(trial)
            unknown = sorted(set(values) - set(plugin.default_params))
            assert not unknown, f"search_space suggests {unknown}, which default_params does not have"
            params = plugin.resolve_params({**self.params, **values})
            x, mask, speaker = example_dialogues()
            _run(build_context(plugin, params), x, mask, speaker)
            assert plugin.search_space(optuna.trial.FixedTrial(dict(trial.params))) == values
            study.tell(trial, 0.0)
