"""The `rejects` table: rows an ingest with `--on-error skip` could not take, with the reason.

Rejects belong to their batch atomically. While an ingest runs, its rejects are written as
data files that no version references (`append_rejects`), so an ingest that fails or is
killed leaves none visible. The ingest's `records` commit carries those files' metadata in
its journal entry; right after it, `seal` commits them to `rejects` as one version. A crash
between the two is rolled forward by `repair` (run by the next write and by every read of
`rejects`), so a committed batch's rejects are always there. An ingest that commits no
`records` version (every row rejected or already present) seals its rejects directly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import lance
import orjson
import pyarrow as pa
from lance.fragment import FragmentMetadata, write_fragments

from curation.commit import Entry, read_entry
from curation.ingest.inputs import BadRow
from curation.lake import Lake
from curation.schema import REJECTS_SCHEMA
from curation.sqltext import equals

REJECTS = "rejects"
ARG = "rejects_fragments"
"""The journal-entry argument of an ingest that lists its not-yet-sealed reject files."""

_pending: dict[tuple[str, str], list[FragmentMetadata]] = {}


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
    """Write rejected rows of one batch as data files no version references yet.

    They become visible when the batch is sealed (`take_pending` + `seal`).
    """
    if not rows:
        return
    data = pa.Table.from_pylist(rows, schema=REJECTS_SCHEMA)
    ds = _table(lake)
    fragments = write_fragments(data, ds, schema=REJECTS_SCHEMA, mode="append")
    for batch in set(data.column("batch").to_pylist()):
        _pending.setdefault((lake.uri, batch), []).extend(fragments)


def take_pending(lake: Lake, batch: str) -> list[FragmentMetadata]:
    """The unsealed reject files of `batch` written by this process (and forget them)."""
    return _pending.pop((lake.uri, batch), [])


def discard_pending(lake: Lake, batch: str) -> None:
    """Forget a failed batch's reject files (they stay invisible; `gc` removes them)."""
    _pending.pop((lake.uri, batch), None)


def fragments_arg(fragments: list[FragmentMetadata]) -> list[str]:
    """Reject files as a journal-entry argument (JSON of each fragment's metadata)."""
    return [orjson.dumps(f.to_json()).decode() for f in fragments]


def seal(lake: Lake, batch: str, fragments: list[FragmentMetadata]) -> int | None:
    """Commit a batch's reject files to `rejects` as one version (None when there are none).

    Call it under the lake's writer lock. Sealing twice is a no-op.
    """
    if not fragments or _has_batch(lake, batch):
        return None
    ds = _table(lake)
    rows = sum(int(f.physical_rows) for f in fragments)
    entry = Entry("rejects", f"rejects of batch {batch}: {rows} rows", {"batch": batch}, rows)
    return lake.commit(REJECTS, lance.LanceOperation.Append(fragments), int(ds.version), entry)


def repair(lake: Lake) -> None:
    """Seal the rejects of the latest ingest when a crash came between its two commits.

    Only the latest `records` version can be unsealed: every write holds the writer lock and
    runs this first. Call it under the writer lock.
    """
    unsealed = _unsealed(lake)
    if unsealed is not None:
        seal(lake, *unsealed)


def _unsealed(lake: Lake) -> tuple[str, list[FragmentMetadata]] | None:
    """The batch and reject files of the latest ingest when they are not in `rejects` yet."""
    records = lake.dataset("records")
    entry = read_entry(records, int(records.version))
    if entry is None or entry.operation != "ingest" or not entry.args.get(ARG):
        return None
    batch = str(entry.args.get("batch"))
    if _has_batch(lake, batch):
        return None
    return batch, [FragmentMetadata.from_json(text) for text in entry.args[ARG]]


def list_rejects(lake: Lake, batch: str | None = None, limit: int = 50) -> pa.Table:
    """Rejected rows (newest first), optionally of one ingest batch."""
    if _unsealed(lake) is not None:
        with lake.writing("repair rejects"):
            repair(lake)
    if not lake.has_table(REJECTS):
        return REJECTS_SCHEMA.empty_table()
    ds = lake.dataset(REJECTS)
    table = ds.to_table(filter=equals("batch", batch) if batch else None)
    return table.sort_by([("rejected_at", "descending"), ("line", "ascending")]).slice(0, limit)


def _has_batch(lake: Lake, batch: str) -> bool:
    if not lake.has_table(REJECTS):
        return False
    return lake.dataset(REJECTS).count_rows(filter=equals("batch", batch)) > 0


def ensure_table(lake: Lake) -> None:
    """Create the empty `rejects` table if the lake has none (call under the writer lock)."""
    if not lake.has_table(REJECTS):
        lance.write_dataset(
            REJECTS_SCHEMA.empty_table(),
            lake.table_uri(REJECTS),
            mode="create",
            transaction_properties=Entry("create", "created rejects").properties(),
        )


def _table(lake: Lake) -> lance.LanceDataset:
    """The `rejects` dataset.

    Ingest creates it up front under its writer lock: this also runs on the ingest's pipeline
    threads, which must not take the lock themselves.
    """
    ensure_table(lake)
    return lake.dataset(REJECTS)
