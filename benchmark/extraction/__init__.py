"""mmbench.extraction.extract."""
