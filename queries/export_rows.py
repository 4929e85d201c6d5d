"""The rows an export writes: rendered examples with what the record keeps beside them.

A row is `id`, `split`, `component` and the rendered example (`queries.render`), plus the
record's `meta` (exact JSON text, `curation.lossless`) and its messages' extra fields
(`tool_calls`, `name`, …) put back into the messages they came from. `kind` and `rejected`
ride along for the converters (trl DPO) and the `records` format, which writes every core
column instead of the rendered example.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pyarrow.compute as pc

from curation.lossless import MESSAGE_FIELDS_KEY, dumps, loads
from queries.errors import QueryError
from queries.materialize import MaterializedMix
from queries.render import render, render_columns

RowProgress = Callable[[int, int], None]
CORE = ("id", "kind", "text", "messages", "rejected", "meta")


def exported_rows(
    mix: MaterializedMix,
    split: str | None,
    redact: bool,
    stats: Counter[str],
    progress: RowProgress | None = None,
    *,
    full: bool = False,
    batch_size: int = 256,
) -> Iterator[dict[str, Any]]:
    """Rows of the mix (or one split) in mix order; `full` for every core column.

    Private rows for the writers: `kind` and `rejected` are dropped by the formats that do
    not use them. `stats["redacted"]` counts PII redactions.
    """
    rows = mix.rows(split)
    total = rows.num_rows
    records = mix.lake.records(mix.records_version)
    fmt = mix.spec.format
    names = records.schema.names
    columns = list(dict.fromkeys([*render_columns(fmt, names), *CORE]))
    clean = _redactor(stats) if redact else None
    done = 0
    for offset in range(0, total, batch_size):
        chunk = rows.slice(offset, batch_size)
        got = records._take_rows(chunk.column("row_addr").combine_chunks(), columns=columns)
        if not pc.all(pc.equal(got.column("id"), chunk.column("id"))).as_py():
            raise QueryError(
                f"mix {mix.ref}: row addresses no longer match records version "
                f"{mix.records_version}; re-materialize the mix"
            )
        ids, splits, comps = (chunk.column(c).to_pylist() for c in ("id", "split", "component"))
        for i, record in enumerate(got.to_pylist()):
            base = {"id": ids[i], "split": splits[i], "component": comps[i]}
            row = base | (_record(record) if full else _example(record, fmt))
            if clean is not None:
                _redact(row, clean)
            done += 1
            if progress and (done % 256 == 0 or done == total):
                progress(done, total)
            yield row


def _split_meta(record: dict[str, Any]) -> tuple[list[Any] | None, str | None]:
    """(the messages' extra fields, the rest of meta as exact JSON text)."""
    meta = record.get("meta")
    if meta is None or f'"{MESSAGE_FIELDS_KEY}":' not in meta:
        return None, meta
    data = loads(meta)
    fields = data.pop(MESSAGE_FIELDS_KEY, None)
    return fields, dumps(data) if data else None


def _with_fields(messages: list[dict[str, Any]], fields: list[Any] | None, offset: int) -> None:
    for i, extra in enumerate(fields or []):
        if extra and 0 <= i + offset < len(messages):
            messages[i + offset].update(extra)


def _example(record: dict[str, Any], fmt: Any) -> dict[str, Any]:
    example = render(record, fmt)
    fields, meta = _split_meta(record)
    if "messages" in example and fields:
        # `render` may put the spec's system message first: align the fields after it.
        _with_fields(example["messages"], fields, len(example["messages"]) - len(fields))
    if meta is not None:
        example["meta"] = meta
    example["kind"] = record["kind"]
    if record.get("rejected") is not None:
        example["rejected"] = record["rejected"]
    return example


def _record(record: dict[str, Any]) -> dict[str, Any]:
    fields, meta = _split_meta(record)
    messages = record.get("messages")
    if messages is not None:
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        _with_fields(messages, fields, 0)
    return {
        "kind": record["kind"],
        "text": record["text"],
        "messages": messages,
        "rejected": record.get("rejected"),
        "meta": meta,
    }


def _redactor(stats: Counter[str]) -> Callable[[str], str]:
    from curation.pii import redact as redact_text

    def clean(text: str) -> str:
        new, count = redact_text(text)
        stats["redacted"] += count
        return new

    return clean


def _redact(row: dict[str, Any], clean: Callable[[str], str]) -> None:
    """Redact every string a trainer or reader sees: contents, message fields, meta values."""
    if row.get("messages"):
        row["messages"] = [
            {k: v if k == "role" else _clean_value(v, clean) for k, v in m.items()}
            for m in row["messages"]
        ]
    for key in ("prompt", "completion", "text", "rejected"):
        if isinstance(row.get(key), str):
            row[key] = clean(row[key])
    if isinstance(row.get("meta"), str):  # string values only, so the JSON stays valid
        row["meta"] = dumps(_clean_value(loads(row["meta"]), clean))


def _clean_value(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {k: _clean_value(v, clean) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_value(v, clean) for v in value]
    return value


def jsonl_bytes(row: dict[str, Any]) -> bytes:
    """One JSON line; integers past 64 bits (orjson cannot write them) keep their digits."""
    try:
        return orjson.dumps(row) + b"\n"
    except TypeError:
        return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
