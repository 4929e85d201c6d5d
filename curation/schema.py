"""Schemas of the lake's tables and the content hash that gives a record its id."""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b as _blake2b

import numpy as np
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


class IdSet:
    """A set of record ids in about 16-32 bytes per id, for deduplicating large ingests.

    Ids are stored as 16-byte digests in sorted NumPy runs. A new run is merged with the
    previous ones while it is at least as large (a binary counter), so there are at most
    log2(n) runs, merging costs O(n log n) copies in all, and lookups are one vectorised
    binary search per run. A Python set of hex strings would need about 120 bytes per id:
    1.6 GB for the ~15M records of a 5 GB JSONL.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    @staticmethod
    def keys(ids: Sequence[str] | pa.Array) -> np.ndarray:
        """Hex ids (as `record_id` makes them) → an array of 16-byte keys."""
        if isinstance(ids, pa.Array | pa.ChunkedArray):
            ids = ids.to_pylist()
        return np.frombuffer(bytes.fromhex("".join(ids)), dtype="S16")

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """A boolean mask: which of `keys` are in the set."""
        found = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            at = np.searchsorted(run, keys)
            inside = at < len(run)
            found[inside] |= run[at[inside]] == keys[inside]
        return found

    def add(self, keys: np.ndarray) -> None:
        """Add keys (duplicates and keys already present are allowed but waste space)."""
        if not len(keys):
            return
        run = np.sort(keys)
        while self._runs and len(self._runs[-1]) <= len(run):
            run = np.sort(np.concatenate([self._runs.pop(), run]), kind="mergesort")
        self._runs.append(run)
