"""Embeddings: the vector column, provenance, where, no-op reruns, resume, index, real MiniLM."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from curation import CurationError
from curation.steps import column_provenance
from curation.steps.embed import SentenceEmbedder, embed, embedding_model, has_index
from curation.testing import FakeEmbedder, make_lake

ROWS = [
    {"text": f"note {i} about {['cats', 'dogs', 'tea'][i % 3]} and more words"} for i in range(60)
]


def test_embed_writes_fixed_size_vectors_with_provenance(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"notes": ROWS})
    report = embed(lake, FakeEmbedder(16))
    assert report.step.rows_computed == 60 and not report.indexed
    ds = lake.dataset("records")
    field = ds.schema.field("embedding")
    assert field.type.list_size == 16
    assert column_provenance(field)["params"] == {"model": "fake-hash-16", "dim": 16}
    assert embedding_model(lake) == "fake-hash-16"
    table = ds.to_table(columns=["text", "embedding"])
    first = np.array(table.column("embedding")[0].as_py(), dtype=np.float32)
    expected = FakeEmbedder(16).encode([table.column("text")[0].as_py()])[0]
    np.testing.assert_allclose(first, expected, rtol=1e-6)


def test_where_then_fill_then_noop(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"notes": ROWS})
    first = embed(lake, FakeEmbedder(8), where="text LIKE '%cats%'")
    assert first.step.rows_computed == 20 and first.rows_with_vectors == 20
    second = embed(lake, FakeEmbedder(8))
    assert second.step.rows_computed == 40 and second.rows_with_vectors == 60
    version = lake.latest_version()
    third = embed(lake, FakeEmbedder(8))
    assert third.step.no_op and lake.latest_version() == version


def test_other_model_refuses_then_replace(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"notes": ROWS})
    embed(lake, FakeEmbedder(8))
    with pytest.raises(CurationError, match="--replace"):
        embed(lake, FakeEmbedder(16))
    report = embed(lake, FakeEmbedder(16), replace=True)
    assert report.dim == 16
    assert lake.dataset("records").schema.field("embedding").type.list_size == 16


class _Crashing(FakeEmbedder):
    """Same name as FakeEmbedder(8) but dies on the second batch, like a Ctrl-C."""

    def __init__(self) -> None:
        super().__init__(8)
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return super().encode(texts)


def test_interrupted_embed_resumes(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"notes": ROWS})
    version = lake.latest_version()
    with pytest.raises((KeyboardInterrupt, CurationError)):
        embed(lake, _Crashing(), batch_size=20)
    assert lake.latest_version() == version  # nothing committed
    assert "embedding" not in lake.dataset("records").schema.names
    report = embed(lake, FakeEmbedder(8), batch_size=20)
    assert report.step.resumed and report.rows_with_vectors == 60


def test_index_built_past_threshold(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"notes": ROWS})
    report = embed(lake, FakeEmbedder(8), index_min_rows=50)
    assert report.indexed
    assert has_index(lake.dataset("records"), "embedding")
    assert lake.log()[0].operation == "index"


def test_bad_model_path_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CurationError, match="not a sentence-transformers folder"):
        SentenceEmbedder(tmp_path)
    with pytest.raises(CurationError, match="use cpu or cuda"):
        SentenceEmbedder(device="tpu")


def test_cuda_without_a_gpu_is_one_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(CurationError, match="no CUDA device"):
        SentenceEmbedder(device="cuda")


def test_real_minilm_on_a_few_rows(tmp_path: Path) -> None:
    rows = [
        {"text": "How do I bake sourdough bread at home?"},
        {"text": "What is a good recipe for homemade bread?"},
        {"text": "The stock market fell sharply on Tuesday."},
    ]
    lake = make_lake(tmp_path, {"q": rows})
    report = embed(lake)
    assert report.model == "all-MiniLM-L6-v2" and report.dim == 384
    table = lake.dataset("records").to_table(columns=["text", "embedding"])
    vecs = {r["text"]: np.array(r["embedding"]) for r in table.to_pylist()}
    bread = vecs[rows[0]["text"]] @ vecs[rows[1]["text"]]
    stocks = vecs[rows[0]["text"]] @ vecs[rows[2]["text"]]
    assert bread > stocks + 0.2
    assert abs(np.linalg.norm(vecs[rows[2]["text"]]) - 1.0) < 1e-4
