"""Materialized mixes: write `mix__<name>` and a `mixes` row; open, read and list them.

Mix version k of NAME is row (NAME, k) of `mixes`; its rows are Lance version `table_version`
of `mix__NAME` (each materialization overwrites the table, so older mix versions stay
readable by time travel). The records version it reads is pinned with `Lake.pin`, so `gc`
keeps it and a later rollback of `records` does not change the mix.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import lance
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from curation import CurationError, Lake
from curation.commit import Entry
from curation.faults import crash_point
from curation.lake import PIN_PREFIX, lance_exists
from curation.sqltext import equals
from queries.errors import QueryError
from queries.plan import MixPlan, Selection, describe, select_mix
from queries.render import render, render_columns
from queries.spec import NAME_RE, MixSpec, parse_spec

MIXES = "mixes"
MIXES_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string()),
        pa.field("mix_version", pa.int64()),
        pa.field("spec", pa.string()),
        pa.field("spec_hash", pa.string()),
        pa.field("records_version", pa.int64()),
        pa.field("seed", pa.int64()),
        pa.field("rows", pa.int64()),
        pa.field("tokens", pa.int64()),
        pa.field("components", pa.string()),
        pa.field("splits", pa.string()),
        pa.field("checksum", pa.string()),
        pa.field("table_version", pa.int64()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


def mix_table(name: str) -> str:
    """The lake table holding the rows of mix `name`."""
    return f"mix__{name}"


class MaterializedMix:
    """One version of a materialized mix.

    Args:
        lake: the lake the mix lives in.
        row: its row of the `mixes` table.
        is_new: whether the caller just wrote it.

    Attributes:
        name: mix name.
        version: mix version (1, 2, … per name).
        checksum: sha256 of the ordered (id, split, component) list.
        records_version: the pinned `records` version its rows point into.
        spec: the spec it was made from.
        spec_hash: sha256 of the spec text.
        table_version: Lance version of `mix__<name>` holding its rows.
        row_count: rows (all splits).
        tokens: `n_tokens` total (None when the column was absent).
        components: per-component plan numbers (available, target, rows, unique, tokens, note).
        splits: split → {rows, tokens}.
        created_at: when it was materialized.
        is_new: whether the call that returned it wrote it (False when it already existed).
    """

    def __init__(self, lake: Lake, row: dict[str, Any], *, is_new: bool = False) -> None:
        self.lake = lake
        self.name: str = row["name"]
        self.version: int = int(row["mix_version"])
        self.checksum: str = row["checksum"]
        self.records_version: int = int(row["records_version"])
        self.spec_hash: str = row["spec_hash"]
        self.spec: MixSpec = parse_spec(row["spec"], f"mix {self.name}@{self.version}")
        self.table_version: int = int(row["table_version"])
        self.row_count: int = int(row["rows"])
        self.tokens: int | None = row["tokens"]
        self.components: dict[str, dict[str, Any]] = orjson.loads(row["components"])
        self.splits: dict[str, dict[str, int]] = orjson.loads(row["splits"])
        self.created_at: dt.datetime = row["created_at"]
        self.is_new = is_new

    def __repr__(self) -> str:
        """`MaterializedMix(name@version, rows=…, records_version=…, checksum=…)`."""
        return (
            f"MaterializedMix({self.name}@{self.version}, rows={self.row_count}, "
            f"records_version={self.records_version}, checksum={self.checksum[:12]})"
        )

    @property
    def ref(self) -> str:
        """`name@version`."""
        return f"{self.name}@{self.version}"

    def rows(self, split: str | None = None) -> pa.Table:
        """The mix rows (position, id, row_addr, component, split, repeat) in position order."""
        ds = self.lake.dataset(mix_table(self.name), self.table_version)
        if split is not None and split not in self.splits:
            known = ", ".join(self.splits) or "none"
            raise QueryError(f"mix {self.ref} has no split {split!r} (splits: {known})")
        table = ds.to_table(filter=equals("split", split) if split else None)
        return table.sort_by("position")

    def examples(
        self, split: str | None = None, start: int = 0, batch_size: int = 256
    ) -> Iterator[dict[str, Any]]:
        """Rendered examples in mix order, read by row address at the pinned version.

        Args:
            split: only this split.
            start: skip this many examples of the sequence first (to resume).
            batch_size: rows fetched per random-access read.

        Yields:
            Dicts with `id`, `split`, `component` and `messages`, `prompt`+`completion` or
            `text` (see `queries.render`).
        """
        rows = self.rows(split).slice(start)
        records = self.lake.records(self.records_version)
        columns = render_columns(self.spec.format, records.schema.names)
        fmt = self.spec.format
        for offset in range(0, rows.num_rows, batch_size):
            chunk = rows.slice(offset, batch_size)
            got = records._take_rows(chunk.column("row_addr").combine_chunks(), columns=columns)
            if not pc.all(pc.equal(got.column("id"), chunk.column("id"))).as_py():
                raise QueryError(
                    f"mix {self.ref}: row addresses no longer match records version "
                    f"{self.records_version}; re-materialize the mix"
                )
            ids, splits, comps = (chunk.column(c).to_pylist() for c in ("id", "split", "component"))
            for i, record in enumerate(got.to_pylist()):
                yield {"id": ids[i], "split": splits[i], "component": comps[i]} | render(
                    record, fmt
                )

    def count(self, split: str | None = None) -> int:
        """Rows in the mix, or in one split."""
        if split is None:
            return self.row_count
        return int(self.splits.get(split, {}).get("rows", 0))


@dataclass(frozen=True)
class MixInfo:
    """One row of `mixes`, for listings."""

    name: str
    mix_version: int
    records_version: int
    rows: int
    tokens: int | None
    checksum: str
    spec_hash: str
    created_at: dt.datetime


def materialize_mix(
    lake: Lake, spec: MixSpec, *, on_plan: Callable[[MixPlan], None] | None = None
) -> MaterializedMix:
    """Select the rows of `spec` and write them as a new version of mix `spec.name`.

    Nothing is written when the spec has a problem. Materializing the same spec against the
    same records version again writes nothing and returns the existing version.

    Args:
        lake: the lake.
        spec: the mix spec.
        on_plan: called with the plan (problems included) before anything is written.

    Raises:
        QueryError: every problem `check_mix` finds, one per line.
    """
    plan, selection = select_mix(lake, spec)
    if on_plan is not None:
        on_plan(plan)
    plan.raise_if_problems()
    assert selection is not None and plan.records_version is not None
    checksum = selection.checksum()
    # Version numbers are handed out under the writer lock: two materializations of one name
    # at once get consecutive versions, never the same one.
    with lake.writing(f"materialize {spec.name}"):
        history = _rows_of(lake, spec.name)
        if history:
            last = history[-1]
            if (last["checksum"], last["spec_hash"], last["records_version"]) == (
                checksum,
                spec.spec_hash,
                plan.records_version,
            ):
                _ensure_pin(lake, last)
                return MaterializedMix(lake, last)
        version = (history[-1]["mix_version"] + 1) if history else 1
        return _write_mix(lake, spec, plan, selection, version, checksum)


def _write_mix(
    lake: Lake, spec: MixSpec, plan: MixPlan, selection: Selection, version: int, checksum: str
) -> MaterializedMix:
    """Write a mix: the pin, its rows, then the `mixes` row that makes them visible.

    A crash leaves no mix without its pin (the pin comes first; an orphan pin is reused by
    the rerun).
    """
    assert plan.records_version is not None
    lake.pin(f"mix-{spec.name}-{version}", plan.records_version)
    crash_point("materialize:pinned")
    uri = lake.table_uri(mix_table(spec.name))
    previous = int(lance.dataset(uri).version) if lance_exists(uri) else None
    entry = Entry(
        "materialize",
        f"mix {spec.name}@{version}: {plan.rows} rows from records v{plan.records_version}",
        {"spec_hash": spec.spec_hash, "checksum": checksum, "mix_version": version},
        plan.rows,
    )
    try:
        ds = lance.write_dataset(
            selection.table(),
            uri,
            mode="create" if previous is None else "overwrite",
            transaction_properties=entry.properties(),
        )
        crash_point("materialize:rows-written")
        row = _mixes_row(spec, plan, version, checksum, int(ds.version))
        mixes_uri = lake.table_uri(MIXES)
        table = pa.Table.from_pylist([row], schema=MIXES_SCHEMA)
        mode = "append" if lance_exists(mixes_uri) else "create"
        lance.write_dataset(table, mixes_uri, mode=mode, transaction_properties=entry.properties())
        crash_point("materialize:after-commit")
    except BaseException as e:  # Ctrl-C included: never leave rows without their `mixes` row
        _undo_rows(uri, previous)
        lake.unpin(f"mix-{spec.name}-{version}")
        if isinstance(e, OSError | ValueError):
            raise QueryError(f"mix {spec.name}: writing failed, nothing kept: {e}") from None
        raise
    return MaterializedMix(lake, row, is_new=True)


def _ensure_pin(lake: Lake, row: dict[str, Any]) -> None:
    """Re-create a mix's pin if it is missing (a lake written before pins came first)."""
    name = f"mix-{row['name']}-{row['mix_version']}"
    if PIN_PREFIX + name in lake.tags(include_pins=True):
        return
    with lake.writing("repair pin"):
        try:
            lake.pin(name, int(row["records_version"]))
        except (OSError, ValueError, CurationError):
            return  # the version is gone; opening the mix says so


