"""Slices: a named, saved filter of the grid, and the mix component it becomes.

A slice is stored in the lake's `slices` side table (append-only, one journaled append per
save, like `labels`): its name, the WHERE box text, the point-and-click filters as JSON, the
one SQL predicate they render together (map selections become an explicit id list), the
records version it was saved at, how many rows it selected there, who saved it and when.
Saving a name again replaces it (the latest row per name wins).

A slice turns into a mix spec with one component whose `sql` is the slice's predicate and
whose `records` is pinned to the slice's version; `check` runs `queries.check_mix` on any
spec text (read-only), and `materialize` writes the mix (confirmed, `--allow-writes`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import lance
import orjson
import pyarrow as pa
import yaml

from curation import Lake
from curation.commit import Entry
from curation.sqltext import in_list
from mixlake.web.errors import WebError
from mixlake.web.facets import Filter, filter_json, parse_filters
from mixlake.web.sqlbox import check_predicate, locked_connection, run_select

TABLE = "slices"
MAX_IDS = 10_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("where", pa.string()),
        pa.field("filters", pa.string()),
        pa.field("sql", pa.string(), nullable=False),
        pa.field("records_version", pa.int64(), nullable=False),
        pa.field("rows", pa.int64()),
        pa.field("author", pa.string()),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def check_name(name: str) -> str:
    """A slice (or mix) name: letters, digits, `.`, `_`, `-`, at most 64.

    Raises:
        WebError: any other name (400).
    """
    if not _NAME.match(name or ""):
        raise WebError(f"name: {name!r} is not a slice name (letters, digits, . _ -; ≤ 64)")
    return name


def render_sql(lake: Lake, version: int, where: str, filters: list[Filter]) -> str:
    """The WHERE box and filters as one self-contained predicate over `records`.

    It is meant for a mix component: a map selection becomes `id IN (…)`; "TRUE" when
    nothing filters.

    Raises:
        WebError: a rejected predicate, or a map selection of more than `MAX_IDS` rows.
    """
    parts = []
    for f in filters:
        if f.op == "lasso":
            from mixlake.web.embedmap import selected_ids

            ids = selected_ids(lake, version, f.values).to_pylist()
            if len(ids) > MAX_IDS:
                raise WebError(
                    f"slice: the map selection has {len(ids)} rows; a slice lists at most "
                    f"{MAX_IDS} ids — narrow it, or filter by cluster or a score instead"
                )
            parts.append(in_list("id", ids) if ids else "FALSE")
        else:
            parts.append(f.predicate())  # plain ANDs, INs and comparisons, or (… OR …)
    if where.strip():
        parts.append(f"({check_predicate(where)})")
    sql = " AND ".join(parts) or "TRUE"
    # queries reads a component starting with "(" as a full SELECT, so never start with one
    return f"TRUE AND {sql}" if sql.startswith("(") else sql


def save(
    lake: Lake, name: str, version: int, where: str, filters_text: str, author: str
) -> dict[str, Any]:
    """Save the filter as slice `name` (one journaled append to `slices`).

    Args:
        lake: The lake.
        name: The slice's name; saving a name again replaces it.
        version: The records version the filter was made on (recorded with the slice).
        where: The WHERE box's predicate ("" for none).
        filters_text: The point-and-click filters as the page sends them (a JSON list).
        author: Who saved it (recorded in the row).

    Raises:
        WebError: a bad name, filters or predicate (400).
    """
    check_name(name)
    filters = parse_filters(filters_text, lake.records(version).schema)
    sql = render_sql(lake, version, where, filters)
    con = locked_connection(lake, version)
    rows = int(run_select(con, f"SELECT count(*) AS n FROM records WHERE {sql}")["n"][0].as_py())
    row = {
        "name": name,
        "where": where.strip(),
        "filters": orjson.dumps([filter_json(f) for f in filters]).decode(),
        "sql": sql,
        "records_version": version,
        "rows": rows,
        "author": author,
        "at": dt.datetime.now(dt.UTC),
    }
    entry = Entry(
        "slice", f"saved slice {name} ({rows} rows at v{version}) by {author}", {"name": name}, 1
    )
    with lake.writing("save slice"):
        lance.write_dataset(
            pa.Table.from_pylist([row], schema=SCHEMA),
            lake.table_uri(TABLE),
            mode="append" if lake.has_table(TABLE) else "create",
            transaction_properties=entry.properties(),
        )
    return _json(row)


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "filters": orjson.loads(row["filters"] or "[]"), "at": str(row["at"])[:19]}


def all_slices(lake: Lake) -> list[dict[str, Any]]:
    """The latest version of every slice, newest first."""
    if not lake.has_table(TABLE):
        return []
    latest: dict[str, dict[str, Any]] = {}
    for r in sorted(lake.dataset(TABLE).to_table().to_pylist(), key=lambda r: r["at"]):
        latest[r["name"]] = r
    return [_json(r) for r in sorted(latest.values(), key=lambda r: r["at"], reverse=True)]


def get(lake: Lake, name: str) -> dict[str, Any]:
    """One slice.

    Raises:
        WebError: no slice of that name (404).
    """
    check_name(name)
    for s in all_slices(lake):
        if s["name"] == name:
            return s
    raise WebError(f"no slice {name!r}; save one from the records grid", 404)


def spec_yaml(lake: Lake, s: dict[str, Any], mix: str | None = None) -> str:
    """A mix spec with the slice as its one component, pinned to the slice's version."""
    con = locked_connection(lake, int(s["records_version"]))
    kinds = run_select(con, f"SELECT DISTINCT kind FROM records WHERE {s['sql']}")
    chat = set(kinds.column("kind").to_pylist()) <= {"chat", "instruction"}
    spec = {
        "name": mix or s["name"],
        "description": f"from slice {s['name']} saved by {s['author']} at {s['at']}",
        "records": int(s["records_version"]),
        "seed": 0,
        "total_rows": max(1, int(s["rows"] or 0)),
        "components": [{"name": s["name"], "sql": s["sql"], "weight": 1.0}],
        "splits": {"train": 0.9, "val": 0.1},
        "format": {"template": "chat" if chat else "text"},
    }
    return yaml.safe_dump(spec, sort_keys=False, width=100, allow_unicode=True)


