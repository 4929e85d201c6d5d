"""Property tests of the row path: a record's id depends on its content only."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.ingest.readers import read_rows
from curation.ingest.row import normalize_row
from curation.schema import IdSet, record_id
from curation.testing import assert_paths_agree

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
        in_bulk = assert_paths_agree(pq.read_table(parquet), json_source=False)
    assert from_jsonl == from_parquet
    assert in_bulk == len(rows)  # the bulk path takes every one, as the row path does
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


# ------------------------------------------------ ingest → export loses nothing (issue 11)

_SHAPE_KEYS = {
    "text", "messages", "conversations", "instruction", "input", "output", "system",
    "prompt", "completion", "response", "chosen", "rejected",
}  # fmt: skip
_PLAIN = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_KEY = _PLAIN.filter(lambda k: k not in _SHAPE_KEYS and not k.startswith("mixlake."))
_JSON = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**100), 2**100),  # past 64 bits too
        st.floats(allow_nan=False, allow_infinity=False),
        _PLAIN,
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEY, inner, max_size=3),
    max_leaves=6,
)
_EXTRAS = st.dictionaries(_KEY, _JSON, max_size=3)
_MSG_EXTRAS = st.dictionaries(
    st.sampled_from(["tool_calls", "name", "weight", "tool_call_id", "é"]), _JSON, max_size=2
)
_ROLE = st.sampled_from(["user", "assistant", "system", "tool"])


@st.composite
def _records(draw: st.DrawFn, i: int) -> dict[str, Any]:
    """One input row whose content is unique (marked `r{i}`), of one of the three kinds."""
    shape = draw(st.sampled_from(["text", "chat", "preference"]))
    row: dict[str, Any] = draw(_EXTRAS)
    mark = f"r{i}|"
    if shape == "text":
        row["text"] = mark + draw(_PLAIN)
    elif shape == "chat":
        n = draw(st.integers(1, 4))
        row["messages"] = [
            {"role": draw(_ROLE), "content": (mark if t == 0 else "") + draw(_PLAIN)}
            | draw(_MSG_EXTRAS)
            for t in range(n)
        ]
    else:
        row |= {"prompt": mark + draw(_PLAIN), "chosen": "c" + draw(_PLAIN)}
        row["rejected"] = "x" + draw(_PLAIN)
        if draw(st.booleans()):
            row["system"] = "s" + draw(_PLAIN)
    return row


@st.composite
def _inputs(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [draw(_records(i)) for i in range(draw(st.integers(1, 8)))]


def _expected(row: dict[str, Any]) -> dict[str, Any]:
    """What the exported `records` row must hold for this input (null fields are absent)."""
    extras = {k: v for k, v in row.items() if k not in _SHAPE_KEYS}
    if "text" in row:
        return {"kind": "text", "text": row["text"], "meta": extras}
    if "messages" in row:
        return {"kind": "chat", "messages": row["messages"], "meta": extras}
    turns = [{"role": "system", "content": row["system"]}] if "system" in row else []
    turns += [{"role": "user", "content": row["prompt"]}]
    turns += [{"role": "assistant", "content": row["chosen"]}]
    return {"kind": "preference", "messages": turns, "rejected": row["rejected"], "meta": extras}


@settings(max_examples=25, deadline=None)
@given(rows=_inputs())
def test_ingest_then_export_loses_nothing(rows: list[dict[str, Any]]) -> None:
    import json
    import re

    from curation import Lake
    from curation.lossless import loads
    from queries import export_mix, materialize_mix, parse_spec

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "in.jsonl"  # the stdlib writes big integers; orjson cannot
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        lake = Lake.create(root / "lake")
        report = lake.ingest([path], source="p")
        assert report.rows_added == len(rows) and report.rejected == 0
        spec = f"name: p\nseed: 1\ntotal_rows: {len(rows)}\ncomponents:\n"
        spec += '  - name: all\n    sql: "true"\nformat: {template: text}\n'
        materialize_mix(lake, parse_spec(spec))
        export_mix(lake, "p", "records", root / "p.jsonl", redact=False)
        out = [
            json.loads(line)
            for f in sorted(root.glob("p.*.jsonl"))
            for line in f.read_text().split("\n")  # not splitlines: U+2028 is in lines
            if line
        ]
    assert len(out) == len(rows)
    by_mark = {re.search(r"r[0-9]+\|", r["text"]).group(): r for r in out}  # type: ignore[union-attr]
    for i, row in enumerate(rows):
        got = by_mark[f"r{i}|"]
        want = _expected(row)
        assert got["kind"] == want["kind"]
        assert (loads(got["meta"]) if got["meta"] else {}) == want["meta"]
        if "text" in want:
            assert got["text"] == want["text"] and got["messages"] is None
        else:
            assert got["messages"] == want["messages"]
            assert got["rejected"] == want.get("rejected")
