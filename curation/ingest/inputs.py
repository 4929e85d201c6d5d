"""What every reader shares: the (location, row) pairs it yields, and opening its file.

A location is a line number for line-based files (JSONL, CSV), an item number for JSON arrays
and a row number for Parquet and Hugging Face folders, so errors can say exactly where.
`MAX_TYPE_DEPTH` bounds the Arrow types a reader hands the bulk path.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from curation.errors import CurationError

Progress = Callable[[int], None]
"""Called with the number of bytes just consumed from the current file."""


@dataclass(frozen=True)
class BadRow:
    """A row that could not even be parsed; `raw` is what was read."""

    reason: str
    raw: str


Block = bytes | bytearray
"""Bytes of whole JSONL lines (blocks are read into bytearrays to avoid copies)."""

Row = tuple[int, Any]
"""(1-based location, parsed object or BadRow)."""


def open_binary(p: Path) -> IO[bytes]:
    """Open `p` for reading bytes, decompressing a `.gz` file."""
    if p.name.endswith(".gz"):
        return gzip.open(p, "rb")  # type: ignore[return-value]
    return open(p, "rb")


@contextmanager
def gzip_errors(p: Path) -> Iterator[None]:
    """Turn what reading a broken `.gz` raises into one-line CurationErrors naming the file."""
    try:
        yield
    except gzip.BadGzipFile as e:
        raise CurationError(f"{p}: not a gzip file ({e})") from None
    except EOFError:
        raise CurationError(
            f"{p}: the gzip data is truncated (it ends before its end marker)"
        ) from None
    except zlib.error as e:
        raise CurationError(f"{p}: the gzip data is corrupt ({e})") from None


MAX_TYPE_DEPTH = 64
"""Deepest nesting of an Arrow type the bulk path handles (Arrow's kernels recurse per level
and crash on types thousands deep; JSON that deep goes row by row, where it is refused)."""


def type_depth(typ: pa.DataType) -> int:
    """How deeply `typ` nests (1 for a flat type)."""
    depth, level = 1, [typ]
    while level:
        nested = [t.field(i).type for t in level for i in range(t.num_fields)]
        if not nested:
            return depth
        depth, level = depth + 1, nested
        if depth > MAX_TYPE_DEPTH:
            return depth
    return depth
