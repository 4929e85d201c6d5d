"""Spec problems found before any rows are read.

Unknown columns and bad expressions, token columns that are missing, rows that cannot take
the format.
"""

from __future__ import annotations

import re

import duckdb

from queries.candidates import missing_field_rows
from queries.spec import MixSpec

TOKENS = "n_tokens"
CONTAMINATED = "contaminated"
_STEP_HINTS = {
    "n_tokens": "run `mixlake tokens` first",
    "quality_heuristic_v1": "run the quality step first",
    "is_dup": "run the dedup step first",
    "contaminated": "run the decontamination step first",
    "cluster": "run the cluster step first",
}


def static_problems(con: duckdb.DuckDBPyConnection, spec: MixSpec, columns: set[str]) -> list[str]:
    """Problems visible without reading rows: token limits without `n_tokens`, bad expressions.

    Args:
        con: a DuckDB connection with `records` registered (its rows are not read).
        spec: the mix spec.
        columns: the columns of `records`.

    Returns:
        One message per problem, each naming the spec and the part of it at fault.
    """
    w = spec.where
    out = []
    needs_tokens = spec.total_tokens is not None or any(c.max_tokens for c in spec.components)
    if needs_tokens and TOKENS not in columns:
        out.append(
            f"{w}: total_tokens/max_tokens need the {TOKENS} column: run `mixlake tokens` first"
        )
    for i, pred in enumerate(spec.exclude):
        reason = _expression_error(con, f"({pred})::BOOLEAN")
        if reason:
            out.append(f"{w}: exclude[{i}] {pred!r}: {reason}")
    for c in spec.components:
        for key in ("order_by", "stratify_by"):
            expr = getattr(c, key)
            if expr:
                probe = _strip_direction(expr) if key == "order_by" else expr
                reason = _expression_error(con, probe)
                if reason:
                    out.append(f"{w}: component {c.name!r}: {key} {expr!r}: {reason}")
    return out


def field_problems(con: duckdb.DuckDBPyConnection, spec: MixSpec, columns: set[str]) -> list[str]:
    """Template fields that are not columns, or that some of a component's rows lack.

    Args:
        con: a DuckDB connection with `records` registered.
        spec: the mix spec whose format names the fields.
        columns: the columns of `records`.

    Returns:
        One message per problem, with the count of rows lacking the field and an example id.
    """
    out = []
    for comp in spec.components:
        for name in spec.format.fields():
            missing, example = missing_field_rows(con, comp, name, columns)
            if missing < 0:
                out.append(f"{spec.where}: format: field {{{name}}} is not a column of records")
            elif missing:
                out.append(
                    f"{spec.where}: component {comp.name!r}: {missing} rows have no field "
                    f"{{{name}}} for the prompt template (not a column, not a key of meta; "
                    f"e.g. id {example}); filter them out in its sql"
                )
    return out


def message_problems(con: duckdb.DuckDBPyConnection, spec: MixSpec, columns: set[str]) -> list[str]:
    """Components with rows that have no `messages`, for a template that needs chat records.

    Args:
        con: a DuckDB connection with `records` registered.
        spec: the mix spec.
        columns: the columns of `records`.

    Returns:
        One message per such component, with the row count, an example id and the fix.
    """
    out = []
    for comp in spec.components:
        missing, example = missing_field_rows(con, comp, "messages", columns, meta=False)
        if missing:
            out.append(
                f"{spec.where}: component {comp.name!r}: {missing} rows have no messages "
                f"(text records, e.g. id {example}); template {spec.format.template} needs "
                "chat records: add kind = 'chat' to its sql, or use template text or prompt"
            )
    return out


def _expression_error(con: duckdb.DuckDBPyConnection, expr: str) -> str | None:
    try:
        con.execute(f"SELECT {expr} FROM records LIMIT 0")
    except duckdb.Error as e:
        return first_line(e)
    return None


def _strip_direction(expr: str) -> str:
    parts = [
        re.sub(r"\s+(ASC|DESC)(\s+NULLS\s+(FIRST|LAST))?\s*$", "", p, flags=re.I)
        for p in expr.split(",")
    ]
    return ", ".join(parts)


def first_line(e: BaseException) -> str:
    """A DuckDB error as one line; an unknown column names the step that would add it."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    text = lines[0][:300] if lines else type(e).__name__
    unknown = re.search(r'Referenced column "([^"]+)" not found', text)
    if unknown:
        col = unknown.group(1)
        hint = _STEP_HINTS.get(col, "check the name with `mixlake show` or `mixlake sql`")
        return f"unknown column {col!r} in records ({hint})"
    return text