def check(lake: Lake, text: str) -> dict[str, Any]:
    """`mix check` on spec text: rows, tokens and per-component counts, problems, warnings.

    Raises:
        QueryError: the YAML is not a valid spec (400).
    """
    from queries import check_mix, parse_spec

    spec = parse_spec(text, "<ui spec>")
    plan = check_mix(lake, spec)
    return {
        "name": spec.name,
        "ok": plan.ok,
        "records_version": plan.records_version,
        "rows": sum(plan.splits.values()),
        "tokens": sum(plan.split_tokens.values()) if plan.split_tokens else None,
        "splits": plan.splits,
        "components": [
            {
                "name": c.name,
                "available": c.available,
                "available_tokens": c.available_tokens,
                "overlap": c.overlap,
                "target": c.target,
                "taken": c.taken,
                "unique": c.unique,
                "taken_tokens": c.taken_tokens,
                "note": c.note,
            }
            for c in plan.components
        ],
        "problems": list(plan.problems),
        "warnings": list(plan.warnings),
    }


def materialize(lake: Lake, text: str) -> dict[str, Any]:
    """Write the mix the spec text describes (a new mix version).

    Raises:
        QueryError: a bad spec or any problem `check_mix` finds.
    """
    from queries import materialize_mix, parse_spec

    mix = materialize_mix(lake, parse_spec(text, "<ui spec>"))
    return {"mix": mix.name, "version": mix.version, "rows": mix.row_count, "ref": mix.ref}


def perform(lake: Lake, action: str, arg: str, params: dict[str, Any]) -> dict[str, Any]:
    """The confirmed `slice` (save) or `materialize` action of `mixlake.web.api.perform`.

    Raises:
        WebError: bad arguments, or a spec naming another mix than the one confirmed.
        QueryError: a spec with problems (materialize).
    """
    from mixlake.web.labels import labeller_of
    from mixlake.web.records import resolve

    if action == "slice":
        version = resolve(lake, str(params.get("version") or "").strip() or None)
        author = labeller_of(str(params.get("author") or "ui"))
        where, chosen = str(params.get("where") or ""), params.get("filters") or ""
        text = chosen if isinstance(chosen, str) else orjson.dumps(chosen).decode()
        return save(lake, arg, version, where, text, author)
    spec = str(params.get("spec") or "")
    name = arg.partition("#")[0]
    got = check(lake, spec)
    if got["name"] != name:
        raise WebError(f"materialize: the spec names mix {got['name']!r}, not {name!r}")
    return materialize(lake, spec)
