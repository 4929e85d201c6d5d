"""Shared fixtures: a throwaway lake and a small mixed dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curation import Lake
from curation.testing import make_lake
from tests.curation.ray_cluster import ray_address

# The two-node Ray cluster (session-scoped), defined once here so the curation and eval tests
# share one cluster: two definitions in two folders' conftests would start a second cluster
# while the first one's driver connection is still open.
__all__ = ["ray_address"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SAMPLE_ROWS = [
    {"text": "The quick brown fox jumps over the lazy dog near the river bank."},
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {
        "messages": [
            {"role": "user", "content": "How do I boil an egg?"},
            {"role": "assistant", "content": "Put it in boiling water for nine minutes."},
        ],
        "topic": "cooking",
    },
    {"conversations": [{"from": "human", "value": "Hi there"}, {"from": "gpt", "value": "Hello!"}]},
    {"prompt": "Capital of France?", "completion": "Paris."},
    {"prompt": "Say something kind.", "chosen": "You are doing great.", "rejected": "Go away."},
]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """An empty lake in a temporary folder."""
    return Lake.create(tmp_path / "lake")


@pytest.fixture
def sample_lake(tmp_path: Path) -> Lake:
    """A lake with one source of six rows covering every shape."""
    return make_lake(tmp_path, {"sample": SAMPLE_ROWS})
