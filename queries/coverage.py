"""What a mix's rows give a completion-only trainer: rows with no assistant reply to learn."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from curation import Lake
from queries.plan import Selection

NO_REPLY_FILTER = "len(list_filter(messages, lambda m: m.role = 'assistant')) > 0"
"""The SQL that keeps only rows with an assistant turn (for a component's `sql`)."""


def rows_without_reply(
    lake: Lake, records_version: int, selection: Selection
) -> dict[str, tuple[int, int]]:
    """Per split: (rows whose messages hold no assistant turn, rows).

    Text rows count as having a reply (their whole text is the target).
    """
    rows = pa.table({"id": selection.ids, "split": selection.split})
    records = lake.records(records_version).to_table(columns=["id", "kind", "messages"])
    con = duckdb.connect()
    con.register("sel", rows)
    con.register("rec", records)
    got = con.execute(
        """SELECT sel.split,
                  count(*) FILTER (WHERE rec.kind = 'chat' AND
                      coalesce(len(list_filter(rec.messages, lambda m: m.role = 'assistant')), 0) = 0),
                  count(*)
           FROM sel JOIN rec USING (id) GROUP BY sel.split ORDER BY sel.split"""
    ).fetchall()
    return {str(split): (int(missing), int(total)) for split, missing, total in got}


def no_reply_warnings(counts: dict[str, tuple[int, int]]) -> list[str]:
    """One warning per split that has rows without an assistant turn."""
    return [
        f"{missing:,} of {total:,} {split} rows have no assistant turn: completion-only "
        "training and the heldout suite leave them out (no loss to compute); filter them with "
        f'"… AND {NO_REPLY_FILTER}" or set completion_only_loss: false'
        for split, (missing, total) in counts.items()
        if missing
    ]
