"""The embedding map: a 2-D PCA projection of the `embedding` column, cached per version.

The projection is principal component analysis done with numpy on the server (two streaming
passes over the column, so 1M rows never sit in memory as one matrix): vectors are
L2-normalised like `cluster` and the dedup steps use them, centred, and projected on the two
eigenvectors of their covariance with the largest eigenvalues. The result is scaled into
[-1, 1] (aspect kept), which is what the browser's regl-scatterplot draws, and kept in memory
for the last few `(lake, version, column)` asked for: a version never changes, so neither does
its map.

Points travel as one binary body (`encode`): a little-endian uint32 header length, a JSON
header, then Float32 arrays x, y, colour value and "matches the current filter", n values
each — 16 bytes a point, never a JSON object per point.

A lasso or box drawn on the map is a `lasso` filter (`mixlake.web.facets`): a polygon in the
same [-1, 1] space; `selected_ids` finds the rows inside it.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from curation import Lake
from mixlake.web.errors import WebError

METHOD = "pca"
BATCH = 65_536
MAX_CACHED = 4
_CACHE: OrderedDict[tuple[str, int, str], Projection] = OrderedDict()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Projection:
    """The 2-D map of one version: one point per row that has an embedding.

    Attributes:
        version: the records version.
        column: the embedding column.
        rows: rows in the version (with or without an embedding).
        has: per row in scan order, whether it has an embedding (a point).
        ids: the points' record ids, in point order.
        xy: (points, 2) float32 in [-1, 1].
        explained: the share of variance each of the two axes explains.
    """

    version: int
    column: str
    rows: int
    has: np.ndarray
    ids: pa.Array
    xy: np.ndarray
    explained: tuple[float, float]


def projection(lake: Lake, version: int, column: str = "embedding") -> Projection:
    """The cached projection of `column` at `version`, computed on first use.

    Raises:
        WebError: no such column (404), or fewer than 3 rows with an embedding (409).
    """
    key = (lake.uri, version, column)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    ds = lake.records(version)
    field = ds.schema.field(column) if column in ds.schema.names else None
    if field is None or not pa.types.is_fixed_size_list(field.type):
        raise WebError(
            f"map: no {column!r} vector column at version {version}; run `mixlake embed`", 404
        )
    got = _compute(ds, version, column)
    with _LOCK:
        _CACHE[key] = got
        while len(_CACHE) > MAX_CACHED:
            _CACHE.popitem(last=False)
    return got


def _batches(ds: lance.LanceDataset, columns: list[str]) -> Any:
    return ds.to_batches(columns=columns, batch_size=BATCH)


def _unit_rows(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(valid mask, the valid rows L2-normalised as float32)."""
    valid = np.asarray(arr.is_valid(), dtype=bool)
    dim = arr.type.list_size
    if not valid.any():
        return valid, np.zeros((0, dim), np.float32)
    flat = arr.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
    m = np.asarray(flat, dtype=np.float32).reshape(-1, dim)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return valid, m / norms


def _compute(ds: lance.LanceDataset, version: int, column: str) -> Projection:
    dim = ds.schema.field(column).type.list_size
    total = np.zeros(dim, np.float64)
    scatter = np.zeros((dim, dim), np.float64)
    masks, ids, n = [], [], 0
    for batch in _batches(ds, ["id", column]):
        valid, m = _unit_rows(batch.column(column))
        masks.append(valid)
        ids.append(batch.column("id").filter(pa.array(valid)))
        total += m.sum(axis=0, dtype=np.float64)
        scatter += (m.T @ m).astype(np.float64)
        n += len(m)
    has = np.concatenate(masks) if masks else np.zeros(0, bool)
    if n < 3:
        raise WebError(f"map: {n} rows have {column}; the map needs at least 3", 409)
    mean = total / n
    cov = scatter / n - np.outer(mean, mean)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:2]
    axes = vectors[:, order]
    # an eigenvector's sign is arbitrary: make each axis's largest loading positive, so the
    # same data always gives the same picture
    axes *= np.where(axes[np.argmax(np.abs(axes), axis=0), [0, 1]] < 0, -1.0, 1.0)
    variance = float(values.clip(min=0).sum()) or 1.0
    explained = tuple(round(float(max(v, 0.0)) / variance, 4) for v in values[order])
    parts = [
        (_unit_rows(b.column(column))[1] - mean.astype(np.float32)) @ axes.astype(np.float32)
        for b in _batches(ds, [column])
    ]
    xy = np.concatenate(parts).astype(np.float32)
    centre = (xy.max(axis=0) + xy.min(axis=0)) / 2
    half = float((xy.max(axis=0) - xy.min(axis=0)).max()) / 2 or 1.0
    xy = ((xy - centre) / half * 0.98).astype(np.float32)
    return Projection(
        version=version,
        column=column,
        rows=len(has),
        has=has,
        ids=pa.concat_arrays(ids) if ids else pa.array([], pa.string()),
        xy=xy,
        explained=(explained[0], explained[1] if len(explained) > 1 else 0.0),
    )


def selected_ids(lake: Lake, version: int, polygon: tuple[tuple[float, float], ...]) -> pa.Array:
    """The ids of the points inside `polygon` (vertices in the map's [-1, 1] space)."""
    from matplotlib.path import Path

    proj = projection(lake, version)
    inside = Path(np.asarray(polygon, dtype=np.float64)).contains_points(proj.xy)
    return proj.ids.filter(pa.array(inside))


def column_values(ds: lance.LanceDataset, proj: Projection, column: str) -> pa.Array:
    """`column` of the points, in point order (same scan order as the projection)."""
    chunks = [b.column(column) for b in _batches(ds, [column])]
    whole = pa.concat_arrays(chunks) if chunks else pa.array([], ds.schema.field(column).type)
    return whole.filter(pa.array(proj.has))


def matching(proj: Projection, ids: pa.Array | None) -> np.ndarray:
    """1.0 for points whose id is in `ids` (all points when `ids` is None), else 0.0."""
    if ids is None:
        return np.ones(len(proj.ids), np.float32)
    got = pc.is_in(proj.ids, value_set=ids.cast(pa.string()))
    return np.asarray(got.to_numpy(zero_copy_only=False), dtype=np.float32)


def encode(header: dict[str, Any], arrays: list[np.ndarray]) -> bytes:
    """The map's binary body.

    A uint32 header length, the JSON header (space-padded to 4 bytes), then each array as
    little-endian float32.
    """
    head = orjson.dumps(header)
    head += b" " * ((-len(head)) % 4)
    body = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays)
    return struct.pack("<I", len(head)) + head + body


def decode(body: bytes) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The inverse of `encode` (for tests and scripts): the header and its arrays."""
    (length,) = struct.unpack_from("<I", body)
    header = orjson.loads(body[4 : 4 + length])
    data = np.frombuffer(body, dtype="<f4", offset=4 + length)
    n = int(header["points"])
    return header, [data[i * n : (i + 1) * n] for i in range(len(data) // max(n, 1))]
