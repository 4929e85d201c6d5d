"""JSON readers: JSONL in blocks of whole lines, and JSON arrays parsed whole.

A JSONL block is parsed in bulk by Arrow or line by line. Line-by-line parsing is strict and
exact (`jsonparse.parse`); Arrow's bulk parse is used only for blocks it reads exactly as the
line-by-line path would.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

from curation.errors import CurationError
from curation.ingest.inputs import (
    MAX_TYPE_DEPTH,
    BadRow,
    Block,
    Progress,
    Row,
    gzip_errors,
    open_binary,
    type_depth,
)
from curation.ingest.jsonparse import BadJSON, parse


def read_jsonl(p: Path, progress: Progress) -> Iterator[Row]:
    """(line number, object or BadRow) for every non-blank line of a JSONL file."""
    for first, block in jsonl_blocks(p, progress):
        yield from jsonl_rows(block, first)


BLOCK_BYTES = 8 << 20
"""Bytes of whole lines per JSONL block (the unit of bulk parsing)."""


def jsonl_blocks(
    p: Path, progress: Progress | None = None, block_bytes: int | None = None
) -> Iterator[tuple[int, Block]]:
    """Whole lines of a JSONL file (plain or gzip) in blocks: (number of the first line, bytes).

    Blocks are about `block_bytes` (default `BLOCK_BYTES`), read straight into their own
    buffer and completed with the rest of their last line (no copy of the block).
    """
    block_bytes = block_bytes or BLOCK_BYTES
    spare = 1 << 16
    with open(p, "rb") as raw, gzip_errors(p):
        f: IO[bytes] = gzip.GzipFile(fileobj=raw) if p.name.endswith(".gz") else raw  # type: ignore[assignment]
        line, last = 1, 0
        while True:
            block = bytearray(block_bytes + spare)
            n = f.readinto(memoryview(block)[:block_bytes])  # type: ignore[attr-defined]
            if not n:
                return
            tail = f.readline() if block[n - 1] != 10 else b""
            if len(tail) <= spare:
                block[n : n + len(tail)] = tail
                del block[n + len(tail) :]
            else:  # a line longer than the spare room
                del block[n:]
                block += tail
            if progress:
                pos = raw.tell()
                progress(pos - last)
                last = pos
            yield line, block
            line += block.count(b"\n")


def jsonl_rows(block: Block, first: int) -> Iterator[Row]:
    """Parse a block of JSONL lines one by one: (line number, object or BadRow).

    Strict and exact (`jsonparse.parse`): a duplicate key or an unparsable line is a BadRow
    with its reason; integers past 64 bits keep their digits.
    """
    lines: list[Block] = block.split(b"\n")  # type: ignore[assignment]
    if lines and not lines[-1]:
        lines.pop()
    for number, line in enumerate(lines, start=first):
        try:
            yield number, parse(line)
        except BadJSON as e:
            if line.strip():  # blank lines are skipped, checked only on failure
                yield number, BadRow(str(e), _raw_text(line))


def jsonl_table(block: Block) -> tuple[pa.Table, np.ndarray] | None:
    """Parse a block of JSONL lines in bulk with Arrow: (table, start offset of each line).

    Row i of the table is line i of the block. None when the block has anything Arrow's
    reader treats differently from the line-by-line path (orjson): a blank or indented line,
    a line that is not one object, invalid UTF-8, an escaped lone surrogate, a field whose
    type changes between rows, a duplicate key. The caller then reads the block line by
    line, which reports the exact line and reason where there is one. Types are inferred
    (an explicit schema for the core fields made parsing a third slower); a core field of
    an unexpected type is for `bulk.normalize_table` to hand back row by row.
    """
    if not block.startswith(b"{"):
        return None
    data = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(data == 10)
    starts = np.concatenate([[0], ends + 1])
    if starts[-1] == len(block):
        starts = starts[:-1]
    if not (data[starts] == 123).all():  # every line starts with "{": no blank lines either
        return None
    if b"\\u" in block and _lone_surrogate(block):
        return None
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        table = pa_json.read_json(pa.BufferReader(pa.py_buffer(block)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(starts):  # two objects on a line
        return None
    if any(type_depth(f.type) > MAX_TYPE_DEPTH for f in table.schema):
        return None  # Arrow's kernels crash on such types; the row path refuses the line
    return table, starts


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_PAIR = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _lone_surrogate(block: Block) -> bool:
    """Whether an escaped surrogate may be unpaired (orjson rejects those; Arrow may not)."""
    return len(_SURROGATE.findall(block)) != 2 * len(_SURROGATE_PAIR.findall(block))


def _raw_text(line: Block, limit: int = 10_000) -> str:
    return line[:limit].decode("utf-8", errors="replace").rstrip("\n")


def read_json(p: Path, progress: Progress) -> Iterator[Row]:
    """(item number, object) for every item of a JSON array (or the one object) in `p`."""
    with open_binary(p) as f, gzip_errors(p):
        data = f.read()
    progress(p.stat().st_size)
    try:
        parsed = parse(data)
    except BadJSON as e:
        try:
            json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as u:
            raise CurationError(f"{p}: not valid UTF-8 at byte {u.start}") from None
        except json.JSONDecodeError as j:
            raise CurationError(
                f"{p}:{j.lineno}: invalid JSON: {j.msg} at column {j.colno}"
            ) from None
        except RecursionError:
            pass
        raise CurationError(f"{p}: {e}") from None
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list):
        raise CurationError(f"{p}: expected a JSON array of records")
    yield from enumerate(parsed, start=1)
