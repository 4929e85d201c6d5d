"""Which rows a step computes, and the checkpoint folder of that computation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import lance
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from curation.errors import CurationError, one_line
from curation.lake import Lake
from curation.steps.provenance import jsonable

T = TypeVar("T")


def _filtered(predicate: str, read: Callable[[], T]) -> T:
    """`read()`, with Lance's complaint about the predicate as one line."""
    try:
        return read()
    except (ValueError, OSError) as e:
        raise CurationError(f"bad --where predicate {predicate!r}: {one_line(e)}") from None


def ids_matching(ds: lance.LanceDataset, where: str) -> pa.Array:
    """The ids of the rows matching `where`."""
    return _filtered(
        where, lambda: ds.to_table(columns=["id"], filter=where).column("id").combine_chunks()
    )


def count_matching(ds: lance.LanceDataset, predicate: str, ids: pa.Array | None) -> int:
    """How many rows match `predicate` (and are among `ids`, when given)."""
    if ids is None:
        return int(_filtered(predicate, lambda: ds.count_rows(filter=predicate)))
    found = _filtered(predicate, lambda: ds.to_table(columns=["id"], filter=predicate))
    return int(pc.sum(pc.is_in(found.column("id"), value_set=ids)).as_py() or 0)


def checkpoint_path(
    lake: Lake,
    step: Any,
    where: str | None,
    version: int,
    replacing: list[str],
    ids: pa.Array | None,
) -> Path | None:
    """The checkpoint folder of one computation: a rerun of the same work finds it.

    Keyed by everything that decides the values written: the step's name and parameters, the
    rows (`where` and the `ids` a sparse write restricts to), the version and what it replaces.
    None on object storage, where no checkpoints are kept.
    """
    if "://" in lake.uri:
        return None
    rows = None
    if ids is not None:
        ordered = sorted(str(i) for i in ids.to_pylist())
        rows = hashlib.blake2b("\n".join(ordered).encode(), digest_size=16).hexdigest()
    key = orjson.dumps(
        [step.name, jsonable(step.params()), where, version, replacing, rows],
        option=orjson.OPT_SORT_KEYS,
    )
    digest = hashlib.blake2b(key, digest_size=8).hexdigest()
    return Path(lake.uri) / "_checkpoints" / f"{step.name}-v{version}-{digest}"
