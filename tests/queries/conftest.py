"""Fixtures for the mix tests: lakes with the enrichment columns mixes select on.

The columns are computed by a tiny deterministic ColumnStep (words as tokens, a hash as quality)
through the same `curation.steps.apply` the real steps use, so no model is needed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from curation import Lake
from curation.steps.base import apply
from curation.testing import make_lake

TOPICS = ("food", "travel", "music", "sport")


def chat_rows(n: int, tag: str, start: int = 0) -> list[dict[str, Any]]:
    """`n` distinct chat rows; meta has a topic and a price."""
    return [
        {
            "messages": [
                {"role": "user", "content": f"{tag} question {i}: " + "word " * (i % 17)},
                {"role": "assistant", "content": f"{tag} answer {i}" + " more" * (i % 23)},
            ],
            "topic": TOPICS[i % len(TOPICS)],
            "price": round(3.5 + i * 1.25, 2),
        }
        for i in range(start, start + n)
    ]


def text_rows(n: int, tag: str) -> list[dict[str, Any]]:
    """`n` distinct plain-text rows."""
    return [{"text": f"{tag} document {i} " + "lorem " * (i % 11)} for i in range(n)]


def _unit(record_id: str, salt: str) -> float:
    digest = hashlib.blake2b(f"{salt}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class FakeEnrich:
    """n_tokens (words), quality_heuristic_v1 (hash), is_dup, contaminated, cluster."""

    name = "fake_enrich_v1"
    input_columns: tuple[str, ...] = ("id", "text")

    def __init__(self, dup_rate: float = 0.1, contaminated_rate: float = 0.05) -> None:
        self.dup_rate = dup_rate
        self.contaminated_rate = contaminated_rate

    def params(self) -> dict[str, Any]:
        return {"dup_rate": self.dup_rate, "contaminated_rate": self.contaminated_rate}

    def output_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("n_tokens", pa.int32()),
                pa.field("quality_heuristic_v1", pa.float32()),
                pa.field("is_dup", pa.bool_()),
                pa.field("contaminated", pa.bool_()),
                pa.field("cluster", pa.int32()),
            ]
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        ids = batch.column("id").to_pylist()
        texts = batch.column("text").to_pylist()
        return pa.RecordBatch.from_pydict(
            {
                "n_tokens": [len(t.split()) for t in texts],
                "quality_heuristic_v1": [_unit(i, "q") for i in ids],
                "is_dup": [_unit(i, "d") < self.dup_rate for i in ids],
                "contaminated": [_unit(i, "c") < self.contaminated_rate for i in ids],
                "cluster": [int(_unit(i, "k") * 5) for i in ids],
            },
            schema=self.output_schema(),
        )


def enriched_lake(tmp_path: Path, **step_args: Any) -> Lake:
    """A lake with 400 chat rows (source chat), 150 text rows (source web) and the columns."""
    lake = make_lake(tmp_path, {"chat": chat_rows(400, "chat"), "web": text_rows(150, "web")})
    apply(FakeEnrich(**step_args), lake)
    return lake


@pytest.fixture(scope="module")
def shared_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """One enriched lake per test module, for tests that only read or write their own mix."""
    return enriched_lake(tmp_path_factory.mktemp("mixlake"))


@pytest.fixture
def fresh_lake(tmp_path: Path) -> Lake:
    """An enriched lake of its own, for tests that change `records`."""
    return enriched_lake(tmp_path)
