"""Parsing one JSON value the way ingest needs it: strict, exact, and never a silent choice.

orjson is the fast parser, but it keeps only the last of duplicate keys and reads integers
past 64 bits as floats. `parse` notices both: a duplicate key is an error naming the key, and
a line with a run of 19 or more digits (the only way to write such an integer) is parsed again
with the stdlib, which keeps integers exact. Input nested past orjson's limit is refused with
that reason rather than a recursion error.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_STRING_OR_KEY = re.compile(rb'"(?:[^"\\]|\\.)*"[ \t\r\n]*(:)?')
MAX_DEPTH = 1024
"""orjson's nesting limit; deeper input is refused."""


class BadJSON(ValueError):
    """Input that is not one JSON value mixlake can keep exactly; the message is the reason."""


def parse(data: bytes | bytearray | memoryview) -> Any:
    """Parse JSON `data` strictly and exactly (see the module docstring).

    Raises:
        BadJSON: invalid JSON (with line/column where known), invalid UTF-8, nesting too
            deep, or a duplicate key.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise BadJSON(reason(bytes(data), e)) from None
    if isinstance(value, (dict, list)):
        if _LONG_DIGITS.search(data):
            value = json.loads(bytes(data))  # orjson validated it; the stdlib keeps big ints
        key = duplicate_key(data, value)
        if key is not None:
            raise BadJSON(f"duplicate key {key!r} (JSON keeps one value per key)")
    return value


def duplicate_key(data: bytes | bytearray | memoryview, value: Any) -> str | None:
    """The first key that occurs twice in one object of `data` (parsed as `value`), or None.

    A duplicate shows as fewer keys in the parsed value than key tokens in the text (a
    string followed by `:`; scanning string tokens left to right never starts inside one),
    so most inputs cost one regex scan and a count; only a mismatch is parsed again to name
    the key.
    """
    tokens = _STRING_OR_KEY.findall(data)
    in_text = len(tokens) - tokens.count(b"")
    if in_text == _count_keys(value):
        return None
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for k, _ in items:
            if k in seen and not found:
                found.append(k)
            seen.add(k)
        return dict(items)

    json.loads(bytes(data), object_pairs_hook=pairs)
    return found[0] if found else None


def _count_keys(value: Any) -> int:
    count, stack = 0, [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            count += len(v)
            stack.extend(v.values())
        elif type(v) is list:
            stack.extend(v)
    return count


def reason(data: bytes, e: Exception) -> str:
    """Why `data` is not valid JSON, in words (orjson's own messages are terse)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as u:
        return f"not valid UTF-8 (byte 0x{data[u.start]:02x} at column {u.start + 1})"
    if "depth" in str(e) or "recursion" in str(e):
        return f"invalid JSON: nested deeper than {MAX_DEPTH} levels"
    try:
        json.loads(data.rstrip(b"\r\n"))
    except RecursionError:
        return f"invalid JSON: nested deeper than {MAX_DEPTH} levels"
    except json.JSONDecodeError as j:
        what = j.msg.removesuffix(" at")
        return f"invalid JSON: {what[:1].lower()}{what[1:]} (at column {j.colno})"
    except ValueError as v:
        return f"invalid JSON: {v}"
    return f"invalid JSON: {e}"
