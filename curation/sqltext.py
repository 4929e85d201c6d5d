"""The one place values become SQL text: literals, identifiers, `IN` lists, single statements.

Lance filters and DuckDB queries are SQL strings. A value pasted into one by hand can change
what the statement means (`x' OR batch LIKE '%`); every value that reaches SQL text goes
through `literal` (or `in_list`), every name through `identifier`.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from curation.errors import CurationError, one_line


def literal(value: str | int | float | bool | None) -> str:
    """`value` as a SQL literal: strings single-quoted with quotes doubled, numbers as written.

    Example:
        >>> literal("it's")
        "'it''s'"
        >>> literal(3)
        '3'
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CurationError(f"cannot write {value!r} as a SQL literal")
        return repr(float(value))
    text = str(value)
    if "\x00" in text:
        raise CurationError("a SQL string value cannot contain a NUL character")
    return "'" + text.replace("'", "''") + "'"


def in_list(column: str, values: Iterable[str | int]) -> str:
    """`column IN (…)` over quoted values; `FALSE` for no values (matches nothing)."""
    items = [literal(v) for v in values]
    if not items:
        return "FALSE"
    return f"{identifier(column)} IN ({', '.join(items)})"


def equals(column: str, value: str | int | float | bool) -> str:
    """`column = value` with the value quoted."""
    return f"{identifier(column)} = {literal(value)}"


def identifier(name: str) -> str:
    """A column or table name: plain names as they are, anything else double-quoted."""
    if (
        name
        and (name[0].isalpha() or name[0] == "_")
        and all(c.isalnum() or c == "_" for c in name)
    ):
        return name
    if "\x00" in name or not name:
        raise CurationError(f"bad column name {name!r}")
    return '"' + name.replace('"', '""') + '"'


def single_expression(predicate: str, *, what: str = "--where") -> str:
    """Check that `predicate` is one SQL boolean expression, not several statements.

    DuckDB's parser decides: `1=1; DROP TABLE x` is two statements and is refused, while a `;`
    inside a quoted string is fine. Returns the predicate unchanged.

    Raises:
        CurationError: the text is empty, does not parse, or holds more than one statement.
    """
    text = predicate.strip()
    if not text:
        raise CurationError(f"{what} is empty; give a SQL predicate such as \"source = 'web'\"")
    try:
        statements = duckdb.extract_statements(f"SELECT 1 WHERE {text}")
    except duckdb.Error as e:
        raise CurationError(f"bad {what} predicate {predicate!r}: {one_line(e)}") from None
    if len(statements) != 1:
        raise CurationError(
            f"bad {what} predicate {predicate!r}: it holds {len(statements)} SQL statements; "
            "give one boolean expression (no ';')"
        )
    return text
