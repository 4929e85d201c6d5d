"""Exact JSON for what ingest keeps in `meta`: big integers, NaN, and the reserved keys.

`meta` is always strict JSON (DuckDB's JSON functions read every row of it), written compact
with sorted keys. Three things plain orjson would change silently are kept exactly:

- integers past 64 bits keep every digit (orjson reads them as floats and cannot write them,
  so such input is parsed and written with the stdlib `json`);
- NaN and ±infinity (Parquet floats; JSON has none) become the tagged value
  `{"mixlake.float": "NaN" | "Infinity" | "-Infinity"}`, which `loads` turns back into the float;
- message fields other than role/content are kept under `MESSAGE_FIELDS_KEY`, a list aligned
  with the record's messages (null where a message has none).

An input that uses either reserved key itself is refused, so a tag can never be confused with
data. `loads(dumps(x)) == x` for every value JSON or a Parquet file can hold (NaN compared as
NaN).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

MESSAGE_FIELDS_KEY = "mixlake.message_fields"
"""Top-level `meta` key of the extra fields of each message (a list aligned with messages)."""

FLOAT_KEY = "mixlake.float"
"""Key of the tagged value that stands for a NaN or infinite float."""

_FLOAT_TAGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class Unrepresentable(ValueError):
    """A value that cannot be written to `meta` exactly; the message is the reason."""


def dumps(value: Any, *, refuse_tags: bool = False) -> str:
    """`value` as compact JSON with sorted keys, exactly (see the module docstring).

    Args:
        value: what to write.
        refuse_tags: raise if the value itself uses `FLOAT_KEY` as a key anywhere (input
            data must not, or its tag could not be told from a real NaN).

    Raises:
        Unrepresentable: the value nests too deeply, cannot be written, or (with
            `refuse_tags`) uses the reserved key.
    """
    try:
        text = orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # integers past 64 bits, nesting orjson refuses
        if isinstance(value, dict) and all(type(k) is str for k in value):
            # Key by key, so every other value is written as orjson writes it (the bulk
            # path writes each field on its own and must give the same text).
            parts = [
                orjson.dumps(k).decode() + ":" + dumps(value[k], refuse_tags=refuse_tags)
                for k in sorted(value)
            ]
            return "{" + ",".join(parts) + "}"
        text = _stdlib_dumps(value, allow_nan=True)  # the slower stdlib way
    if refuse_tags and f'"{FLOAT_KEY}":' in text:
        raise Unrepresentable(f"the key {FLOAT_KEY!r} is reserved for mixlake's NaN tag")
    # orjson writes NaN and infinity as null, the stdlib as NaN/Infinity: tag them instead.
    if ("null" in text or "NaN" in text or "Infinity" in text) and _has_nonfinite(value):
        tagged = _tagged(value)
        try:
            return orjson.dumps(tagged, default=str, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            return _stdlib_dumps(tagged, allow_nan=False)
    return text


def loads(text: str) -> Any:
    """Read `meta` JSON back: big integers exact, tagged floats as floats."""
    return json.loads(text, object_hook=_untag)


def _stdlib_dumps(value: Any, *, allow_nan: bool) -> str:
    try:
        return json.dumps(
            value,
            default=str,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=allow_nan,
        )
    except RecursionError:
        raise Unrepresentable("a value is nested too deeply to store") from None
    except TypeError as e:  # keys of mixed types cannot be sorted
        raise Unrepresentable(f"a value cannot be written as JSON ({e})") from None


def _has_nonfinite(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is float:
            if not math.isfinite(v):
                return True
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return False


def _tagged(value: Any) -> Any:
    """A copy of `value` with every NaN or infinite float replaced by its tag."""
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return {FLOAT_KEY: name}
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tagged(v) for v in value]
    return value


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and FLOAT_KEY in obj and obj[FLOAT_KEY] in _FLOAT_TAGS:
        return _FLOAT_TAGS[obj[FLOAT_KEY]]
    return obj
