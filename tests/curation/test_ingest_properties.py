"""Property tests: a record's id depends on its content only."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.normalize import normalize_row
from curation.readers import read_rows
from curation.schema import IdSet, record_id

ROLES = st.sampled_from(["user", "assistant", "system"])
CONTENT = st.text(min_size=1, max_size=40).filter(lambda s: not s.isspace())
TURNS = st.lists(st.tuples(ROLES, CONTENT), min_size=1, max_size=5)
META = st.dictionaries(
    st.sampled_from(["lang", "url", "score", "topic", "split"]),
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=10), st.booleans()),
    max_size=4,
)


def _id(row: dict[str, Any]) -> str:
    n = normalize_row(row)
    return record_id(n.kind, n.text, n.messages, n.rejected)


def _shuffled(row: dict[str, Any], order: list[int]) -> dict[str, Any]:
    keys = list(row)
    ranked = sorted(range(len(keys)), key=lambda i: order[i % len(order)] * 100 + i)
    return {keys[i]: row[keys[i]] for i in ranked}


@settings(max_examples=200, deadline=None)
@given(
    turns=TURNS,
    meta_a=META,
    meta_b=META,
    order=st.lists(st.integers(0, 9), min_size=1, max_size=6),
)
def test_id_ignores_meta_and_field_order(
    turns: list[tuple[str, str]], meta_a: dict[str, Any], meta_b: dict[str, Any], order: list[int]
) -> None:
    messages = [{"role": r, "content": c} for r, c in turns]
    a = {"messages": messages, **meta_a}
    b = _shuffled({**meta_b, "messages": [{"content": c, "role": r} for r, c in turns]}, order)
    sharegpt = {"conversations": [{"from": r, "value": c} for r, c in turns], **meta_b}
    assert _id(a) == _id(b) == _id(sharegpt)


@settings(max_examples=200, deadline=None)
@given(text=CONTENT, meta=META)
def test_text_id_ignores_meta_but_not_content(text: str, meta: dict[str, Any]) -> None:
    assert _id({"text": text, **meta}) == _id({"text": text})
    assert _id({"text": text}) != _id({"text": text + "!"})
    assert _id({"text": text}) != _id({"messages": [{"role": "user", "content": text}]})


@settings(max_examples=30, deadline=None)
@given(conversations=st.lists(TURNS, min_size=1, max_size=4), meta=META)
def test_same_conversations_from_jsonl_and_parquet_get_same_ids(
    conversations: list[list[tuple[str, str]]], meta: dict[str, Any]
) -> None:
    rows = [
        {"messages": [{"role": r, "content": c} for r, c in turns], "n": i}
        for i, turns in enumerate(conversations)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "d.jsonl"
        jsonl.write_bytes(b"".join(orjson.dumps({**meta, **r}) + b"\n" for r in rows))
        parquet = Path(tmp) / "d.parquet"
        pq.write_table(pa.Table.from_pylist(rows), parquet)
        from_jsonl = [_id(row) for _, row in read_rows(jsonl, "jsonl")]
        from_parquet = [_id(row) for _, row in read_rows(parquet, "parquet")]
    assert from_jsonl == from_parquet
    assert len(from_jsonl) == len(rows)


@settings(max_examples=100, deadline=None)
@given(
    chunks=st.lists(st.lists(st.integers(0, 300), max_size=40), max_size=12),
    probe=st.lists(st.integers(0, 400), max_size=50),
)
def test_id_set_behaves_like_a_set(chunks: list[list[int]], probe: list[int]) -> None:
    def ids(numbers: list[int]) -> list[str]:
        return [record_id("text", str(n), None, None) for n in numbers]

    reference: set[str] = set()
    id_set = IdSet()
    for chunk in chunks:
        fresh = [i for i in dict.fromkeys(ids(chunk)) if i not in reference]
        id_set.add(IdSet.keys(fresh))
        reference.update(fresh)
    assert len(id_set) == len(reference)
    probe_ids = ids(probe)
    got = id_set.contains(IdSet.keys(probe_ids)).tolist()
    assert got == [i in reference for i in probe_ids]
