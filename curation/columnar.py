"""Columnar normalisation: a table of raw rows → the core record columns, in bulk.

`normalize.normalize_row` defines what a record is; this module is the fast path that gives
exactly the same result for every row it accepts, using Arrow compute instead of a Python
loop. A row it cannot vouch for (a field of an unexpected type, an empty field, an unknown
role, no recognised shape, or an extra field it cannot write as the row path would) is handed
back by index: the caller runs the row path on it, which accepts it or rejects it with its
exact reason. So the fast path only ever changes speed, never results; tests hold the two
paths to the same output on every shape and on many odd rows.

`canonical` and `record_ids` give every record its id (see `schema.record_id`), in bulk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from curation.normalize import MAP_TARGETS, ROLE_ALIASES, Normalized
from curation.schema import MESSAGE_TYPE, MESSAGES_TYPE

LIST_FIELDS = ("messages", "conversations")
STRING_FIELDS = tuple(f for f in (*MAP_TARGETS, "response") if f not in LIST_FIELDS)
"""The input fields the shapes read as strings; `LIST_FIELDS` are read as message lists."""
TURN_KEYS = ("role", "content", "from", "value")
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

WHITESPACE = (
    *range(0x09, 0x0E),
    *range(0x1C, 0x21),
    0x85,
    0xA0,
    0x1680,
    *range(0x2000, 0x200B),
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
)
"""The code points Python's `str.isspace` accepts (a test checks against Python's own)."""
_BLANK = "^[" + "".join(f"\\x{{{c:x}}}" for c in WHITESPACE) + "]*$"
"""RE2 pattern matching exactly the strings Python's `not s or s.isspace()` calls blank."""
_SPACE_LEADS = np.zeros(256, dtype=bool)
_SPACE_LEADS[sorted({chr(c).encode()[0] for c in WHITESPACE})] = True
"""First UTF-8 bytes of the whitespace characters: a string starting otherwise is not blank."""
_NEEDS_ESCAPE = '[\\x00-\\x1f"\\\\]'
_RARE_CONTROLS = [c for c in range(0x20) if chr(c) not in "\b\t\n\f\r"]
_SHORT_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]
_SHORT_ESCAPES += [("\b", "\\b"), ("\f", "\\f")]
_STRING = pa.string()


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
    cols = {name: _one_chunk(table.column(name)) for name in table.column_names}
    fallback = np.zeros(n, dtype=bool)
    for target, field in (mapping or {}).items():
        if field == target or field not in cols:
            continue
        src = cols.pop(field)
        old = cols.get(target)
        if old is not None and old.type != src.type:
            fallback |= _valid(src) | _valid(old)
        cols[target] = pc.coalesce(src, old) if old is not None and old.type == src.type else src
    for name in list(cols):
        cols[name] = _plain(cols[name])
        if pa.types.is_null(cols[name].type):
            del cols[name]  # all null: absent everywhere
        elif (name in STRING_FIELDS and cols[name].type != _STRING) or (
            name in LIST_FIELDS and not _is_turn_list(cols[name].type)
        ):
            fallback |= _valid(cols[name])  # the row path names the wrong type
            del cols[name]

    has = {
        f: _valid(cols[f]) if f in cols else np.zeros(n, bool)
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

    def blank(name: str) -> np.ndarray:
        if name not in cols:
            return np.ones(n, dtype=bool)
        return _blank(cols[name])

    fallback |= shapes["text"] & blank("text")
    fallback |= shapes["instruction"] & (blank("instruction") | blank("output"))
    answer = np.where(has["completion"], blank("completion"), blank("response"))
    fallback |= shapes["prompt"] & (blank("prompt") | answer)
    fallback |= shapes["preference"] & (blank("prompt") | blank("chosen") | blank("rejected"))
    turns = {f: _Turns.of(cols[f]) for f in LIST_FIELDS if f in cols}
    for f, t in turns.items():
        fallback |= shapes[f] & t.bad_rows(n)

    used = _used_fields(shapes, has)
    frags: dict[str, tuple[np.ndarray, pa.Array]] = {}
    for name in sorted(cols):
        include = has[name] & ~fallback
        if name in used:
            include &= ~used[name]
        if include.any():
            rows = np.flatnonzero(include)
            values = _take(cols[name], rows)
            rendered, bad = _render(name, values, json_source)
            fallback[rows[bad]] = True
            frags[name] = (rows, rendered)

    rows_out = np.flatnonzero(~fallback)
    core = _assemble(rows_out, shapes, cols, has, turns)
    meta = _meta(rows_out, frags, n)
    core = core.set_column(4, "meta", meta)
    return Bulk(rows_out, core, np.flatnonzero(fallback))


def canonical(core: pa.Table) -> pa.Array:
    """The canonical form of each record that its id hashes (see `schema.canonical_bytes`)."""
    kind = _one_chunk(core.column("kind"))
    text = _one_chunk(core.column("text"))
    messages = _one_chunk(core.column("messages"))
    rejected = _one_chunk(core.column("rejected"))
    turns = pc.list_flatten(messages)
    content = turns.field("content")
    per_turn = pc.binary_join_element_wise(
        turns.field("role"), "\n", _length(content), ":", content, ""
    )
    counts = _np(pc.fill_null(pc.list_value_length(messages), 0)).astype(np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts, dtype=np.int32)]), pa.int32())
    chats = pc.binary_join(pa.ListArray.from_arrays(offsets, per_turn), "")  # "" for text
    # Text rows only: a null length makes the join null (and copy nothing) for chat rows.
    length = pc.if_else(messages.is_valid(), pa.nulls(len(text), _STRING), _length(text))
    plain = pc.binary_join_element_wise(length, ":", text, "")
    tail = pc.binary_join_element_wise("rejected\n", _length(rejected), ":", rejected, "")
    return pc.binary_join_element_wise(
        kind, "\n", chats, plain, tail, "", null_handling="replace", null_replacement=""
    )


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
    return pa.Array.from_buffers(_STRING, len(keys), [None, offsets, data])


