"""The read-only SQL WHERE box: one predicate over `records`, checked, in a locked DuckDB.

The predicate is placed into `SELECT … FROM records WHERE (<predicate>)`. Before it runs:
no `;`, no comments, parentheses (as DuckDB's own tokenizer sees them) balanced that never close the outer `(` early, and DuckDB's
own parser must see exactly one SELECT statement. It then runs in an in-memory DuckDB
connection with `enable_external_access = false` and the configuration locked, so even a
predicate that slipped through could not read files, attach databases or install extensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from curation import Lake
from curation.errors import one_line
from curation.lake import VersionRef
from mixlake.web.errors import WebError

MAX_PREDICATE = 2000


def check_predicate(predicate: str) -> str:
    """Validate a WHERE predicate's shape and return it stripped.

    Raises:
        WebError: 400 naming what is not allowed.
    """
    text = predicate.strip()
    if not text:
        return ""
    if len(text) > MAX_PREDICATE:
        raise WebError(f"where: predicate longer than {MAX_PREDICATE} characters")
    try:
        tokens = duckdb.tokenize(text)
    except (duckdb.Error, RuntimeError) as e:
        raise WebError(f"where: {one_line(e)}") from None
    depth = 0
    bounds = [pos for pos, _ in tokens] + [len(text)]
    for (pos, kind), end in zip(tokens, bounds[1:], strict=False):
        token = text[pos:end].strip()
        if kind == duckdb.token_type.comment:
            raise WebError("where: SQL comments are not allowed")
        if kind != duckdb.token_type.operator:
            continue
        if ";" in token:
            raise WebError("where: ';' is not allowed: give one predicate, not statements")
        for ch in token:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth < 0:
                raise WebError(f"where: unbalanced ')' at character {pos + 1}")
    if ";" in text and not any(k == duckdb.token_type.string_const for _, k in tokens):
        raise WebError("where: ';' is not allowed: give one predicate, not statements")
    if depth:
        raise WebError("where: unbalanced '(' (missing ')')")
    return text


def locked_connection(
    lake: Lake, ref: VersionRef = None, filters: Sequence[Any] = ()
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with `records` at `ref` and `labels` registered.

    `labels` holds each record's current label (id, label 1 good / 0 bad); the connection has
    no file access and its config is locked.

    A map selection among `filters` (a `lasso` `mixlake.web.facets.Filter`) has the ids inside
    its polygon registered as the table its predicate reads.
    """
    from mixlake.web.labels import current_table

    dataset = lake.records(ref)
    con = duckdb.connect(config={"enable_external_access": False})
    con.register("records", dataset)
    con.register("labels", current_table(lake))
    for f in filters:
        if getattr(f, "op", None) == "lasso":
            from mixlake.web.embedmap import selected_ids

            ids = selected_ids(lake, int(dataset.version), f.values)
            con.register(f.table_name(), pa.table({"id": ids}))
    con.execute("SET lock_configuration = true")
    return con


def run_select(
    con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None
) -> pa.Table:
    """Run one SELECT built around a checked predicate; DuckDB errors become a 400.

    Raises:
        WebError: the statement is not a single SELECT, or DuckDB rejected it.
    """
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as e:
        raise WebError(f"where: {one_line(e)}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise WebError("where: only a single read-only predicate is allowed")
    try:
        return con.sql(query, params=params or None).to_arrow_table()
    except duckdb.Error as e:
        raise WebError(f"where: {one_line(e)}") from None


def where_clause(predicate: str) -> str:
    """`WHERE (<predicate>)` for a checked predicate, or an empty string."""
    checked = check_predicate(predicate)
    return f"WHERE ({checked})" if checked else ""
