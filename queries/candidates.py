"""The rows a component could take: its SQL run in DuckDB at the pinned records version."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.sqltext import identifier, literal
from queries.spec import ComponentSpec

# A full query may sit in parentheses; a predicate may start with one: `(a OR b) AND c`.
_FULL_QUERY = re.compile(r"^\s*\(*\s*(select|with|from)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Candidates:
    """A component's candidate rows, in id order (or `order_by` order).

    Attributes:
        spec: the component.
        ids: record ids.
        tokens: `n_tokens` (0 where null or absent).
        null_tokens: where `n_tokens` is null.
        strata: values of `stratify_by` (None without it).
        text_hash: DuckDB's hash of `text`, for the exact-text leakage check (compared within
            one selection only, so it need not be stable across DuckDB versions).
        contaminated: the `contaminated` flag (all False without the column).
        overlap: rows dropped because an earlier component claimed them.
    """

    spec: ComponentSpec
    ids: pa.Array
    tokens: np.ndarray
    null_tokens: np.ndarray
    strata: pa.Array
    text_hash: pa.Array
    contaminated: np.ndarray
    overlap: int = 0

    @property
    def rows(self) -> int:
        """Number of candidate rows."""
        return len(self.ids)

    def subset(self, keep: np.ndarray) -> Candidates:
        """Only the rows where `keep` is true (order kept); the rest count as overlap."""
        mask = pa.array(keep, pa.bool_())
        return replace(
            self,
            ids=self.ids.filter(mask),
            tokens=self.tokens[keep],
            null_tokens=self.null_tokens[keep],
            strata=self.strata.filter(mask),
            text_hash=self.text_hash.filter(mask),
            contaminated=self.contaminated[keep],
            overlap=self.overlap + int((~keep).sum()),
        )


def component_query(comp: ComponentSpec) -> str:
    """The component's SQL as a query returning at least `id` (a bare predicate is wrapped)."""
    sql = comp.sql.strip().rstrip(";")
    if _FULL_QUERY.match(sql):
        return sql
    return f"SELECT id FROM records WHERE ({sql})"


def read_candidates(
    con: duckdb.DuckDBPyConnection, comp: ComponentSpec, exclude: list[str], columns: set[str]
) -> Candidates:
    """Run one component's SQL (with the global excludes) and read its candidates.

    `con` must have `records` registered. A bare predicate is applied directly (DuckDB pushes
    it into the Lance scan); a full SELECT becomes a semi-join on `id`.

    Raises:
        duckdb.Error: the SQL failed (the caller names the component).
        ValueError: a full SELECT that returns no `id` column.
    """
    returned = con.sql(f"SELECT * FROM ({component_query(comp)}) AS __probe LIMIT 0").columns
    if "id" not in returned:
        raise ValueError(f"its SELECT must return the id column (it returns {', '.join(returned)})")
    tokens = "r.n_tokens" if "n_tokens" in columns else "NULL::BIGINT"
    contaminated = "coalesce(r.contaminated, false)" if "contaminated" in columns else "false"
    stratum = f"({comp.stratify_by})::VARCHAR" if comp.stratify_by else "NULL::VARCHAR"
    where = "".join(f" AND NOT coalesce(({p})::BOOLEAN, false)" for p in exclude)
    order = f"{comp.order_by}, r.id" if comp.order_by else "r.id"
    sql = comp.sql.strip().rstrip(";")
    if _FULL_QUERY.match(sql):
        head, match = f"WITH __comp AS ({sql}) ", "r.id IN (SELECT __comp.id FROM __comp)"
    else:
        head, match = "", f"({sql})"
    query = f"""
        {head}SELECT r.id AS id, {tokens} AS tokens, {stratum} AS stratum,
               hash(r.text) AS text_hash, {contaminated} AS contaminated
        FROM records r
        WHERE {match}{where}
        ORDER BY {order}
    """
    t = con.sql(query).to_arrow_table()
    tok = t.column("tokens").combine_chunks()
    null_tok = pc.is_null(tok).to_numpy(zero_copy_only=False)
    return Candidates(
        spec=comp,
        ids=t.column("id").combine_chunks(),
        tokens=pc.fill_null(pc.cast(tok, pa.int64()), 0).to_numpy(zero_copy_only=False),
        null_tokens=null_tok,
        strata=t.column("stratum").combine_chunks(),
        text_hash=t.column("text_hash").combine_chunks(),
        contaminated=t.column("contaminated").to_numpy().astype(bool),
    )


def missing_field_rows(
    con: duckdb.DuckDBPyConnection,
    comp: ComponentSpec,
    field: str,
    columns: set[str],
    *,
    meta: bool = True,
) -> tuple[int, str | None]:
    """(rows of the component lacking a field, an example id); -1 when no row can have it.

    A field is present when its column is not null or (with `meta`) `meta` has the key.
    """
    checks = []
    if field in columns:
        checks.append(f"r.{identifier(field)} IS NULL")
    if meta and "meta" in columns:
        path = literal("$." + '"' + field.replace('"', "") + '"')
        checks.append(f"coalesce(json_extract(r.meta, {path})::VARCHAR, 'null') = 'null'")
    if field in ("user", "assistant") and "messages" in columns:
        checks.append(
            "NOT coalesce(list_contains(list_transform(r.messages, lambda m: m.role), "
            f"{literal(field)}), false)"
        )
    if not checks:
        return -1, None
    row = con.execute(
        f"""WITH __comp AS ({component_query(comp)})
            SELECT count(*), min(r.id) FROM records r
            WHERE r.id IN (SELECT __comp.id FROM __comp) AND {" AND ".join(checks)}"""
    ).fetchone()
    return (int(row[0]), row[1]) if row else (0, None)
