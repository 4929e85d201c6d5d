"""Columnar normalisation: a table of raw rows → the core record columns, in bulk.

`row.normalize_row` defines what a record is; this module is the fast path that gives
exactly the same result for every row it accepts, using Arrow compute instead of a Python
loop. A row it cannot vouch for (a field of an unexpected type, an empty field, an unknown
role, no recognised shape, a message with fields besides its role and content, a `--map`
onto a field the row has, a reserved key, or an extra field it cannot write as the row path
would) is handed
back by index: the caller runs the row path on it, which accepts it or rejects it with its
exact reason. So the fast path only ever changes speed, never results; tests hold the two
paths to the same output on every shape and on many odd rows.

Its parts: `bulk_turns` (message lists and the one-gather assembly of every shape),
`bulk_meta` (extra fields as orjson-exact JSON) and `bulk_ids` (ids, `schema.record_id` in
bulk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.ingest.bulk_arrow import STRING, blank, one_chunk, take_rows, valid
from curation.ingest.bulk_ids import canonical, hash_forms, hex_ids, record_ids
from curation.ingest.bulk_meta import meta_column, render
from curation.ingest.bulk_turns import Turns, assemble
from curation.ingest.row import LIST_FIELDS, STRING_FIELDS, Normalized
from curation.lossless import FLOAT_KEY, MESSAGE_FIELDS_KEY
from curation.schema import CORE_SCHEMA, MESSAGE_TYPE, MESSAGES_TYPE

__all__ = [
    "CORE_SCHEMA",
    "Bulk",
    "canonical",
    "core_from_rows",
    "hash_forms",
    "hex_ids",
    "normalize_table",
    "record_ids",
]

TURN_KEYS = ("role", "content", "from", "value")


@dataclass
class Bulk:
    """What the fast path made of a table.

    `rows` are the indices (ascending) of the input rows that became the records of `core`
    (in that order); `fallback` are the indices of the rows the row path must decide.
    """

    rows: np.ndarray
    core: pa.Table
    fallback: np.ndarray


def normalize_table(
    table: pa.Table,
    mapping: dict[str, str] | None = None,
    kind_hint: str = "auto",
    *,
    json_source: bool = False,
) -> Bulk:
    """Normalise every row of `table` that the fast path can vouch for.

    Args:
        table: raw rows, one column per input field; a null is an absent field.
        mapping: core field → input field renames, as for `normalize_row`.
        kind_hint: `auto`, or the kind every row must be.
        json_source: the table was parsed from JSON by Arrow, whose type inference loses
            what the row path would keep (an integer written `1.0`, nested objects that
            gain the keys of other rows, strings read as timestamps): rows whose extra
            fields depend on that are handed to the row path.
    """
    n = table.num_rows
    if len(set(table.column_names)) != table.num_columns:
        return Bulk(np.zeros(0, np.int64), CORE_SCHEMA.empty_table(), np.arange(n))
    cols = {name: one_chunk(table.column(name)) for name in table.column_names}
    fallback = np.zeros(n, dtype=bool)
    for target, field in (mapping or {}).items():
        if field == target or field not in cols:
            continue
        src = cols.pop(field)
        old = cols.get(target)
        if old is not None:
            fallback |= valid(src) & valid(old)  # the row path refuses to overwrite
        if old is not None and old.type != src.type:
            fallback |= valid(src) | valid(old)
        cols[target] = pc.coalesce(src, old) if old is not None and old.type == src.type else src
    for name in list(cols):
        cols[name] = _plain(cols[name])
        if pa.types.is_null(cols[name].type):
            del cols[name]  # all null: absent everywhere
        elif name in (MESSAGE_FIELDS_KEY, FLOAT_KEY):
            fallback |= valid(cols[name])  # reserved: the row path says so
            del cols[name]
        elif (name in STRING_FIELDS and cols[name].type != STRING) or (
            name in LIST_FIELDS and not _is_turn_list(cols[name].type)
        ):
            fallback |= valid(cols[name])  # the row path names the wrong type
            del cols[name]

    has = {
        f: valid(cols[f]) if f in cols else np.zeros(n, bool)
        for f in cols.keys() | set(STRING_FIELDS + LIST_FIELDS)
    }
    rest = np.ones(n, dtype=bool)
    shapes: dict[str, np.ndarray] = {}
    for shape, present in (
        ("preference", has["chosen"] & has["rejected"]),
        ("messages", has["messages"]),
        ("conversations", has["conversations"]),
        ("instruction", has["instruction"] & has["output"]),
        ("prompt", has["prompt"] & (has["completion"] | has["response"])),
        ("text", has["text"]),
    ):
        shapes[shape] = rest & present
        rest &= ~present
    fallback |= rest  # no recognised shape: the row path says which fields it found
    kinds = {"preference": "preference", "text": "text"}
    if kind_hint != "auto":
        for shape, mask in shapes.items():
            if kinds.get(shape, "chat") != kind_hint:
                fallback |= mask

    def empty(name: str) -> np.ndarray:
        if name not in cols:
            return np.ones(n, dtype=bool)
        return blank(cols[name])

    fallback |= shapes["text"] & empty("text")
    fallback |= shapes["instruction"] & (empty("instruction") | empty("output"))
    answer = np.where(has["completion"], empty("completion"), empty("response"))
    fallback |= shapes["prompt"] & (empty("prompt") | answer)
    fallback |= shapes["preference"] & (empty("prompt") | empty("chosen") | empty("rejected"))
    turns = {f: Turns.of(cols[f]) for f in LIST_FIELDS if f in cols}
    for f, t in turns.items():
        # Messages with fields besides role/content: the row path keeps them in meta.
        fallback |= shapes[f] & (t.bad_rows(n) | t.extra_rows(n))

    used = _used_fields(shapes, has)
    frags: dict[str, tuple[np.ndarray, pa.Array]] = {}
    for name in sorted(cols):
        include = has[name] & ~fallback
        if name in used:
            include &= ~used[name]
        if include.any():
            rows = np.flatnonzero(include)
            values = take_rows(cols[name], rows)
            rendered, bad = render(name, values, json_source)
            fallback[rows[bad]] = True
            frags[name] = (rows, rendered)

    rows_out = np.flatnonzero(~fallback)
    core = assemble(rows_out, shapes, cols, has, turns)
    meta = meta_column(rows_out, frags, n)
    core = core.set_column(4, "meta", meta)
    return Bulk(rows_out, core, np.flatnonzero(fallback))


def core_from_rows(rows: Sequence[Normalized]) -> pa.Table:
    """Core columns (CORE_SCHEMA) of records the row path normalised."""
    chats = [r.messages for r in rows]
    turns = [t for m in chats if m is not None for t in m]
    turn_array = pa.StructArray.from_arrays(
        [pa.array([t[0] for t in turns], STRING), pa.array([t[1] for t in turns], STRING)],
        fields=list(MESSAGE_TYPE),
    )
    offsets = [0, *accumulate(0 if m is None else len(m) for m in chats)]
    messages = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        turn_array,
        type=MESSAGES_TYPE,
        mask=pa.array([m is None for m in chats], pa.bool_()),
    )
    columns = [
        pa.array([r.kind for r in rows], STRING),
        pa.array([r.text for r in rows], STRING),
        messages,
        pa.array([r.rejected for r in rows], STRING),
        pa.array([r.meta for r in rows], STRING),
    ]
    return pa.table(columns, schema=CORE_SCHEMA)


def _used_fields(
    shapes: dict[str, np.ndarray], has: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per field, the rows whose shape consumes it (the rest of a row's fields go to meta)."""
    pref, inst, prompt = shapes["preference"], shapes["instruction"], shapes["prompt"]
    return {
        "text": shapes["text"],
        "messages": shapes["messages"],
        "conversations": shapes["conversations"],
        "instruction": inst,
        "input": inst,
        "output": inst,
        "system": inst | prompt | pref,
        "prompt": prompt | pref,
        "completion": prompt & has["completion"],
        "response": prompt & ~has["completion"],
        "chosen": pref,
        "rejected": pref,
    }


def _is_turn_list(typ: pa.DataType) -> bool:
    if not pa.types.is_list(typ) or not pa.types.is_struct(typ.value_type):
        return False
    fields = typ.value_type
    return all(
        fields.field(i).type == STRING
        for i in range(fields.num_fields)
        if fields.field(i).name in TURN_KEYS
    )


def _plain(values: pa.Array) -> pa.Array:
    """Strings as plain `string` (Parquet may give large or dictionary-encoded ones)."""
    typ = values.type
    if pa.types.is_dictionary(typ) and (
        pa.types.is_string(typ.value_type) or pa.types.is_large_string(typ.value_type)
    ):
        return pc.cast(values, STRING)
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return pc.cast(values, STRING)
    if pa.types.is_large_list(typ) and pa.types.is_struct(typ.value_type):
        return pc.cast(values, pa.list_(typ.value_type))
    return values