_HEX_PAIRS = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def core_from_rows(rows: Sequence[Normalized]) -> pa.Table:
    """Core columns (CORE_SCHEMA) of records the row path normalised."""
    chats = [r.messages for r in rows]
    turns = [t for m in chats if m is not None for t in m]
    turn_array = pa.StructArray.from_arrays(
        [pa.array([t[0] for t in turns], _STRING), pa.array([t[1] for t in turns], _STRING)],
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
        pa.array([r.kind for r in rows], _STRING),
        pa.array([r.text for r in rows], _STRING),
        messages,
        pa.array([r.rejected for r in rows], _STRING),
        pa.array([r.meta for r in rows], _STRING),
    ]
    return pa.table(columns, schema=CORE_SCHEMA)


class _Turns:
    """The turns of a list-of-messages column, flattened, with their canonical roles."""

    def __init__(
        self,
        lists: pa.Array,
        roles: pa.Array,
        content: pa.Array,
        bad: np.ndarray,
        parents: np.ndarray,
        nonblank: np.ndarray,
        counts: np.ndarray,
    ) -> None:
        self.lists, self.roles, self.content = lists, roles, content
        self.bad, self.parents, self.nonblank, self.counts = bad, parents, nonblank, counts

    @classmethod
    def of(cls, lists: pa.Array) -> _Turns:
        flat = pc.list_flatten(lists)
        parents = _np(pc.list_parent_indices(lists)).astype(np.int64)
        counts = _np(pc.fill_null(pc.list_value_length(lists), 0)).astype(np.int64)
        names = {flat.type.field(i).name for i in range(flat.type.num_fields)}

        def child(key: str) -> pa.Array:
            return flat.field(key) if key in names else pa.nulls(len(flat), _STRING)

        role = pc.coalesce(child("role"), child("from"))
        content = pc.coalesce(child("content"), child("value"))
        unique = pc.unique(pc.drop_null(role)).to_pylist()
        canonical = pa.array([ROLE_ALIASES.get(r.lower()) for r in unique], _STRING)
        roles = canonical.take(pc.index_in(role, value_set=pa.array(unique, _STRING)))
        bad = ~_np(flat.is_valid()) | ~_valid(roles) | ~_valid(content)
        blank = _blank(content)
        return cls(lists, roles, content, bad, parents, ~blank, counts)

    def bad_rows(self, n: int) -> np.ndarray:
        """Rows with no turns, a malformed turn, or only blank turns."""
        bad = np.bincount(self.parents, weights=self.bad, minlength=n) > 0
        nonblank = np.bincount(self.parents, weights=self.nonblank, minlength=n)
        return bad | (nonblank == 0) | (self.counts == 0)


SHAPES = ("text", "messages", "conversations", "instruction", "prompt", "preference")
_KINDS = pa.array(["text", "chat", "chat", "chat", "chat", "preference"], _STRING)
_SLOT_ROLES = pa.array(["system", "user", "assistant"], _STRING)


