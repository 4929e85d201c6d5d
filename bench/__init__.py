"""Benchmarks: `make bench` (or `python -m bench.run [AREA…]`) → docs/benchmarks.md."""
