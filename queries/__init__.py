"""Mixes: YAML + SQL specs over a pinned `records` version, materialized as row references."""
