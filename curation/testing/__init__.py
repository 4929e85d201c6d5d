"""Test helpers shipped with the package (as polars does): tiny lakes and a fake embedder.

Tests of every package use these so they never need a model unless they test one.
"""

from curation.testing.fakes import FakeEmbedder, make_lake, write_jsonl

__all__ = ["FakeEmbedder", "make_lake", "write_jsonl"]
