"""Conformance checks of a fusion plugin (``FusionConformance``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn

from mmbench.data import InputSpec
from mmbench.errors import UsageError
from mmbench.robustness.analysis import missing_key
from mmbench.testing.examples import check_listed, current_registry, example_batch, example_spec


def assert_batch_independent(alone: Tensor, in_batch: Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Fail, in words, when a sample's eval-mode logits differ alone ([C]) and inside a batch ([C])."""
    if torch.allclose(alone, in_batch, rtol=rtol, atol=atol):
        return
    diff = float((alone - in_batch).abs().max())
    raise AssertionError(
        f"in eval mode the first sample's logits change when the rest of its batch changes (largest "
        f"difference {diff:.3g}, allowed {atol:g} + {rtol:g}·|value|): the model mixes information "
        "across the items of a batch, e.g. batch norm left in training mode, attention, pooling or a "
        "softmax over the batch dimension (dim 0), or normalisation by batch statistics. Each "
        "utterance's prediction must depend on that utterance alone; sequence masks are per sample."
    )


@dataclass
class FusionCase:
    """What to test: a registered fusion, its parameter overrides, modalities it ignores by design."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    #: Modalities the fusion is meant to ignore (a unimodal baseline); they must get no gradient.
    unused_modalities: tuple[str, ...] = ()
    distribution: str | None = None
    num_classes: int = 4
    batch_size: int = 8

    def plugin(self) -> Any:
        return current_registry().create("fusion", self.name)

    def spec(self, sequence: bool = False) -> InputSpec:
        return example_spec(self.num_classes, sequence=sequence)


def _build(plugin: Any, spec: InputSpec, params: dict[str, Any], seed: int = 0) -> nn.Module:
    plugin.validate(spec, params)
    torch.manual_seed(seed)
    model = plugin.build(spec, params)
    assert isinstance(model, nn.Module), f"build() returned {type(model).__name__}, not an nn.Module"
    return model


def _check_logits(out: Any, batch_size: int, num_classes: int) -> Tensor:
    assert isinstance(out, Tensor), f"forward returned {type(out).__name__}, expected a Tensor of logits"
    assert tuple(out.shape) == (batch_size, num_classes), (
        f"logits have shape {tuple(out.shape)}, expected {(batch_size, num_classes)}"
    )
    assert out.is_floating_point(), f"logits have dtype {out.dtype}"
    assert torch.isfinite(out).all(), "logits hold NaN or inf"
    return out


class FusionConformance:
    """Checks a fusion plugin against the FusionPlugin contract.

    Set ``fusion_name`` (the registered name); optionally ``params`` (overrides of
    ``default_params``), ``unused_modalities`` and ``distribution``.
    """

    fusion_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    unused_modalities: ClassVar[tuple[str, ...]] = ()
    distribution: ClassVar[str | None] = None

    @pytest.fixture(scope="class")
    @classmethod  # pytest 10 refuses class-scoped fixtures as instance methods
    def fusion_case(cls) -> FusionCase:
        if not cls.fusion_name:
            pytest.fail(f"{cls.__name__} must set fusion_name (or override the fusion_case fixture)")
        return FusionCase(cls.fusion_name, dict(cls.params), tuple(cls.unused_modalities), cls.distribution)

    def _setup(self, case: FusionCase, sequence: bool = False) -> tuple[Any, InputSpec, dict[str, Any]]:
        plugin = case.plugin()
        return plugin, case.spec(sequence), plugin.resolve_params(case.params)

    def test_registered(self, fusion_case: FusionCase) -> None:
        check_listed("fusion", fusion_case.name, fusion_case.distribution)

    def test_default_params(self, fusion_case: FusionCase) -> None:
        from mmbench.contracts import FusionPlugin

        plugin = fusion_case.plugin()
        assert isinstance(plugin, FusionPlugin), "the registered class must derive from FusionPlugin"
        assert isinstance(plugin.default_params, dict)
        json.dumps(plugin.default_params)  # recorded in every run record: plain JSON values only
        with pytest.raises(UsageError):
            plugin.resolve_params({"__no_such_parameter__": 1})

    def test_output_shape(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case)
        model = _build(plugin, spec, params).train()
        _check_logits(
            model(example_batch(spec, fusion_case.batch_size)), fusion_case.batch_size, spec.num_outputs
        )

    def test_gradients_reach_every_modality(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case)
        model = _build(plugin, spec, params).train()
        batch = example_batch(spec, fusion_case.batch_size)
        for m in spec.names:
            batch[m].requires_grad_(True)
        target = torch.arange(fusion_case.batch_size) % spec.num_outputs
        logits = _check_logits(model(batch), fusion_case.batch_size, spec.num_outputs)
        nn.functional.cross_entropy(logits, target).backward()
        for m in spec.names:
            grad = batch[m].grad
            flows = grad is not None and bool(grad.abs().sum() > 0)
            if m in fusion_case.unused_modalities:
                assert not flows, f"modality {m!r} is declared unused but the loss depends on it"
            else:
                assert flows, f"no gradient reaches modality {m!r}: its branch is disconnected"
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert trainable, "the model has no trainable parameters"

    def test_batch_of_one_in_eval_mode(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case)
        model = _build(plugin, spec, params).eval()
        batch = example_batch(spec, fusion_case.batch_size)
        with torch.no_grad():
            full = _check_logits(model(batch), fusion_case.batch_size, spec.num_outputs)
            one = _check_logits(model({k: v[:1] for k, v in batch.items()}), 1, spec.num_outputs)
        # In eval mode a sample's logits must not depend on the rest of its batch.
        assert_batch_independent(one[0], full[0])

    def test_zeroed_modality(self, fusion_case: FusionCase) -> None:
        """A modality replaced by zeros (how robustness analysis removes it) still gives logits."""
        plugin, spec, params = self._setup(fusion_case)
        model = _build(plugin, spec, params).eval()
        batch = example_batch(spec, fusion_case.batch_size)
        with torch.no_grad():
            for m in spec.names:
                zeroed = dict(batch, **{m: torch.zeros_like(batch[m])})
                _check_logits(model(zeroed), fusion_case.batch_size, spec.num_outputs)

    def test_missing_modality_flags(self, fusion_case: FusionCase) -> None:
        """Each modality removed as robustness analysis removes it (``mmbench.robustness.analysis.without``).

        The removed modality is zeros; only a fusion that declares ``supports_missing`` also gets
        ``missing:<modality>`` flags, and all-False flags must then leave its output unchanged.
        """
        from mmbench.robustness.analysis import without
        from mmbench.training.tensors import TensorSplit

        plugin, spec, params = self._setup(fusion_case)
        flags = bool(getattr(plugin, "supports_missing", False))
        model = _build(plugin, spec, params).eval()
        b = fusion_case.batch_size
        batch = example_batch(spec, b)
        split = TensorSplit(batch, torch.arange(b) % spec.num_outputs)
        with torch.no_grad():
            present = without(split, (), flags).inputs
            sent_flags = sorted(k for k in present if k.startswith("missing:"))
            if flags:
                assert sent_flags == sorted(missing_key(m) for m in spec.names)
                full = _check_logits(model(present), b, spec.num_outputs)
                torch.testing.assert_close(
                    full, model(batch), msg="all-False missing flags changed the output"
                )
            else:
                assert not sent_flags, "a fusion without supports_missing must never receive missing flags"
            for m in spec.names:
                absent = without(split, (m,), flags).inputs
                assert torch.count_nonzero(absent[m]) == 0
                if flags:
                    assert bool(absent[missing_key(m)].all())
                _check_logits(model(absent), b, spec.num_outputs)

    def test_deterministic_under_seed(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case)
        a, b = _build(plugin, spec, params, seed=3), _build(plugin, spec, params, seed=3)
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{key} differs between two builds under the same seed"
        batch = example_batch(spec, fusion_case.batch_size)
        outs = []
        for model in (a.train(), b.train()):
            torch.manual_seed(11)  # dropout draws from the global generator
            outs.append(model(batch))
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)

    def test_checkpoint_round_trip(self, fusion_case: FusionCase) -> None:
        """Weights saved as safetensors (as runs save them) load into a fresh build unchanged."""
        from safetensors.torch import load, save

        plugin, spec, params = self._setup(fusion_case)
        trained, fresh = _build(plugin, spec, params, seed=1), _build(plugin, spec, params, seed=2)
        state = {k: v.detach().cpu().contiguous() for k, v in trained.state_dict().items()}
        fresh.load_state_dict(load(save(state)))
        batch = example_batch(spec, fusion_case.batch_size)
        with torch.no_grad():
            torch.testing.assert_close(fresh.eval()(batch), trained.eval()(batch))

    def test_search_space(self, fusion_case: FusionCase) -> None:
        """Sampled trials give known parameters that build and run; FixedTrial replays them."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        plugin, spec, _ = self._setup(fusion_case)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(2):
            trial = study.ask()
            values = plugin.search_space(trial)
            assert isinstance(values, dict), "search_space must return a dict of parameters"
            unknown = sorted(set(values) - set(plugin.default_params))
            assert not unknown, f"search_space suggests {unknown}, which default_params does not have"
            params = plugin.resolve_params({**fusion_case.params, **values})
            model = _build(plugin, spec, params).train()
            _check_logits(
                model(example_batch(spec, fusion_case.batch_size)), fusion_case.batch_size, spec.num_outputs
            )
            replay = plugin.search_space(optuna.trial.FixedTrial(dict(trial.params)))
            assert replay == values, "search_space is not a function of the trial's suggestions"
            study.tell(trial, 0.0)

    def test_sequences_with_masks(self, fusion_case: FusionCase) -> None:
        plugin, spec, params = self._setup(fusion_case, sequence=True)
        try:
            plugin.validate(spec, params)
        except UsageError as exc:
            # Not applicable: the fusion refuses sequences up front, which `mmbench run` reports as a
            # usage error (exit 2) before any training; the refusal must say why.
            assert str(exc).strip(), "validate() refused sequence inputs without a message"
            return
        model = _build(plugin, spec, params).eval()
        batch = example_batch(spec, fusion_case.batch_size)
        with torch.no_grad():
            out = _check_logits(model(batch), fusion_case.batch_size, spec.num_outputs)
            noisy = {k: v.clone() for k, v in batch.items()}
            for m in spec.names:
                noisy[m][0, 2:] = 1e3  # sample 0 has 2 real steps: the rest is padding
            torch.testing.assert_close(
                model(noisy), out, rtol=1e-4, atol=1e-4, msg="padded time steps changed the output"
            )


# ----------------------------------------------------------------------------------- datasets