def _undo_rows(uri: str, previous: int | None) -> None:
    """Put `mix__<name>` back as it was after a failed materialization."""
    if not lance_exists(uri):
        return
    if previous is None:
        if "://" not in uri:
            shutil.rmtree(uri, ignore_errors=True)
        return
    ds = lance.dataset(uri)
    if int(ds.version) != previous:
        lance.dataset(uri, version=previous).restore()


def _mixes_row(
    spec: MixSpec, plan: MixPlan, version: int, checksum: str, table_version: int
) -> dict[str, Any]:
    splits = {
        s: {"rows": n, **({"tokens": plan.split_tokens[s]} if plan.split_tokens else {})}
        for s, n in plan.splits.items()
    }
    return {
        "name": spec.name,
        "mix_version": version,
        "spec": spec.text or spec.to_yaml(),
        "spec_hash": spec.spec_hash,
        "records_version": plan.records_version,
        "seed": spec.seed,
        "rows": plan.rows,
        "tokens": plan.tokens,
        "components": orjson.dumps(describe(plan)).decode(),
        "splits": orjson.dumps(splits).decode(),
        "checksum": checksum,
        "table_version": table_version,
        "created_at": dt.datetime.now(dt.UTC),
    }


def _rows_of(lake: Lake, name: str) -> list[dict[str, Any]]:
    if not NAME_RE.match(name):
        raise QueryError(f"bad mix name {name!r}")
    if not lake.has_table(MIXES):
        return []
    rows = lake.dataset(MIXES).to_table(filter=equals("name", name)).to_pylist()
    return sorted(rows, key=lambda r: r["mix_version"])


