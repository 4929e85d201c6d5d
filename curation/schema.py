"""Schemas of the lake's tables and the content hash that gives a record its id."""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256 as _sha256

import numpy as np
import pyarrow as pa

from curation.lossless import MESSAGE_FIELDS_KEY, dumps, loads

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

CORE_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string()),
        pa.field("text", pa.string()),
        pa.field("messages", MESSAGES_TYPE),
        pa.field("rejected", pa.string()),
        pa.field("meta", pa.string()),
    ]
)
"""The normalised columns of records, before id and provenance are added."""

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


def canonical_bytes(
    kind: str,
    text: str,
    messages: Sequence[tuple[str, str]] | None,
    rejected: str | None,
    fields: str | None = None,
) -> bytes:
    r"""The canonical form of a record that its id hashes.

    `kind`, a newline, then the content with every string length-prefixed (so the form is
    unambiguous without escaping): `LEN:text` for text records, `role\nLEN:content` per turn
    for chats, and `rejected\nLEN:answer` after the turns of a preference pair. LEN counts
    UTF-8 bytes. Source, batch and meta are left out on purpose: the same content arriving
    from two sources is one record. Chats hash their (role, content) turns, not the rendered
    text, so a conversation hashes the same whatever file format it came from. Messages with
    fields besides role and content (`tool_calls`, `name`, …) are content too: `fields` (their
    JSON, see `message_fields`) is appended as `fields\nLEN:json`, so only such records have
    a form (and an id) that differs from before these fields were kept.
    """

    def part(value: str) -> bytes:
        data = value.encode("utf-8", "surrogatepass")
        return b"%d:%s" % (len(data), data)

    if messages is None:
        body = part(text)
    else:
        body = b"".join(role.encode() + b"\n" + part(content) for role, content in messages)
    if rejected is not None:
        body += b"rejected\n" + part(rejected)
    if fields is not None:
        body += b"fields\n" + part(fields)
    return kind.encode() + b"\n" + body


def message_fields(meta: str | None) -> str | None:
    """The JSON of a record's extra message fields, from its `meta` (None if it has none)."""
    if meta is None or f'"{MESSAGE_FIELDS_KEY}":' not in meta:
        return None
    value = loads(meta).get(MESSAGE_FIELDS_KEY)
    return None if value is None else dumps(value)


def record_id(
    kind: str,
    text: str,
    messages: Sequence[tuple[str, str]] | None,
    rejected: str | None,
    fields: str | None = None,
) -> str:
    """A record's id: the first 128 bits of SHA-256 of `canonical_bytes`, as 32 hex digits.

    Ingest computes the same ids in bulk (`columnar.record_ids`, SHA-256 in DuckDB); this
    one-record version is the reference the bulk path is tested against.
    """
    return _sha256(canonical_bytes(kind, text, messages, rejected, fields)).hexdigest()[:32]


class IdSet:
    """A set of record ids in 16 bytes per id, for deduplicating large ingests.

    Ids are stored as their 16-byte digests, split in two uint64 halves, in runs sorted by
    the first half (keys sharing one are side by side; the second half settles them). A new run is merged with the previous ones while it is at
    least as large (a binary counter), so there are at most log2(n) runs, merging costs
    O(n log n) in all, and a lookup is a vectorised binary search on the first half per run
    (integer compares: about 5x faster than searching 16-byte strings). A Python set of hex
    strings would need about 120 bytes per id: 1.6 GB for the ~15M records of a 5 GB JSONL.
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        """The number of keys held (a key added twice counts twice)."""
        return sum(len(hi) for hi, _ in self._runs)

    @staticmethod
    def keys(ids: Sequence[str] | pa.Array) -> np.ndarray:
        """Hex ids (as `record_id` makes them) → an array of 16-byte keys."""
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        if isinstance(ids, pa.Array):
            return _hex_keys(ids)
        return np.frombuffer(bytes.fromhex("".join(ids)), dtype="S16")

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """A boolean mask: which of `keys` are in the set."""
        hi, lo = _halves(keys)
        order = np.argsort(hi)  # sorted needles: each search starts where the last ended
        hi, lo = hi[order], lo[order]
        found = np.zeros(len(keys), dtype=bool)
        for run_hi, run_lo in self._runs:
            left = np.searchsorted(run_hi, hi, "left")
            span = np.searchsorted(run_hi, hi, "right") - left
            one = span == 1
            found[one] |= run_lo[left[one]] == lo[one]
            for i in np.flatnonzero(span > 1):  # first halves equal: 2^-64 odds per pair
                found[i] |= bool((run_lo[left[i] : left[i] + span[i]] == lo[i]).any())
        out = np.empty_like(found)
        out[order] = found
        return out

    def add(self, keys: np.ndarray) -> None:
        """Add keys (duplicates and keys already present are allowed but waste space)."""
        if not len(keys):
            return
        hi, lo = _halves(keys)
        while self._runs and len(self._runs[-1][0]) <= len(hi):
            run_hi, run_lo = self._runs.pop()
            hi, lo = np.concatenate([run_hi, hi]), np.concatenate([run_lo, lo])
            del run_hi, run_lo  # free each old run as soon as it is copied: peak 32 B/id
        order = np.argsort(hi, kind="stable")  # timsort: merging sorted runs is linear
        hi = hi[order]
        lo = lo[order]
        del order
        self._runs.append((hi, lo))


def first_occurrences(keys: np.ndarray) -> np.ndarray:
    """A boolean mask: True at the first occurrence of each key (in the given order)."""
    hi, lo = _halves(keys)
    order = np.lexsort((lo, hi))  # stable: equal keys keep their order
    hi, lo = hi[order], lo[order]
    repeat = np.zeros(len(keys), dtype=bool)
    repeat[order[1:]] = (hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1])
    return ~repeat


def _halves(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """16-byte keys → their two 8-byte halves as uint64 arrays."""
    pairs = np.frombuffer(np.ascontiguousarray(keys, dtype="S16").tobytes(), "<u8").reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def _hex_keys(ids: pa.Array) -> np.ndarray:
    """A string column of 32-hex-digit ids → 16-byte keys, without a Python loop."""
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype="S16")
    if ids.null_count:
        raise ValueError("record ids cannot be null")
    if pa.types.is_large_string(ids.type):
        ids = ids.cast(pa.string())
    offsets = np.frombuffer(ids.buffers()[1], np.int32, n + 1, ids.offset * 4)
    if n and not (np.all(np.diff(offsets) == 32)):
        raise ValueError("record ids must be 32 hex digits")
    data = np.frombuffer(ids.buffers()[2], np.uint8, 32 * n, int(offsets[0]) if n else 0)
    nibbles = _NIBBLE[data]
    if (nibbles == 255).any():
        raise ValueError("record ids must be 32 hex digits")
    return ((nibbles[0::2] << 4) | nibbles[1::2]).astype(np.uint8).view("S16")
