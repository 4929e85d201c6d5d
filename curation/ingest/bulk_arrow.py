"""Arrow array helpers of the bulk path: blank strings, zero-copy takes, NumPy views.

Used by `bulk`, `bulk_turns`, `bulk_meta` and `bulk_ids`; "blank" is exactly what Python's
`not s or s.isspace()` calls blank, so the bulk path rejects what the row path rejects.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

STRING = pa.string()

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
BLANK_RE = "^[" + "".join(f"\\x{{{c:x}}}" for c in WHITESPACE) + "]*$"
"""RE2 pattern matching exactly the strings Python's `not s or s.isspace()` calls blank."""
_SPACE_LEADS = np.zeros(256, dtype=bool)
_SPACE_LEADS[sorted({chr(c).encode()[0] for c in WHITESPACE})] = True
"""First UTF-8 bytes of the whitespace characters: a string starting otherwise is not blank."""


def blank(values: pa.Array) -> npt.NDArray[np.bool_]:
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
    blank = ~nonempty | ~valid(values)
    maybe = np.flatnonzero(nonempty & _SPACE_LEADS[first] & ~blank)
    if len(maybe):
        matched = pc.match_substring_regex(values.take(pa.array(maybe)), BLANK_RE)
        blank[maybe] = to_np(matched)
    return blank


def take_rows(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """values[idx] for ascending distinct `idx`; no copy when that is every row."""
    if len(idx) == len(values):
        return values
    return values.take(pa.array(idx))


def byte_length(values: pa.Array) -> pa.Array:
    """UTF-8 byte length of each string, as strings (the length prefixes of canonical forms)."""
    return pc.cast(pc.binary_length(values), STRING)


def one_chunk(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`values` as one contiguous array, combining chunks only when there is more than one."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def valid(values: pa.Array) -> npt.NDArray[np.bool_]:
    """Boolean mask of the non-null entries."""
    mask: npt.NDArray[np.bool_] = to_np(values.is_valid())
    return mask


def to_np(values: pa.Array) -> np.ndarray:
    """`values` as a NumPy array, copying only where Arrow's layout requires it (nulls, bools)."""
    array: np.ndarray = values.to_numpy(zero_copy_only=False)
    return array
