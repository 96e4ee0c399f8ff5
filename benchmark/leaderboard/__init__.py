"""Leaderboards: build (group, summarise, rank), significance, render, plots."""
