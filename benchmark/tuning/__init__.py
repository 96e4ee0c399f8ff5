"""mmbench.tuning.study."""