def open_mix(lake: Lake, name: str, version: int | None = None) -> MaterializedMix:
    """Open mix `name` at `version` (default: its latest).

    Raises:
        QueryError: no such mix or version.
    """
    if "@" in name and version is None:
        name, _, v = name.partition("@")
        if not v.isdigit():
            raise QueryError(f"bad mix reference {name}@{v}: use NAME or NAME@VERSION")
        version = int(v)
    rows = _rows_of(lake, name)
    if not rows:
        known = ", ".join(sorted({m.name for m in list_mixes(lake)})) or "none yet"
        raise QueryError(f"no mix {name!r} (mixes: {known}); see `mixlake mix ls`")
    if version is None:
        _ensure_pin(lake, rows[-1])
        return MaterializedMix(lake, rows[-1])
    for row in rows:
        if row["mix_version"] == version:
            _ensure_pin(lake, row)
            return MaterializedMix(lake, row)
    have = ", ".join(str(r["mix_version"]) for r in rows)
    raise QueryError(f"mix {name!r} has no version {version} (versions: {have})")


def list_mixes(lake: Lake) -> list[MixInfo]:
    """Every version of every mix, by name then version."""
    if not lake.has_table(MIXES):
        return []
    rows = lake.dataset(MIXES).to_table().to_pylist()
    return [
        MixInfo(
            r["name"],
            r["mix_version"],
            r["records_version"],
            r["rows"],
            r["tokens"],
            r["checksum"],
            r["spec_hash"],
            r["created_at"],
        )
        for r in sorted(rows, key=lambda r: (r["name"], r["mix_version"]))
    ]
