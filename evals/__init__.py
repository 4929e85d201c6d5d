"""Evals: suites and metrics, written back to the lake as columns and rows."""
