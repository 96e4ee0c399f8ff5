"""mmbench.inspection.checks."""
