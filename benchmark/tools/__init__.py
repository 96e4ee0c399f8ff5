"""mmbench.tools."""
