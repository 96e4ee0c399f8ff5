"""Built-in fusions: shapes, gradients, the degenerate attention identity, sequences."""

import pytest
import torch
import torch.nn.functional as F

from mmbench.data import InputSpec, ModalitySpec, StreamSpec, mask_key
from mmbench.errors import UsageError
from mmbench.registry.manager import build_registry

REGISTRY, _ = build_registry()
FUSIONS = ["cross_attention", "concat", "late", "unimodal"]


def spec(sequence: bool = False, t: int = 1) -> InputSpec:
    return InputSpec(
        modalities=(
            ModalitySpec("text", (StreamSpec("text", 32),), sequence, t),
            ModalitySpec(
                "audio", (StreamSpec("V1", 24), StreamSpec("V3", 5), StreamSpec("V4", 5)), sequence, t
            ),
            ModalitySpec("visual", (StreamSpec("V1", 16),), sequence, t),
        ),
        num_outputs=6,
    )


def batch(s: InputSpec, b: int = 8, t: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {}
    for m in s.modalities:
        if t:
            out[m.name] = torch.randn(b, t, m.dim, generator=g)
            mask = torch.ones(b, t, dtype=torch.bool)
            mask[0, t // 2 :] = False
            out[mask_key(m.name)] = mask
        else:
            out[m.name] = torch.randn(b, m.dim, generator=g)
    return out


@pytest.mark.parametrize("name", FUSIONS)
def test_forward_shape_and_gradients(name):
    plugin = REGISTRY.create("fusion", name)
    s = spec()
    params = plugin.resolve_params()
    plugin.validate(s, params)
    torch.manual_seed(0)
    model = plugin.build(s, params)
    x = batch(s)
    for v in x.values():
        v.requires_grad_(True)
    logits = model(x)
    assert logits.shape == (8, 6)
    logits.sum().backward()
    used = ["text"] if name == "unimodal" else ["text", "audio", "visual"]
    for m in used:
        assert x[m].grad is not None and x[m].grad.abs().sum() > 0, m


@pytest.mark.parametrize("name", FUSIONS)
def test_sequences_with_masks(name):
    plugin = REGISTRY.create("fusion", name)
    s = spec(sequence=True, t=5)
    torch.manual_seed(0)
    model = plugin.build(s, plugin.resolve_params()).eval()
    x = batch(s, t=5)
    out = model(x)
    assert out.shape == (8, 6)
    # Padded steps must not influence the output.
    x2 = {k: v.clone() for k, v in x.items()}
    for m in s.names:
        x2[m][0, 3:] = 1e3
    assert torch.allclose(model(x2)[0], out[0], atol=1e-4)


def test_cross_attention_reference_widths():
    from mmbench.plugins.fusions.cross_attention import CrossAttentionModel

    real = InputSpec(
        (
            ModalitySpec("text", (StreamSpec("text", 768),)),
            ModalitySpec("audio", (StreamSpec("V1", 512), StreamSpec("V3", 25), StreamSpec("V4", 25))),
            ModalitySpec("visual", (StreamSpec("V1", 512),)),
        ),
        8,
    )
    model = CrossAttentionModel(real)
    assert model.query_branch.linear.weight.shape == (512, 768)
    audio = model.context_branches["audio"]
    assert audio.main.linear.weight.shape == (256, 512)
    assert audio.aux.linear.weight.shape == (128, 50)
    assert audio.combine.linear.weight.shape == (256, 384)
    assert model.context_branches["visual"].main.linear.weight.shape == (256, 512)
    assert model.attention["audio"].mha.num_heads == 8
    assert model.fuse[0].weight.shape == (512, 1024)
    assert model.classifier[0].weight.shape == (256, 512)
    assert model.classifier[-1].weight.shape == (8, 256)
    # Utterance-level: no locality slopes, the reference's parameter count exactly.
    assert model.attention["audio"].log_slope is None
    assert sum(p.numel() for p in model.parameters()) == 2_997_896
    seq = InputSpec(tuple(ModalitySpec(m.name, m.streams, True, 10) for m in real.modalities), 8)
    seq_model = CrossAttentionModel(seq)
    assert seq_model.attention["audio"].log_slope.shape == (8,)


def test_degenerate_attention_equals_full_attention():
    """With one key, the shortcut must give exactly what nn.MultiheadAttention computes."""
    from mmbench.plugins.fusions.cross_attention import GuidedAttention

    torch.manual_seed(0)
    att = GuidedAttention(64, 32, 8, 0.0).eval()
    q, c = torch.randn(4, 64), torch.randn(4, 32)
    full, _ = att.mha(q[:, None], c[:, None], c[:, None], need_weights=False)
    assert torch.allclose(att(q, c, None), full[:, 0], atol=1e-6)
    # ... and the query has no influence at all.
    assert torch.allclose(att(torch.randn(4, 64), c, None), att(q, c, None))


def test_unimodal_choice_and_errors():
    plugin = REGISTRY.create("fusion", "unimodal")
    s = spec()
    model = plugin.build(s, plugin.resolve_params({"modality": "audio"}))
    assert model.modality == "audio"
    with pytest.raises(UsageError, match="choose one of"):
        plugin.validate(s, plugin.resolve_params({"modality": "smell"}))
    with pytest.raises(UsageError, match="unknown parameter"):
        plugin.resolve_params({"nope": 1})


def test_late_learned_weights():
    plugin = REGISTRY.create("fusion", "late")
    model = plugin.build(spec(), plugin.resolve_params({"combine": "learned"}))
    assert model.weight_logits.shape == (3,)
    model(batch(spec())).sum().backward()
    assert model.weight_logits.grad is not None


@pytest.mark.parametrize("name", FUSIONS)
def test_search_space_with_fixed_trial(name):
    import optuna

    plugin = REGISTRY.create("fusion", name)
    trial = optuna.trial.FixedTrial(
        {
            "d_model": 256,
            "heads": 4,
            "classifier_hidden": 128,
            "dropout": 0.2,
            "proj_dim": 128,
            "hidden": 128,
            "combine": "learned",
            "locality": 1.0,
        }
    )
    space = plugin.search_space(trial)
    params = plugin.resolve_params(space)
    plugin.validate(spec(), params)
    assert plugin.build(spec(), params)(batch(spec())).shape == (8, 6)


def test_tensor_auto_width_fits_six_modalities():
    """proj_dim=auto keeps the fused width within budget for mfeat's six views."""
    from mmbench.plugins.fusions.tensor import proj_dim_for

    spec = InputSpec(
        modalities=tuple(ModalitySpec(f"v{i}", (StreamSpec("x", 10),)) for i in range(6)),
        num_outputs=10,
    )
    plugin = REGISTRY.create("fusion", "tensor")
    params = plugin.resolve_params({})
    plugin.validate(spec, params)
    assert proj_dim_for(params["proj_dim"], 6) == 3 and proj_dim_for(params["proj_dim"], 3) == 16
    model = plugin.build(spec, params)
    out = model({f"v{i}": torch.randn(4, 10) for i in range(6)})
    assert out.shape == (4, 10)
    with pytest.raises(UsageError, match="proj_dim <= "):
        plugin.validate(spec, plugin.resolve_params({"proj_dim": 16}))


def test_time_distance_rescales_the_context_onto_the_query_axis():
    from mmbench.plugins.fusions.cross_attention import time_distance

    q_mask = torch.tensor([[True] * 4, [True, True, False, False]])
    c_mask = torch.tensor([[True] * 4 + [False] * 4, [True] * 8])
    d = time_distance(q_mask, c_mask)
    assert d.shape == (2, 4, 8)
    # Same length: plain step offsets.
    assert torch.allclose(d[0, :, :4], (torch.arange(4.0)[None, :] - torch.arange(4.0)[:, None]).abs())
    # 8 frames over a 2-step query: frame s sits at (s + 0.5) / 4 on the query's axis.
    frames = (torch.arange(8.0) + 0.5) / 4
    assert torch.allclose(d[1, 0], (frames - 0.5).abs())
    assert torch.allclose(d[1, 1], (frames - 1.5).abs())


def test_sharp_locality_attends_to_the_frames_of_the_same_moment():
    """Huge slopes: step t sees only frame t (same rate) or frames 2t, 2t+1 (twice the rate)."""
    from mmbench.plugins.fusions.cross_attention import GuidedAttention

    torch.manual_seed(0)
    att = GuidedAttention(16, 8, 2, 0.0, locality=1e4).eval()
    mha = att.mha

    def single_key(c: torch.Tensor) -> torch.Tensor:  # attention over one key = out(v(c))
        return mha.out_proj(F.linear(c, mha.v_proj_weight, mha.in_proj_bias[32:]))

    q, c = torch.randn(3, 5, 16), torch.randn(3, 5, 8)
    mask = torch.ones(3, 5, dtype=torch.bool)
    with torch.no_grad():
        assert torch.allclose(att(q, c, mask, mask), single_key(c), atol=1e-5)
        c2 = torch.randn(3, 10, 8)
        mha.q_proj_weight.zero_()  # no content preference: two equally close frames share the weight
        mha.in_proj_bias[:16].zero_()
        out = att(q, c2, torch.ones(3, 10, dtype=torch.bool), mask)
        pairs = c2.view(3, 5, 2, 8).mean(dim=2)  # frames 2t and 2t+1 are equally close to step t
        assert torch.allclose(out, single_key(pairs), atol=1e-5)
        # Without the bias the same module mixes all frames.
        plain = GuidedAttention(16, 8, 2, 0.0).eval()
        plain.load_state_dict({k: v for k, v in att.state_dict().items() if k != "log_slope"})
        assert not torch.allclose(plain(q, c, mask, mask), single_key(c), atol=1e-3)


def test_locality_slopes_are_learned():
    from mmbench.plugins.fusions.cross_attention import GuidedAttention

    att = GuidedAttention(16, 8, 4, 0.0, locality=4.0)
    assert torch.allclose(att.log_slope.exp(), torch.tensor([4.0, 2.0, 1.0, 0.5]))
    q, c = torch.randn(2, 6, 16), torch.randn(2, 6, 8)
    att(q, c, None, None).pow(2).sum().backward()
    assert att.log_slope.grad is not None and att.log_slope.grad.abs().sum() > 0
    with pytest.raises(UsageError, match="fusion.locality"):
        plugin = REGISTRY.create("fusion", "cross_attention")
        plugin.validate(spec(), plugin.resolve_params({"locality": -1}))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_locality_bias_under_autocast(dtype):
    """The time-bias path under bf16/fp16 autocast (`--precision`): finite, close to fp32, also
    for a context with no real frame."""
    from mmbench.plugins.fusions.cross_attention import GuidedAttention

    torch.manual_seed(0)
    att = GuidedAttention(16, 8, 2, 0.0, locality=4.0).eval()
    q, c = torch.randn(3, 5, 16), torch.randn(3, 7, 8)
    q_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 5])
    c_mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [False] * 7])  # last: no real frame
    with torch.no_grad():
        ref = att(q, c, c_mask, q_mask)
        with torch.autocast("cpu", dtype=dtype):  # inside a model, branch outputs arrive in `dtype`
            low = att(q.to(dtype), c.to(dtype), c_mask, q_mask)
        # No real frame at all: attend to every frame (defined, as in `mult`), not NaN or zeros.
        everywhere = att(q[2:], c[2:], torch.ones(1, 7, dtype=torch.bool), q_mask[2:])
    torch.testing.assert_close(ref[2:], everywhere)
    assert low.dtype == dtype and torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), ref, atol=0.05, rtol=0.05)
