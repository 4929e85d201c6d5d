"""Reading the journal: what made each version of a table, from the entry its commit carries.

Writers put an `Entry` in every commit's transaction properties (`curation.commit`); commits
that describe themselves (an index build) are read from their Lance operation. Lakes written
before entries travelled with commits keep a `journal` table, which `Lake.journal_entries`
still reads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import lance
import orjson

from curation.commit import Entry, read_entry


def version_entries(ds: lance.LanceDataset, table: str) -> dict[int, dict[str, Any]]:
    """The journal row of every live version of `ds` that says what made it, by version."""
    out: dict[int, dict[str, Any]] = {}
    for v in ds.versions():
        number = int(v["version"])
        entry = read_entry(ds, number) or derived_entry(ds, number)
        if entry is not None:
            out[number] = {
                "table_name": table,
                "version": number,
                "operation": entry.operation,
                "message": entry.message,
                "args": orjson.dumps(entry.args).decode(),
                "rows_added": entry.rows_added,
                "rows_removed": entry.rows_removed,
                "at": as_datetime(v["timestamp"]),
            }
    return out


def derived_entry(ds: lance.LanceDataset, version: int) -> Entry | None:
    """An entry for a commit that describes itself: an index build says what it indexed."""
    try:
        tx = ds.read_transaction(version)
    except (OSError, ValueError):
        return None
    op = tx.operation if tx else None
    if type(op).__name__ != "CreateIndex":
        return None
    names = [str(getattr(i, "name", "?")) for i in getattr(op, "new_indices", [])]
    return Entry("index", f"index built: {', '.join(names) or 'none'}", {"indices": names})


def as_datetime(value: int | dt.datetime) -> dt.datetime:
    """A Lance version timestamp (a datetime, or nanoseconds/seconds since the epoch)."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromtimestamp(value / 1e9 if value > 1e12 else value, dt.UTC)
