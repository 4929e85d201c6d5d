"""DuckDB SQL over the lake: `records` at any version, plus every other table at its latest."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from curation.errors import CurationError
from curation.lake import Lake, VersionRef


def connect(lake: Lake, ref: VersionRef = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with `records` (at `ref`) and the lake's other tables registered.

    Lance datasets are registered as Arrow datasets, so DuckDB pushes projections and filters
    down into Lance instead of reading whole tables.
    """
    con = duckdb.connect()
    con.register("records", lake.records(ref))
    for name in lake.table_names():
        if name != "records":
            con.register(name, lake.dataset(name))
    return con


def sql(lake: Lake, query: str, ref: VersionRef = None) -> pa.Table:
    """Run one DuckDB query and return the result as an Arrow table.

    Raises:
        CurationError: the query failed; the message is DuckDB's first line.
    """
    con = connect(lake, ref)
    try:
        result = con.sql(query)
        if result is None:
            return pa.table({})
        return result.to_arrow_table()
    except duckdb.Error as e:
        raise CurationError(f"SQL error: {str(e).splitlines()[0]}") from None
