"""DuckDB SQL over the lake: `records` at any version, plus every other table at its latest."""

from __future__ import annotations

import threading
from typing import Any

import duckdb
import lance
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from curation.errors import CurationError, one_line
from curation.lake import Lake, VersionRef, register_shortcut


def connect(
    lake: Lake, ref: VersionRef = None, *, journal: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with `records` (at `ref`) and the lake's other tables registered.

    Lance datasets are registered as Arrow datasets, so DuckDB pushes projections and filters
    down into Lance instead of reading whole tables; filters on vector columns, which Lance
    cannot take, are applied by Arrow on the scanned batches instead (see `FilterSafeDataset`).
    """
    con = duckdb.connect()
    con.register("records", FilterSafeDataset.view_of(lake.records(ref)))
    for name in lake.table_names():
        if name not in ("records", "journal"):
            con.register(name, FilterSafeDataset.view_of(lake.dataset(name)))
    if journal:
        # What made each version: read from the entries the commits carry (older lakes'
        # `journal` table rows included). It reads every version's transaction, so `sql`
        # only builds it for queries that name it.
        con.register("journal", lake.journal_table())
    return con


def sql(lake: Lake, query: str, ref: VersionRef = None) -> pa.Table:
    """Run one DuckDB query and return the result as an Arrow table.

    Raises:
        CurationError: the query failed; the message is DuckDB's first line.
    """
    con = connect(lake, ref, journal="journal" in query.lower())
    try:
        return _interruptible(con, query)
    except duckdb.Error as e:
        raise CurationError(f"SQL error: {one_line(e)}") from None


def _interruptible(con: duckdb.DuckDBPyConnection, query: str) -> pa.Table:
    """Run the query in a worker thread so Ctrl-C can stop it.

    While DuckDB executes, the calling thread is inside C++ and never sees SIGINT; here it
    waits in short joins (which a signal interrupts), and on KeyboardInterrupt asks DuckDB to
    stop (`interrupt`) and waits for it before re-raising.
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            result = con.sql(query)
            outcome.append(pa.table({}) if result is None else result.to_arrow_table())
        except BaseException as e:  # handed to the caller's thread below
            outcome.append(e)

    worker = threading.Thread(target=run, name="mixlake-sql", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.05)
    except KeyboardInterrupt:
        # One `interrupt` can be missed (seen: a query running on for seconds); ask until
        # the worker is gone, so no DuckDB thread is left running when Python shuts down.
        for _ in range(200):
            con.interrupt()
            worker.join(0.05)
            if not worker.is_alive():
                break
        raise
    (value,) = outcome
    if isinstance(value, BaseException):
        raise value
    return value


class FilterSafeDataset(lance.LanceDataset):
    """A Lance dataset that takes DuckDB's pushed-down filters only where Lance can apply them.

    DuckDB pushes `IS NULL` / `IS NOT NULL` on any column into an Arrow scan, as one pyarrow
    expression. Lance converts that expression to Substrait, which has no fixed-size list
    type, so `WHERE embedding IS NOT NULL` fails inside Lance. A scan whose filter reads such a
    column reads the projected columns (plus those the filter needs) from Lance unfiltered and
    lets Arrow apply the filter (including its scalar parts, e.g. `source = 'web'` in the same
    WHERE, since DuckDB hands over one expression); every other scan is pushed down to Lance
    unchanged. Predicates DuckDB keeps for itself (`len(embedding) > 0`, `embedding[1] < 0`)
    never reach the scanner.
    """

    @classmethod
    def view_of(cls, dataset: lance.LanceDataset) -> FilterSafeDataset:
        """The same opened dataset (same version, no re-read), with filter-safe scans."""
        view = cls.__new__(cls)
        view.__dict__.update(dataset.__dict__)
        return view

    # DuckDB calls this with `columns` and `filter` only; the narrower signature is deliberate.
    def scanner(  # type: ignore[override]
        self, columns: list[str] | None = None, filter: Any = None, **kwargs: Any
    ) -> Any:
        """Scan as `LanceDataset.scanner`; a filter on vector columns is applied by Arrow."""
        if not isinstance(filter, pc.Expression):
            return super().scanner(columns=columns, filter=filter, **kwargs)
        schema = self.schema
        vectors = [f.name for f in schema if _lance_cannot_filter(f.type)]
        if not _fields_read(filter, schema, vectors):
            return super().scanner(columns=columns, filter=filter, **kwargs)
        # DuckDB leaves columns read only by the filter out of `columns`; Arrow needs them.
        needed = _fields_read(filter, schema, schema.names)
        read = None if columns is None else [*columns, *(n for n in needed if n not in columns)]
        batches = super().scanner(columns=read, **kwargs).to_reader()
        return pads.Scanner.from_batches(batches, columns=columns, filter=filter)


def _lance_cannot_filter(t: pa.DataType) -> bool:
    """Whether Lance can't take a pyarrow filter on a column of this type.

    These are the types its Substrait conversion replaces by placeholders (checked against
    pylance 14).
    """
    if pa.types.is_fixed_size_list(t) or isinstance(t, pa.BaseExtensionType):
        return True
    if pa.types.is_struct(t):
        return any(
            t.field(i).metadata is not None or _lance_cannot_filter(t.field(i).type)
            for i in range(t.num_fields)
        )
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _lance_cannot_filter(t.value_type)
    return False


def _fields_read(expr: pc.Expression, schema: pa.Schema, names: list[str]) -> list[str]:
    """Which of `names` the expression reads.

    Arrow cannot list an expression's fields, so bind it to an empty table lacking each name
    in turn: binding fails iff the field is read.
    """
    read = []
    for name in names:
        try:
            schema.remove(schema.get_field_index(name)).empty_table().filter(expr)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            read.append(name)
    return read


register_shortcut("sql", sql)
