"""History operations on `records`: diff two versions, roll back, delete a slice, gc."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from curation.errors import CurationError
from curation.lake import Lake, VersionRef


@dataclass(frozen=True)
class SourceDiff:
    """Rows added and removed for one source."""

    source: str
    added: int
    removed: int


@dataclass
class VersionDiff:
    """What changed in `records` between versions `a` and `b`."""

    a: int
    b: int
    by_source: list[SourceDiff]
    added_examples: list[dict[str, str]] = field(default_factory=list)
    removed_examples: list[dict[str, str]] = field(default_factory=list)
    added_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)

    @property
    def added(self) -> int:
        """Rows in `b` and not in `a`."""
        return sum(s.added for s in self.by_source)

    @property
    def removed(self) -> int:
        """Rows in `a` and not in `b`."""
        return sum(s.removed for s in self.by_source)


def diff(
    lake: Lake, a: VersionRef, b: VersionRef, *, examples: int = 3, ids: bool = False
) -> VersionDiff:
    """Rows added and removed between two versions (or tags), per source, with examples."""
    va, vb = lake.resolve(a), lake.resolve(b)
    # Only ids and sources are compared; texts are fetched for the few examples shown.
    old = lake.records(va).to_table(columns=["id", "source"])
    new = lake.records(vb).to_table(columns=["id", "source"])
    con = duckdb.connect()
    con.register("old_t", old)
    con.register("new_t", new)
    con.execute("CREATE TEMP TABLE added AS SELECT * FROM new_t ANTI JOIN old_t USING (id)")
    con.execute("CREATE TEMP TABLE removed AS SELECT * FROM old_t ANTI JOIN new_t USING (id)")
    rows = con.execute(
        """SELECT source, sum(a)::BIGINT, sum(r)::BIGINT FROM (
             SELECT source, 1 AS a, 0 AS r FROM added
             UNION ALL SELECT source, 0, 1 FROM removed) GROUP BY source ORDER BY source"""
    ).fetchall()
    out = VersionDiff(va, vb, [SourceDiff(s, int(x), int(y)) for s, x, y in rows])

    def sample(table: str, version: int) -> list[dict[str, str]]:
        got = con.execute(f"SELECT id FROM {table} ORDER BY id LIMIT {int(examples)}").fetchall()
        if not got:
            return []
        listed = ", ".join(f"'{i}'" for (i,) in got)
        found = lake.records(version).to_table(
            columns=["id", "source", "text"], filter=f"id IN ({listed})"
        )
        by_id = {r["id"]: r for r in found.to_pylist()}
        return [
            {"id": i, "source": by_id[i]["source"], "text": by_id[i]["text"][:120]} for (i,) in got
        ]

    out.added_examples, out.removed_examples = sample("added", vb), sample("removed", va)
    if ids:
        out.added_ids = [r[0] for r in con.execute("SELECT id FROM added ORDER BY id").fetchall()]
        out.removed_ids = [
            r[0] for r in con.execute("SELECT id FROM removed ORDER BY id").fetchall()
        ]
    return out


def rollback(lake: Lake, to: VersionRef) -> int:
    """Make version/tag `to` the latest state of `records`, as a new version.

    History is kept, so a rollback can itself be rolled back. Costs one manifest write,
    whatever the table size. Returns the new version number.
    """
    target = lake.resolve(to)
    latest = lake.latest_version()
    if target == latest:
        raise CurationError(f"records is already at version {target}; nothing to roll back")
    before = lake.records(latest).count_rows()
    ds = lake.dataset("records", target)
    after = ds.count_rows()
    ds.restore()
    new = lake.latest_version()
    lake.journal(
        "records",
        new,
        "rollback",
        f"rollback to version {target} (from {latest}): {before} → {after} rows",
        {"to": str(to), "target": target, "from": latest},
        max(after - before, 0),
        max(before - after, 0),
    )
    return new


@dataclass(frozen=True)
class DeleteResult:
    """Rows removed by a delete, and the version it made (None when nothing matched)."""

    rows_removed: int
    version: int | None


def delete(lake: Lake, *, where: str | None = None, batch: str | None = None) -> DeleteResult:
    """Delete rows matching a SQL predicate, or every row of one ingest batch, as a new version."""
    if (where is None) == (batch is None):
        raise CurationError("give exactly one of --where or --batch")
    if batch is not None:
        if "'" in batch:
            raise CurationError(f"bad batch id {batch!r}")
        predicate = f"batch = '{batch}'"
    else:
        predicate = str(where)
    ds = lake.dataset("records")
    try:
        matched = ds.count_rows(filter=predicate)
    except (ValueError, OSError) as e:
        raise CurationError(f"bad --where predicate {predicate!r}: {_first_line(e)}") from None
    if matched == 0:
        if batch is not None and batch not in _batches(lake):
            raise CurationError(f"no batch {batch!r} in records; see `mixlake log`")
        return DeleteResult(0, None)
    ds.delete(predicate)
    new = lake.latest_version()
    lake.journal(
        "records",
        new,
        "delete",
        f"delete where {predicate}: -{matched} rows",
        {"where": where, "batch": batch},
        0,
        matched,
    )
    return DeleteResult(matched, new)


def _batches(lake: Lake) -> set[str]:
    table = lake.records().to_table(columns=["batch"])
    return set(pa.compute.unique(table.column("batch")).to_pylist())


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    if not text:
        return type(e).__name__
    line = text.splitlines()[0]
    line = re.sub(r",?\s*/\S+\.rs:\d+.*$", "", line)  # Lance appends its Rust source location
    return line.removeprefix("Invalid user input: ")[:300]


@dataclass(frozen=True)
class GcResult:
    """Versions and bytes that gc removed."""

    versions_removed: int
    bytes_removed: int
    kept_tagged: list[int]


def gc(lake: Lake, older_than_days: float) -> GcResult:
    """Remove `records` versions older than N days, never a tagged or pinned one, never the latest."""
    if older_than_days < 0:
        raise CurationError("--older-than must be zero or more days")
    ds = lake.dataset("records")
    kept = sorted(set(lake.tags(include_pins=True).values()))
    stats = ds.cleanup_old_versions(
        older_than=dt.timedelta(days=older_than_days), error_if_tagged_old_versions=False
    )
    return GcResult(int(stats.old_versions), int(stats.bytes_removed), kept)
