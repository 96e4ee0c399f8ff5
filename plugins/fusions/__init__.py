"""Built-in fusion plugins (registered lazily: torch is imported only when a model is built)."""

from mmbench.registry import Registry, hookimpl

_PKG = "mmbench.plugins.fusions"


@hookimpl
def mmbench_register_fusions(registry: Registry) -> None:
    registry.add_fusion(
        "cross_attention",
        f"{_PKG}.cross_attention:CrossAttentionFusion",
        "Reference: text-guided 8-head cross-modal attention over audio and visual",
    )
    registry.add_fusion(
        "concat", f"{_PKG}.concat:ConcatFusion", "Early fusion: projections concatenated, MLP"
    )
    registry.add_fusion(
        "late", f"{_PKG}.late:LateFusion", "Late fusion: per-modality classifiers, logits combined"
    )
    registry.add_fusion("unimodal", f"{_PKG}.unimodal:UnimodalFusion", "Baseline: one modality only")
    registry.add_fusion(
        "tensor", f"{_PKG}.tensor:TensorFusion", "Tensor Fusion Network: outer product of projections"
    )
    registry.add_fusion(
        "low_rank", f"{_PKG}.low_rank:LowRankFusion", "Low-rank Multimodal Fusion: modality-specific factors"
    )
    registry.add_fusion("gated", f"{_PKG}.gated:GatedFusion", "Gated Multimodal Unit over M modalities")
    registry.add_fusion(
        "mult", f"{_PKG}.mult:MulTFusion", "Multimodal Transformer: pairwise cross-modal attention"
    )
