"""Optuna tuning on the dev split: search spaces, storage, studies, tuned parameters."""
