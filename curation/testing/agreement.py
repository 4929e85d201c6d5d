"""The row/bulk agreement check: ingest's two paths must make exactly the same records.

The row path (`curation.ingest.row.normalize_row`) defines a record; the bulk path
(`curation.ingest.bulk.normalize_table`) is the fast way to the same result. For every row the
bulk path accepts, its kind, text, turns, rejected answer, meta and id must equal the row
path's; a row the row path rejects must be handed back, never accepted. Tests of both paths
call `assert_paths_agree`; it refuses to pass having compared nothing. It raises
AssertionError itself (no `assert` statements), so it checks under `python -O` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from curation.ingest.bulk import normalize_table
from curation.ingest.bulk_ids import record_ids
from curation.ingest.read_columnar import present
from curation.ingest.row import RowRejected, normalize_row
from curation.schema import record_id

Outcome = tuple[str, str, Any, Any, Any, str] | str
"""A record as (kind, text, turns, rejected, meta, id), or the row path's rejection."""


def row_outcome(row: Any, mapping: dict[str, str] | None = None, kind: str = "auto") -> Outcome:
    """What the row path makes of one raw row.

    Args:
        row: the row as the row path sees it (a parsed JSON value, or a dict of fields).
        mapping: core field → input field renames, as for `normalize_row`.
        kind: `auto`, or the kind every row must be.

    Returns:
        The record's columns, or `"rejected: <reason>"`.
    """
    try:
        n = normalize_row(row, mapping, kind)
    except RowRejected as e:
        return f"rejected: {e}"
    turns = [list(t) for t in n.messages] if n.messages else None
    return (
        n.kind,
        n.text,
        turns,
        n.rejected,
        n.meta,
        record_id(n.kind, n.text, n.messages, n.rejected),
    )


def bulk_outcomes(
    table: pa.Table,
    mapping: dict[str, str] | None = None,
    kind: str = "auto",
    *,
    json_source: bool,
) -> dict[int, Outcome]:
    """What the bulk path makes of `table`: row index → record, for the rows it accepts.

    Also checks that every row is either accepted or handed back to the row path, not both.

    Args:
        table: raw rows, one column per input field (a null is an absent field).
        mapping: core field → input field renames, as for `normalize_table`.
        kind: `auto`, or the kind every row must be.
        json_source: `table` was parsed from JSON by Arrow (see `normalize_table`).

    Returns:
        The accepted rows' records, keyed by their index in `table`.
    """
    bulk = normalize_table(table, mapping, kind, json_source=json_source)
    accepted, handed_back = set(bulk.rows.tolist()), set(bulk.fallback.tolist())
    if accepted & handed_back:
        raise AssertionError(
            f"rows both accepted and handed back: {sorted(accepted & handed_back)}"
        )
    missing = set(range(table.num_rows)) - accepted - handed_back
    if missing:
        raise AssertionError(f"rows neither accepted nor handed back: {sorted(missing)}")
    ids = record_ids(bulk.core)[0].to_pylist()
    out: dict[int, Outcome] = {}
    for i, rec, rid in zip(bulk.rows.tolist(), bulk.core.to_pylist(), ids, strict=True):
        msgs = rec["messages"]
        turns = [[m["role"], m["content"]] for m in msgs] if msgs is not None else None
        out[i] = (rec["kind"], rec["text"], turns, rec["rejected"], rec["meta"], rid)
    return out


def assert_paths_agree(
    table: pa.Table,
    rows: Sequence[Any] | None = None,
    mapping: dict[str, str] | None = None,
    kind: str = "auto",
    *,
    json_source: bool,
) -> int:
    """Check that the bulk path gives exactly the row path's record for every row it accepts.

    Args:
        table: raw rows as Arrow holds them (from `read_jsonl.jsonl_table`, or a Parquet or
            Hugging Face table).
        rows: row i of `table` as the row path sees it (for JSON, the parsed line); None
            takes the table's own rows with null fields dropped, as the columnar readers do.
        mapping: core field → input field renames.
        kind: `auto`, or the kind every row must be.
        json_source: `table` was parsed from JSON by Arrow (see `normalize_table`).

    Returns:
        How many rows were compared (those the bulk path accepted); at least one.

    Raises:
        AssertionError: naming the first row whose records differ, or when the bulk path
            accepted no row, so nothing was compared.
    """
    if rows is None:
        rows = [present(r) for r in table.to_pylist()]
    if len(rows) != table.num_rows:
        raise AssertionError(f"{len(rows)} rows for a table of {table.num_rows}")
    accepted = bulk_outcomes(table, mapping, kind, json_source=json_source)
    if not accepted:
        raise AssertionError(
            f"the bulk path handed back all {table.num_rows} rows: nothing was compared"
        )
    for i in sorted(accepted):
        expected = row_outcome(rows[i], mapping, kind)
        if accepted[i] != expected:
            raise AssertionError(
                f"row {i} differs between the paths: {rows[i]!r}\n"
                f"  bulk: {accepted[i]!r}\n  row:  {expected!r}"
            )
    return len(accepted)
