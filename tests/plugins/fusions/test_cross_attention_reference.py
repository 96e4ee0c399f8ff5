"""``cross_attention`` with ``seed_faithful``: the reference system's layers, widths and order.

The reference description (docs/fusions.md, "Reference system"): text 768 -> 512 (Linear, ReLU,
dropout) as the query; audio V1 512 -> 256 and V3 || V4 50 -> 128, each Linear -> ReLU ->
BatchNorm without dropout, combined 384 -> 256 (Linear, ReLU, dropout); V2 not used; visual
A2 512 -> 256 (Linear -> ReLU -> BatchNorm -> dropout); 8-head attention at width 512 per
context; [512 + 256 + 256] -> 512 -> 256 -> classes.
"""

from __future__ import annotations

import torch
from torch import nn

from mmbench.data import InputSpec, ModalitySpec, StreamSpec
from mmbench.protocol import load_protocol
from mmbench.registry.manager import build_registry

REGISTRY, _ = build_registry()
SPEC = InputSpec(
    (
        ModalitySpec("text", (StreamSpec("text", 768),)),
        ModalitySpec(
            "audio", (StreamSpec("V1", 512), StreamSpec("V2", 25), StreamSpec("V3", 25), StreamSpec("V4", 25))
        ),
        ModalitySpec("visual", (StreamSpec("A2", 512),)),
    ),
    6,
)


def build(**params):
    plugin = REGISTRY.create("fusion", "cross_attention")
    resolved = plugin.resolve_params(params)
    plugin.validate(SPEC, resolved)
    torch.manual_seed(0)
    return plugin.build(SPEC, resolved)


def call_order(module: nn.Module, x: torch.Tensor) -> list[str]:
    """The leaf modules of ``module`` in the order its forward calls them, as ``Type(in,out)``."""
    order = []

    def describe(m: nn.Module) -> str:
        if isinstance(m, nn.Linear):
            return f"Linear({m.in_features},{m.out_features})"
        if isinstance(m, nn.BatchNorm1d):
            return f"BatchNorm1d({m.num_features})"
        if isinstance(m, nn.Dropout):
            return f"Dropout({m.p})"
        return type(m).__name__

    hooks = [
        m.register_forward_hook(lambda mod, *_: order.append(describe(mod)))
        for m in module.modules()
        if not list(m.children())
    ]
    module.eval()
    with torch.no_grad():
        module(x)
    for h in hooks:
        h.remove()
    return order


def batch(n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {m.name: torch.randn(n, m.dim, generator=g) for m in SPEC.modalities}


def test_seed_faithful_layers_widths_and_order_equal_the_reference():
    model = build(seed_faithful=True)
    audio, visual = model.context_branches["audio"], model.context_branches["visual"]
    x = batch()
    assert call_order(model.query_branch, x["text"]) == [
        "Linear(768,512)",
        "Identity",
        "ReLU",
        "Dropout(0.3)",
    ]
    assert call_order(audio.main, x["audio"][:, :512]) == [
        "Linear(512,256)",
        "ReLU",
        "BatchNorm1d(256)",
        "Dropout(0.0)",
    ]
    # the second audio path reads V3 || V4 (50 columns): V2 is not an input
    assert call_order(audio.aux, x["audio"][:, 537:]) == [
        "Linear(50,128)",
        "ReLU",
        "BatchNorm1d(128)",
        "Dropout(0.0)",
    ]
    assert call_order(audio.combine, torch.zeros(4, 384)) == [
        "Linear(384,256)",
        "Identity",
        "ReLU",
        "Dropout(0.3)",
    ]
    assert call_order(visual.main, x["visual"]) == [
        "Linear(512,256)",
        "ReLU",
        "BatchNorm1d(256)",
        "Dropout(0.3)",
    ]
    for m in ("audio", "visual"):
        mha = model.attention[m].mha
        assert (mha.embed_dim, mha.num_heads, mha.kdim, mha.vdim) == (512, 8, 256, 256)
    assert [type(m).__name__ for m in model.fuse] == ["Linear", "ReLU", "Dropout"]
    assert (model.fuse[0].in_features, model.fuse[0].out_features) == (1024, 512)
    head = [(m.in_features, m.out_features) for m in model.classifier if isinstance(m, nn.Linear)]
    assert head == [(512, 256), (256, 6)]


def test_seed_faithful_ignores_v2_and_the_default_does_not():
    x = batch()
    changed = {k: v.clone() for k, v in x.items()}
    changed["audio"][:, 512:537] += 5.0  # the V2 columns
    faithful, default = build(seed_faithful=True).eval(), build().eval()
    with torch.no_grad():
        torch.testing.assert_close(faithful(x), faithful(changed))
        assert not torch.allclose(default(x), default(changed))
    # the default variant: Linear -> BatchNorm -> ReLU with dropout on both audio paths
    audio = build().context_branches["audio"]
    order = call_order(audio.main, x["audio"][:, :512])
    assert order == ["Linear(512,256)", "BatchNorm1d(256)", "ReLU", "Dropout(0.3)"]
    assert audio.aux.linear.in_features == 75


def test_reference_system_protocol_has_the_reference_recipe():
    from importlib import resources

    path = resources.files("mmbench.configs").joinpath("protocols", "reference-system.yaml")
    for dataset, lr, batch_size, accum in (("iemocap", 2e-5, 16, 4), ("meld", 1e-5, 128, 2)):
        protocol = load_protocol(dataset, user_file=path)
        train = protocol["train"]
        assert (train["loss"], train["imbalance"]) == ("focal", "oversample")
        assert (train["lr"], train["batch_size"], train["grad_accum"]) == (lr, batch_size, accum)
        assert protocol["fusion"] == {"seed_faithful": True}
        assert protocol["encoders"]["text"]["name"] == "hf-text-finetune"
        assert "datasets" not in protocol
