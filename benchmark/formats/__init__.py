"""mmbench.formats."""
