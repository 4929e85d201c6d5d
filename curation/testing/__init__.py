"""Test helpers shipped with the package (as polars does), so tests need no model.

Tiny lakes, a fake embedder, and the check that ingest's row and bulk paths agree. Tests of
every package use these so they never need a model unless they test one.
"""

from curation.testing.agreement import assert_paths_agree
from curation.testing.fakes import FakeEmbedder, make_lake, write_jsonl

__all__ = ["FakeEmbedder", "assert_paths_agree", "make_lake", "write_jsonl"]
