"""Export the rows a filter (or a selection of ids) picks, in a download format of the registry.

The formats are `queries.export_formats`'s with a media type (`format_names("download")`:
JSONL, Parquet, CSV, …), encoded by the format itself. The rows are read at the version
shown, with every column but vectors (CSV: scalar columns only, since nested chat turns have
no CSV form). A download is capped at `MAX_ROWS`; for more, use a mix and `mixlake mix export`.
"""

from __future__ import annotations

import pyarrow as pa

from curation import Lake
from curation.sqltext import identifier, in_list
from mixlake.web.errors import WebError
from mixlake.web.facets import Filter, combined_where
from mixlake.web.records import _ID
from mixlake.web.sqlbox import check_predicate, locked_connection, run_select
from queries import QueryError, format_names, get_format

MAX_ROWS = 200_000


def _scalar(t: pa.DataType) -> bool:
    return not (pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_struct(t))


def formats() -> dict[str, str]:
    """The download formats offered, name → media type (the registry's, in its order)."""
    return {name: str(get_format(name, "download").media_type) for name in format_names("download")}


def export_rows(
    lake: Lake, version: int, fmt: str, where: str, filters: list[Filter], ids: list[str]
) -> tuple[bytes, str]:
    """The file's bytes and its media type.

    Raises:
        WebError: an unknown format, a malformed id, or more than `MAX_ROWS` rows (400).
    """
    try:
        the_format = get_format(fmt, "download")
    except QueryError as e:
        raise WebError(f"format: {e}") from None
    bad = [i for i in ids if not _ID.match(i)]
    if bad:
        raise WebError(f"ids: {bad[0]!r} is not a record id")
    schema = lake.records(version).schema
    keep = [
        f.name
        for f in schema
        if not pa.types.is_fixed_size_list(f.type) and (the_format.nested or _scalar(f.type))
    ]
    clause = combined_where(check_predicate(where), filters)
    if ids:
        clause = f"{clause} AND {in_list('id', ids)}" if clause else f"WHERE {in_list('id', ids)}"
    con = locked_connection(lake, version, filters)
    cols = ", ".join(identifier(c) for c in keep)
    table = run_select(con, f"SELECT {cols} FROM records {clause} ORDER BY id LIMIT {MAX_ROWS + 1}")
    if table.num_rows > MAX_ROWS:
        raise WebError(f"export: more than {MAX_ROWS} rows; narrow the filter or export a mix")
    return the_format.encode_table(table), str(the_format.media_type)
