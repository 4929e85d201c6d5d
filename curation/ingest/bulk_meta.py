"""Extra fields as `meta` JSON, written in bulk exactly as the row path would.

The text is `curation.lossless.dumps`'s: orjson's, with NaN and infinity tagged.
"""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from curation.ingest.bulk_arrow import STRING, to_np
from curation.lossless import Unrepresentable, dumps

_NEEDS_ESCAPE = '[\\x00-\\x1f"\\\\]'
_RARE_CONTROLS = [c for c in range(0x20) if chr(c) not in "\b\t\n\f\r"]
_SHORT_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]
_SHORT_ESCAPES += [("\b", "\\b"), ("\f", "\\f")]


def render(name: str, values: pa.Array, json_source: bool) -> tuple[pa.Array, np.ndarray]:
    """`"name":value` as orjson writes it for each value; also which values it cannot write."""
    key = orjson.dumps(name).decode() + ":"
    typ = values.type
    bad = np.zeros(len(values), dtype=bool)
    if typ == STRING:
        text = pc.binary_join_element_wise(key + '"', escape(values), '"', "")
    elif pa.types.is_integer(typ):
        text = pc.binary_join_element_wise(key, pc.cast(values, STRING), "")
    elif pa.types.is_boolean(typ):
        text = pc.if_else(values, key + "true", key + "false")
    elif json_source and not pa.types.is_floating(typ):
        # Nested values gained other rows' keys, strings may have become timestamps.
        return pa.nulls(len(values), STRING), np.ones(len(values), dtype=bool)
    else:
        if json_source:  # an integral double may have been written `1` (the row path keeps that)
            x = to_np(values).astype(np.float64)
            bad = ~np.isfinite(x) | (x == np.floor(x))
        out: list[str | None] = []
        for i, v in enumerate(values.to_pylist()):
            try:
                # NaN tagged, reserved keys refused: exactly the row path's `lossless.dumps`.
                out.append(None if bad[i] else key + dumps(v, refuse_tags=True))
            except Unrepresentable:
                bad[i] = True
                out.append(None)
        text = pa.array(out, STRING)
    return text, bad


def escape(values: pa.Array) -> pa.Array:
    """JSON string escaping exactly as orjson does it."""
    if not pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        return values
    for raw, escaped in _SHORT_ESCAPES:
        values = pc.replace_substring(values, raw, escaped)
    if pc.any(pc.match_substring_regex(values, "[\\x00-\\x1f]")).as_py():
        for c in _RARE_CONTROLS:
            values = pc.replace_substring(values, chr(c), f"\\u{c:04x}")
    return values


def meta_column(
    rows: np.ndarray, frags: dict[str, tuple[np.ndarray, pa.Array]], n: int
) -> pa.Array:
    """`meta` of the output rows: the rendered extra fields, keys sorted, or null if none."""
    if not frags or not len(rows):
        return pa.nulls(len(rows), STRING)
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
        pa.nulls(len(rows), STRING),
        pc.binary_join_element_wise("{", inner, "}", ""),
    )
