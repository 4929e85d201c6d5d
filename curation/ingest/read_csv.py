"""CSV and TSV: rows as dicts keyed by the header, every malformed record a BadRow at its line.

An empty cell is a missing field, so one CSV can hold several shapes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curation.errors import CurationError
from curation.ingest.inputs import BadRow, Progress, Row, gzip_errors, open_binary


def read_csv(p: Path, progress: Progress) -> Iterator[Row]:
    """CSV/TSV rows as dicts keyed by the header; every malformed record is a BadRow.

    Quoting is read strictly: a quote that is never closed (which would swallow the records
    after it into one field) or text after a closing quote is an error at its line, and so is
    a record with more or fewer fields than the header, or a header naming a column twice.
    """
    delimiter = "\t" if p.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    with open_binary(p) as raw, gzip_errors(p):
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
