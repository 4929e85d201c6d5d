"""Provenance of step columns: what made a column, stored in its Arrow field metadata."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import orjson
import pyarrow as pa

META_STEP = b"mixlake.step"
META_PARAMS = b"mixlake.params"
META_VERSION = b"mixlake.records_version"
META_CREATED = b"mixlake.created_at"


class _Named(Protocol):
    name: str

    def params(self) -> dict[str, Any]: ...

    def output_schema(self) -> pa.Schema: ...


def column_provenance(field: pa.Field) -> dict[str, Any]:
    """The provenance stored on a column made by a step (empty for core columns)."""
    meta = field.metadata or {}
    if META_STEP not in meta:
        return {}
    return {
        "step": meta[META_STEP].decode(),
        "params": orjson.loads(meta.get(META_PARAMS, b"{}")),
        "records_version": int(meta.get(META_VERSION, b"0")),
        "created_at": meta.get(META_CREATED, b"").decode(),
    }


def provenance_metadata(
    step: str, params: dict[str, Any], records_version: int
) -> dict[bytes, bytes]:
    """The metadata that records what made a column (or a step's side table).

    Args:
        step: the step name.
        params: its parameters (made JSON-safe, keys sorted).
        records_version: the `records` version it was computed on.
    """
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {
        META_STEP: step.encode(),
        META_PARAMS: orjson.dumps(jsonable(params), option=orjson.OPT_SORT_KEYS),
        META_VERSION: str(records_version).encode(),
        META_CREATED: stamp.encode(),
    }


def stored_params(meta: dict[bytes, bytes] | None) -> Any:
    """The parameters recorded in provenance metadata (`{}` when none are)."""
    return orjson.loads((meta or {}).get(META_PARAMS, b"{}"))


def _with_provenance(step: _Named, records_version: int) -> pa.Schema:
    meta = provenance_metadata(step.name, step.params(), records_version)
    return pa.schema(
        [f.with_metadata({**(f.metadata or {}), **meta}) for f in step.output_schema()]
    )


def jsonable(params: dict[str, Any]) -> Any:
    """`params` as stored: JSON-safe (other values as strings), keys sorted."""
    return orjson.loads(orjson.dumps(params, default=str, option=orjson.OPT_SORT_KEYS))
