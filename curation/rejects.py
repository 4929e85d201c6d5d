"""The `rejects` table: rows an ingest with `--on-error skip` could not take, with the reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import lance
import orjson
import pyarrow as pa

from curation.lake import Lake
from curation.readers import BadRow
from curation.schema import REJECTS_SCHEMA


def reject_row(
    batch: str, source: str, file: str, line: int, reason: str, raw: Any, now: dt.datetime
) -> dict[str, Any]:
    """One `rejects` row; `raw` is what was read (cut to 10,000 characters)."""
    if isinstance(raw, BadRow):
        text = raw.raw
    else:
        text = orjson.dumps(raw, default=str).decode()[:10_000]
    return {
        "batch": batch,
        "source": source,
        "file": file,
        "line": line,
        "reason": reason,
        "raw": text,
        "rejected_at": now,
    }


def append_rejects(lake: Lake, rows: list[dict[str, Any]]) -> None:
    """Append rows to `rejects`, creating the table on first use."""
    data = pa.Table.from_pylist(rows, schema=REJECTS_SCHEMA)
    uri = lake.table_uri("rejects")
    lance.write_dataset(data, uri, mode="append" if lake.has_table("rejects") else "create")


def list_rejects(lake: Lake, batch: str | None = None, limit: int = 50) -> pa.Table:
    """Rejected rows (newest first), optionally of one ingest batch."""
    if not lake.has_table("rejects"):
        return REJECTS_SCHEMA.empty_table()
    ds = lake.dataset("rejects")
    table = ds.to_table(filter=f"batch = '{batch}'" if batch else None)
    return table.sort_by([("rejected_at", "descending"), ("line", "ascending")]).slice(0, limit)
