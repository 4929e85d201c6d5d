"""History operations on `records`: diff two versions, roll back, delete a slice, gc."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import lance
import pyarrow as pa

from curation.commit import Entry
from curation.errors import CurationError, one_line
from curation.faults import crash_point
from curation.lake import Lake, VersionRef
from curation.sqltext import equals, in_list, single_expression


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
        found = lake.records(version).to_table(
            columns=["id", "source", "text"], filter=in_list("id", [i for (i,) in got])
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
    with lake.writing("rollback"):
        target = lake.resolve(to)
        latest = lake.latest_version()
        if target == latest:
            raise CurationError(f"records is already at version {target}; nothing to roll back")
        before = lake.records(latest).count_rows()
        after = lake.dataset("records", target).count_rows()
        entry = Entry(
            "rollback",
            f"rollback to version {target} (from {latest}): {before} → {after} rows",
            {"to": str(to), "target": target, "from": latest},
            max(after - before, 0),
            max(before - after, 0),
        )
        crash_point("rollback:before-commit")
        new = lake.commit("records", lance.LanceOperation.Restore(target), latest, entry)
        crash_point("rollback:after-commit")
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
        predicate = equals("batch", batch)
    else:
        predicate = single_expression(str(where))
    with lake.writing("delete"):
        ds = lake.dataset("records")
        try:
            matched = ds.count_rows(filter=predicate)
        except (ValueError, OSError) as e:
            raise CurationError(f"bad --where predicate {predicate!r}: {one_line(e)}") from None
        if matched == 0:
            if batch is not None and batch not in _batches(lake):
                raise CurationError(f"no batch {batch!r} in records; see `mixlake log`")
            return DeleteResult(0, None)
        entry = Entry(
            "delete",
            f"delete where {predicate}: -{matched} rows",
            {"where": where, "batch": batch},
            0,
            matched,
        )
        operation = delete_operation(ds, predicate)
        crash_point("delete:before-commit")
        new = lake.commit("records", operation, int(ds.version), entry)
        crash_point("delete:after-commit")
        return DeleteResult(matched, new)


def delete_operation(ds: lance.LanceDataset, predicate: str) -> lance.LanceOperation.Delete:
    """The uncommitted Lance delete of the rows matching `predicate` (deletion files written)."""
    updated, removed = [], []
    for fragment in ds.get_fragments():
        if fragment.count_rows(predicate) == 0:
            continue
        meta = fragment.delete(predicate)
        if meta is None:
            removed.append(fragment.fragment_id)
        else:
            updated.append(meta)
    return lance.LanceOperation.Delete(updated, removed, predicate)


def _batches(lake: Lake) -> set[str]:
    table = lake.records().to_table(columns=["batch"])
    return set(pa.compute.unique(table.column("batch")).to_pylist())


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
    with lake.writing("gc"):
        ds = lake.dataset("records")
        kept = sorted(set(lake.tags(include_pins=True).values()))
        # Under the writer lock no write is in flight, so files no version references are
        # leftovers of killed writers and can go at once (Lance's default waits a week).
        stats = ds.cleanup_old_versions(
            older_than=dt.timedelta(days=older_than_days),
            error_if_tagged_old_versions=False,
            delete_unverified=True,
        )
        removed, freed = int(stats.old_versions), int(stats.bytes_removed)
        for name in lake.table_names():
            if name == "records":
                continue
            side = lake.dataset(name)
            side_stats = side.cleanup_old_versions(
                older_than=dt.timedelta(days=36500),  # side tables keep history; only leftovers go
                error_if_tagged_old_versions=False,
                delete_unverified=True,
            )
            freed += int(side_stats.bytes_removed)
        _remove_stale_checkpoints(lake)
    return GcResult(removed, freed, kept)


def _remove_stale_checkpoints(lake: Lake) -> None:
    """Step checkpoints are only valid for the version they started from; drop the others."""
    if "://" in lake.uri:
        return
    folder = Path(lake.uri) / "_checkpoints"
    latest = lake.latest_version()
    for path in folder.glob("*") if folder.is_dir() else []:
        if f"-v{latest}-" not in path.name:
            path.unlink(missing_ok=True)
