"""Robustness: modality removal and noise sweeps over trained runs, contributions, plots."""
