"""Export the rows a filter (or a selection of ids) picks, as JSONL, Parquet or CSV.

The rows are read at the version shown, with every column but vectors (CSV: scalar columns
only, since nested chat turns have no CSV form). A download is capped at `MAX_ROWS`; for more,
use a mix and `mixlake mix export`.
"""

from __future__ import annotations

import io

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from curation import Lake
from curation.sqltext import identifier, in_list
from mixlake.web.errors import WebError
from mixlake.web.facets import Filter, combined_where
from mixlake.web.records import _ID, _jsonable
from mixlake.web.sqlbox import check_predicate, locked_connection, run_select

FORMATS = {
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
}
MAX_ROWS = 200_000


def _scalar(t: pa.DataType) -> bool:
    return not (pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_struct(t))


def export_rows(
    lake: Lake, version: int, fmt: str, where: str, filters: list[Filter], ids: list[str]
) -> tuple[bytes, str]:
    """The file's bytes and its media type.

    Raises:
        WebError: an unknown format, a malformed id, or more than `MAX_ROWS` rows (400).
    """
    if fmt not in FORMATS:
        raise WebError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    bad = [i for i in ids if not _ID.match(i)]
    if bad:
        raise WebError(f"ids: {bad[0]!r} is not a record id")
    schema = lake.records(version).schema
    keep = [
        f.name
        for f in schema
        if not pa.types.is_fixed_size_list(f.type) and (fmt != "csv" or _scalar(f.type))
    ]
    clause = combined_where(check_predicate(where), filters)
    if ids:
        clause = f"{clause} AND {in_list('id', ids)}" if clause else f"WHERE {in_list('id', ids)}"
    con = locked_connection(lake, version, filters)
    cols = ", ".join(identifier(c) for c in keep)
    table = run_select(con, f"SELECT {cols} FROM records {clause} ORDER BY id LIMIT {MAX_ROWS + 1}")
    if table.num_rows > MAX_ROWS:
        raise WebError(f"export: more than {MAX_ROWS} rows; narrow the filter or export a mix")
    buf = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, buf)
    elif fmt == "csv":
        pacsv.write_csv(table, buf)
    else:
        for row in table.to_pylist():
            buf.write(orjson.dumps({k: _jsonable(v) for k, v in row.items()}) + b"\n")
    return buf.getvalue(), FORMATS[fmt]
