"""Schemas of the lake's tables and the content hash that gives a record its id."""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b as _blake2b

import orjson
import pyarrow as pa

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)

KINDS = ("text", "chat", "preference")

RECORDS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("messages", MESSAGES_TYPE),
        pa.field("rejected", pa.string()),
        pa.field("meta", pa.string()),
        pa.field("batch", pa.string(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
CORE_COLUMNS = tuple(RECORDS_SCHEMA.names)

REJECTS_SCHEMA = pa.schema(
    [
        pa.field("batch", pa.string()),
        pa.field("source", pa.string()),
        pa.field("file", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("raw", pa.string()),
        pa.field("rejected_at", pa.timestamp("us", tz="UTC")),
    ]
)

JOURNAL_SCHEMA = pa.schema(
    [
        pa.field("table_name", pa.string()),
        pa.field("version", pa.int64()),
        pa.field("operation", pa.string()),
        pa.field("message", pa.string()),
        pa.field("args", pa.string()),
        pa.field("rows_added", pa.int64()),
        pa.field("rows_removed", pa.int64()),
        pa.field("at", pa.timestamp("us", tz="UTC")),
    ]
)


def record_id(
    kind: str, text: str, messages: Sequence[tuple[str, str]] | None, rejected: str | None
) -> str:
    """Content hash of a canonical record (hex, 128 bits).

    Source, batch and meta are left out on purpose: the same content arriving from two sources
    is one record. Chat records hash their (role, content) turns, not the rendered text, so a
    conversation hashes the same whatever file format it came from.
    """
    # orjson writes tuples and lists alike, so (role, content) pairs need no conversion.
    body: list[object] = [kind, text if messages is None else list(messages)]
    if rejected is not None:
        body.append(rejected)
    return _blake2b(orjson.dumps(body), digest_size=16).hexdigest()