def _assemble(
    idx: np.ndarray,
    shapes: dict[str, np.ndarray],
    cols: dict[str, pa.Array],
    has: dict[str, np.ndarray],
    turns: dict[str, _Turns],
) -> pa.Table:
    """The core columns of the rows `idx` (ascending), whatever their shapes, in that order.

    Every turn of every row is gathered with one `take` from a pool of the source columns
    (message lists flattened, system, user prompt, answer), its index worked out in NumPy;
    no per-shape tables to concatenate and reorder.
    """
    k, n = len(idx), len(shapes["text"])
    if k == 0:
        return CORE_SCHEMA.empty_table()
    code = np.zeros(n, dtype=np.int8)
    for c, shape in enumerate(SHAPES):
        code[shapes[shape]] = c
    code = code[idx]

    def col(name: str) -> pa.Array:
        return cols[name] if name in cols else pa.nulls(n, _STRING)

    system = col("system")
    has_system = has["system"] & _np(pc.fill_null(pc.not_equal(system, ""), False))
    with_input = _np(pc.fill_null(pc.not_equal(col("input"), ""), False)) & has["input"]
    user_instruction = col("instruction")
    if with_input.any():
        joined = pc.binary_join_element_wise(user_instruction, col("input"), "\n\n")
        user_instruction = pc.if_else(pa.array(with_input), joined, user_instruction)
    # The pool: (name, content array, role array or None for slot turns)
    pool: list[tuple[str, pa.Array, pa.Array | None]] = []
    for f in LIST_FIELDS:
        if f in turns:
            pool.append((f, turns[f].content, turns[f].roles))
    for name, values in (
        ("system", system),
        ("instruction", user_instruction),
        ("output", col("output")),
        ("prompt", col("prompt")),
        ("completion", col("completion")),
        ("response", col("response")),
        ("chosen", col("chosen")),
    ):
        pool.append((name, values, None))
    base: dict[str, int] = {}
    at_base = 0
    for name, values, _ in pool:
        base[name] = at_base
        at_base += len(values)

    is_slot = code >= 3
    hs = has_system[idx].astype(np.int64)
    counts = np.zeros(k, dtype=np.int64)
    starts = np.zeros(k, dtype=np.int64)
    for c, f in ((1, "messages"), (2, "conversations")):
        if f in turns:
            rows = code == c
            full_starts = np.concatenate([[0], np.cumsum(turns[f].counts)[:-1]])
            counts[rows] = turns[f].counts[idx[rows]]
            starts[rows] = full_starts[idx[rows]] + base[f]
    counts[is_slot] = 2 + hs[is_slot]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    row = np.repeat(np.arange(k), counts)
    t = np.arange(offsets[-1]) - offsets[row]
    source = idx[row]
    content_at = starts[row] + t  # right for list turns; slot turns are set below
    slot = t + 1 - hs[row]
    on_slot = is_slot[row]
    rc = code[row]
    answer = np.where(
        rc == 3,
        base["output"],
        np.where(
            rc == 5,
            base["chosen"],
            np.where(has["completion"][source], base["completion"], base["response"]),
        ),
    )
    user = np.where(rc == 3, base["instruction"], base["prompt"])
    slot_base = np.where(slot == 0, base["system"], np.where(slot == 1, user, answer))
    content_at = np.where(on_slot, slot_base + source, content_at)
    contents = pa.concat_arrays([values for _, values, _ in pool]).take(pa.array(content_at))

    role_pool = [r for _, _, r in pool if r is not None] + [_SLOT_ROLES]
    role_at = content_at.copy()  # list turns: the roles sit where their contents do
    role_at[on_slot] = sum(len(r) for r in role_pool[:-1]) + slot[on_slot]
    roles = pa.concat_arrays(role_pool).take(pa.array(role_at))

    offsets32 = pa.array(offsets.astype(np.int32), pa.int32())
    is_text = pa.array(code == 0)
    messages = pa.ListArray.from_arrays(
        offsets32,
        pa.StructArray.from_arrays([roles, contents], fields=list(MESSAGE_TYPE)),
        type=MESSAGES_TYPE,
        mask=is_text,
    )
    joined_text = pc.binary_join(pa.ListArray.from_arrays(offsets32, contents), "\n\n")
    text = (
        pc.if_else(is_text, _take(col("text"), idx), joined_text)
        if (code == 0).any()
        else joined_text
    )
    rejected = col("rejected").take(pa.array(np.where(code == 5, idx, 0), mask=code != 5))
    kind = _KINDS.take(pa.array(code))
    return pa.table([kind, text, messages, rejected, pa.nulls(k, _STRING)], schema=CORE_SCHEMA)


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


