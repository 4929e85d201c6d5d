"""Record ids in bulk: canonical forms built with Arrow compute, hashed with SHA-256.

`schema.record_id` is the one-record reference these must equal.
"""

from __future__ import annotations

import hashlib
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.ingest.bulk_arrow import STRING, byte_length, one_chunk, to_np
from curation.lossless import MESSAGE_FIELDS_KEY
from curation.schema import message_fields


def canonical(core: pa.Table) -> pa.Array:
    """The canonical form of each record that its id hashes (see `schema.canonical_bytes`)."""
    kind = one_chunk(core.column("kind"))
    text = one_chunk(core.column("text"))
    messages = one_chunk(core.column("messages"))
    rejected = one_chunk(core.column("rejected"))
    turns = pc.list_flatten(messages)
    content = turns.field("content")
    per_turn = pc.binary_join_element_wise(
        turns.field("role"), "\n", byte_length(content), ":", content, ""
    )
    counts = to_np(pc.fill_null(pc.list_value_length(messages), 0)).astype(np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts, dtype=np.int32)]), pa.int32())
    chats = pc.binary_join(pa.ListArray.from_arrays(offsets, per_turn), "")  # "" for text
    # Text rows only: a null length makes the join null (and copy nothing) for chat rows.
    length = pc.if_else(messages.is_valid(), pa.nulls(len(text), STRING), byte_length(text))
    plain = pc.binary_join_element_wise(length, ":", text, "")
    tail = pc.binary_join_element_wise("rejected\n", byte_length(rejected), ":", rejected, "")
    forms = pc.binary_join_element_wise(
        kind, "\n", chats, plain, tail, "", null_handling="replace", null_replacement=""
    )
    return _with_message_fields(forms, one_chunk(core.column("meta")))


def _with_message_fields(forms: pa.Array, meta: pa.Array) -> pa.Array:
    r"""Append `fields\nLEN:json` to the forms of records whose messages have extra fields."""
    if meta.null_count == len(meta):
        return forms
    marked = to_np(pc.fill_null(pc.match_substring(meta, _FIELDS_MARK), False))
    if not marked.any():
        return forms
    rows = np.flatnonzero(marked)
    metas = meta.take(pa.array(rows)).to_pylist()
    tails: list[str | None] = [None] * len(forms)
    for i, m in zip(rows.tolist(), metas, strict=True):
        fields = message_fields(m)
        if fields is not None:
            tails[i] = f"fields\n{len(fields.encode('utf-8', 'surrogatepass'))}:{fields}"
    return pc.binary_join_element_wise(
        forms, pa.array(tails, STRING), "", null_handling="replace", null_replacement=""
    )


_FIELDS_MARK = f'"{MESSAGE_FIELDS_KEY}":'


def record_ids(core: pa.Table) -> tuple[pa.Array, np.ndarray]:
    """Every record's id (see `schema.record_id`): hex strings and the 16-byte keys.

    Hashing is a plain `hashlib` loop over the canonical forms: OpenSSL's SHA-256 is about
    a microsecond a record, as fast as DuckDB's `sha256` on two cores, and this way the
    digests need no hex round trip before deduplication.
    """
    return hash_forms(canonical(core))


def hash_forms(forms: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Ids (hex) and 16-byte keys of canonical forms (see `record_ids`)."""
    n = len(forms)
    offsets = np.frombuffer(forms.buffers()[1], np.int32, n + 1, forms.offset * 4).tolist()
    data = memoryview(forms.buffers()[2] or b"")  # slices of it hash without copying
    sha = hashlib.sha256
    digests = b"".join([sha(data[a:b]).digest()[:16] for a, b in pairwise(offsets)])
    keys = np.frombuffer(digests, dtype="S16")
    return hex_ids(keys), keys


def hex_ids(keys: np.ndarray) -> pa.Array:
    """16-byte keys → a string column of 32 lowercase hex digits each."""
    pairs = _HEX_PAIRS[np.frombuffer(keys.tobytes(), np.uint8)]
    data = pa.py_buffer(pairs.tobytes())
    offsets = pa.py_buffer(np.arange(0, 32 * len(keys) + 1, 32, dtype=np.int32).tobytes())
    return pa.Array.from_buffers(STRING, len(keys), [None, offsets, data])


_HEX_PAIRS = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")
