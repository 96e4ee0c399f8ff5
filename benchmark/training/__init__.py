"""mmbench.training."""