def _render(name: str, values: pa.Array, json_source: bool) -> tuple[pa.Array, np.ndarray]:
    """`"name":value` as orjson writes it for each value; also which values it cannot write."""
    key = orjson.dumps(name).decode() + ":"
    typ = values.type
    bad = np.zeros(len(values), dtype=bool)
    if typ == _STRING:
        text = pc.binary_join_element_wise(key + '"', _escape(values), '"', "")
    elif pa.types.is_integer(typ):
        text = pc.binary_join_element_wise(key, pc.cast(values, _STRING), "")
    elif pa.types.is_boolean(typ):
        text = pc.if_else(values, key + "true", key + "false")
    elif json_source and not pa.types.is_floating(typ):
        # Nested values gained other rows' keys, strings may have become timestamps.
        return pa.nulls(len(values), _STRING), np.ones(len(values), dtype=bool)
    else:
        if json_source:  # an integral double may have been written `1` (the row path keeps that)
            x = _np(values).astype(np.float64)
            bad = ~np.isfinite(x) | (x == np.floor(x))
        out: list[str | None] = []
        for i, v in enumerate(values.to_pylist()):
            try:
                out.append(
                    None
                    if bad[i]
                    else key + orjson.dumps(v, default=str, option=orjson.OPT_SORT_KEYS).decode()
                )
            except TypeError:  # the row path falls back to the stdlib for these
                bad[i] = True
                out.append(None)
        text = pa.array(out, _STRING)
    return text, bad


def _escape(values: pa.Array) -> pa.Array:
    """JSON string escaping exactly as orjson does it."""
    if not pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        return values
    for raw, escaped in _SHORT_ESCAPES:
        values = pc.replace_substring(values, raw, escaped)
    if pc.any(pc.match_substring_regex(values, "[\\x00-\\x1f]")).as_py():
        for c in _RARE_CONTROLS:
            values = pc.replace_substring(values, chr(c), f"\\u{c:04x}")
    return values


def _meta(rows: np.ndarray, frags: dict[str, tuple[np.ndarray, pa.Array]], n: int) -> pa.Array:
    """`meta` of the output rows: the rendered extra fields, keys sorted, or null if none."""
    if not frags or not len(rows):
        return pa.nulls(len(rows), _STRING)
    pieces = []
    for frag_rows, rendered in frags.values():  # already in sorted key order
        where = np.full(n, -1, dtype=np.int64)
        where[frag_rows] = np.arange(len(frag_rows))
        at = where[rows]
        picked = rendered.take(pa.array(at, mask=at < 0))
        pieces.append(pc.fill_null(pc.binary_join_element_wise(",", picked, ""), ""))
    joined = pc.binary_join_element_wise(*pieces, "")
    inner = pc.utf8_slice_codeunits(joined, 1)
    return pc.if_else(
        pc.equal(joined, ""),
        pa.nulls(len(rows), _STRING),
        pc.binary_join_element_wise("{", inner, "}", ""),
    )


def _blank(values: pa.Array) -> np.ndarray:
    """Which strings are null, empty or all whitespace (as Python's `str.isspace` means it).

    Only strings whose first byte could start a whitespace character go to the regex.
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=bool)
    offsets = np.frombuffer(values.buffers()[1], np.int32, n + 1, values.offset * 4)
    data = values.buffers()[2]
    nonempty = offsets[1:] > offsets[:-1]
    first = np.zeros(n, dtype=np.uint8)
    if data is not None and nonempty.any():
        first[nonempty] = np.frombuffer(data, np.uint8)[offsets[:-1][nonempty]]
    blank = ~nonempty | ~_valid(values)
    maybe = np.flatnonzero(nonempty & _SPACE_LEADS[first] & ~blank)
    if len(maybe):
        matched = pc.match_substring_regex(values.take(pa.array(maybe)), _BLANK)
        blank[maybe] = _np(matched)
    return blank


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """values[idx] for ascending distinct `idx`; no copy when that is every row."""
    if len(idx) == len(values):
        return values
    return values.take(pa.array(idx))


def _length(values: pa.Array) -> pa.Array:
    return pc.cast(pc.binary_length(values), _STRING)


def _is_turn_list(typ: pa.DataType) -> bool:
    if not pa.types.is_list(typ) or not pa.types.is_struct(typ.value_type):
        return False
    fields = typ.value_type
    return all(
        fields.field(i).type == _STRING
        for i in range(fields.num_fields)
        if fields.field(i).name in TURN_KEYS
    )


def _plain(values: pa.Array) -> pa.Array:
    """Strings as plain `string` (Parquet may give large or dictionary-encoded ones)."""
    typ = values.type
    if pa.types.is_dictionary(typ) and (
        pa.types.is_string(typ.value_type) or pa.types.is_large_string(typ.value_type)
    ):
        return pc.cast(values, _STRING)
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return pc.cast(values, _STRING)
    if pa.types.is_large_list(typ) and pa.types.is_struct(typ.value_type):
        return pc.cast(values, pa.list_(typ.value_type))
    return values


def _one_chunk(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def _valid(values: pa.Array) -> np.ndarray:
    return _np(values.is_valid())


def _np(values: pa.Array) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False)
