"""mmbench.runner.run."""
