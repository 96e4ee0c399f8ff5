"""mmbench.ui."""
