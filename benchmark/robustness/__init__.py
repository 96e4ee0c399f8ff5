"""mmbench.robustness.analysis."""
