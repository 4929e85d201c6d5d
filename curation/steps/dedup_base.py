"""What every dedup method shares.

Text normalisation, union-find, the step skeleton that groups rows in `prepare` and picks
representatives, and the embedding matrix helper.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from curation.errors import CurationError

QUALITY_COLUMN = "quality_heuristic_v1"
"""Representatives are the rows with the highest value of this column, when it exists."""

_PUNCT_RE = re.compile(r"[^\w\s]+")
_SPACE_RE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lowercase, strip punctuation and collapse whitespace (the exact-dedup key)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE_RE.sub(" ", _PUNCT_RE.sub(" ", text)).strip()


class UnionFind:
    """Disjoint sets over row numbers; the root of a set is its smallest row."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        """The root of `a`'s group (compressing the path on the way)."""
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        """Join the groups of `a` and `b`."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def labels(self) -> np.ndarray:
        """The group root of every row."""
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


class DedupStep:
    """Shared machinery: `prepare` groups rows, `__call__` looks the marks up by id.

    A method subclasses it with a `method` name and `group_labels(table)`.
    """

    method = ""
    input_columns: tuple[str, ...] = ("id",)
    read_columns: tuple[str, ...] = ("text",)
    model_step = False

    def __init__(self) -> None:
        self.name = f"is_dup_{self.method}"
        self._marks: dict[str, tuple[bool, int | None]] = {}  # rows in groups only
        self._covered: set[str] | None = None
        self.groups = 0
        self.rows_in_groups = 0
        self.rows_marked = 0
        self.rank_by = "id"

    def output_schema(self) -> pa.Schema:
        """`is_dup_<method>` then `dup_group_<method>`."""
        return pa.schema(
            [pa.field(self.name, pa.bool_()), pa.field(f"dup_group_{self.method}", pa.int64())]
        )

    def method_params(self) -> dict[str, Any]:
        """Parameters of the method itself."""
        return {}

    def params(self) -> dict[str, Any]:
        """The method parameters and how representatives are ranked."""
        return {**self.method_params(), "rank_by": self.rank_by}

    def use_quality(self, schema: pa.Schema) -> None:
        """Rank representatives by quality when the lake has the column."""
        self.rank_by = QUALITY_COLUMN if QUALITY_COLUMN in schema.names else "id"

    def prepare(self, records: lance.LanceDataset, where: str | None) -> None:
        """Find the groups among the rows `where` selects; choose one representative each."""
        groups, self._covered = self.find_groups(records, where)
        groups = sorted(groups, key=lambda rows: min(i for i, _ in rows))
        self._marks = {}
        for number, rows in enumerate(groups):
            keep = min(rows, key=lambda r: (-r[1], r[0]))
            for i, _ in rows:
                self._marks[i] = (i != keep[0], number)
        self.groups = len(groups)
        self.rows_in_groups = sum(len(g) for g in groups)
        self.rows_marked = self.rows_in_groups - len(groups)

    def find_groups(
        self, records: lance.LanceDataset, where: str | None
    ) -> tuple[list[list[tuple[str, float]]], set[str] | None]:
        """Groups of two or more rows as (id, rank) pairs, and the ids taking part (None: all).

        This default reads the rows here and groups them with `group_labels`.
        """
        columns = ["id", *self.read_columns]
        if self.rank_by != "id":
            columns.append(self.rank_by)
        table = records.to_table(columns=columns, filter=where)
        ids = table.column("id").to_pylist()
        labels = self.group_labels(table)
        ranks = self.ranks(table)
        members: dict[int, list[tuple[str, float]]] = {}
        for row, label in enumerate(labels):
            members.setdefault(int(label), []).append((ids[row], float(ranks[row])))
        groups = [rows for rows in members.values() if len(rows) > 1]
        return groups, set(ids) if where is not None else None

    def ranks(self, table: pa.Table) -> np.ndarray:
        """The representative ranking value of each row (higher wins; missing ranks -1)."""
        if self.rank_by == "id":
            return np.zeros(table.num_rows)
        values: np.ndarray = table.column(self.rank_by).to_numpy(zero_copy_only=False)
        ranked: np.ndarray = np.nan_to_num(values, nan=-1.0)
        return ranked

    def covers(self, ids: list[str]) -> list[bool]:
        """Whether each id took part in the grouping (was selected in `prepare`)."""
        if self._covered is None:
            return [True] * len(ids)
        return [i in self._covered for i in ids]

    def group_labels(self, table: pa.Table) -> np.ndarray:
        """One label per row; rows with equal labels are duplicates."""
        raise CurationError(f"dedup method {self.method!r} has no grouping")

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Look up the marks computed in `prepare`."""
        marks = [self._marks.get(i, (False, None)) for i in batch.column("id").to_pylist()]
        return pa.RecordBatch.from_arrays(
            [
                pa.array([m[0] for m in marks], pa.bool_()),
                pa.array([m[1] for m in marks], pa.int64()),
            ],
            schema=self.output_schema(),
        )


def embedding_matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list column as a row-normalised float32 matrix."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dim = arr.type.list_size
    vectors = arr.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: np.ndarray = vectors / norms
    return unit


# ------------------------------------------------ grouping by buckets, on any engine
@dataclass(frozen=True)
class BucketSpec:
    """How rows become bucket keys (see `bucket_map`) and which bucket pairs are kept.

    `exact`: one bucket per normalised text; every member joins the bucket's first row.
    `near`: one bucket per MinHash LSH band value (datasketch's bands and row order); a
    member joins the bucket's first row when their signatures' Jaccard estimate reaches
    `threshold`, as datasketch's `MinHashLSH` candidates are checked locally.
    """

    method: str
    rank_by: str = "id"
    threshold: float = 1.0
    shingle: int = 5
    num_perm: int = 128
    seed: int = 1
    bands: int = 1
    band_rows: int = 1


def bucket_map(spec: BucketSpec, table: pa.Table, parts: int) -> list[tuple[pa.Table, pa.Table]]:
    """One fragment's rows → per partition: (bucket entries `key, row`; those rows' info).

    A row is its row address (`_rowaddr`), so partitions need no global numbering; the
    info table holds `row, id, rank` and, for near dedup, the MinHash signature.
    """
    rows = table.column("_rowaddr").to_numpy().astype(np.uint64)
    texts = table.column("text").to_pylist()
    info = {
        "row": pa.array(rows),
        "id": table.column("id").combine_chunks(),
        "rank": pa.array(_rank_values(table, spec.rank_by), pa.float64()),
    }
    if spec.method == "exact":
        keys = [normalize_text(t).encode() for t in texts]
        key_array: pa.Array = pa.array(keys, pa.binary())
        entry_rows = rows
        hashes = np.array([xxhash.xxh64_intdigest(k) for k in keys], dtype=np.uint64)
    else:
        sig = signatures(texts, spec.shingle, spec.num_perm, spec.seed)
        info["sig"] = pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1)), spec.num_perm)
        key_array, hashes = _band_keys(sig, spec.bands, spec.band_rows)
        entry_rows = np.tile(rows, spec.bands)
    info_table = pa.table(info)
    part = (hashes % np.uint64(parts)).astype(np.int64) if parts > 1 else None
    out = []
    for p in range(parts):
        mask = None if part is None else pa.array(part == p)
        entries = pa.table({"key": key_array, "row": pa.array(entry_rows)})
        if mask is not None:
            entries = entries.filter(mask)
            used = pa.array(np.unique(entries.column("row").to_numpy()))
            out.append((entries, info_table.filter(pc.is_in(info_table.column("row"), used))))
        else:
            out.append((entries, info_table))
    return out


def bucket_reduce(spec: BucketSpec, parts: list[tuple[pa.Table, pa.Table]]) -> pa.Table:
    """One partition's buckets → `row, root, id, rank` of every row joined to another.

    `root` is the smallest row of the row's component among this partition's edges; the
    driver joins partitions with `merge_components`.
    """
    empty = pa.table({"row": pa.array([], pa.uint64()), "root": pa.array([], pa.uint64())})
    if not parts or not any(e.num_rows for e, _ in parts):
        return empty.append_column("id", pa.array([], pa.string())).append_column(
            "rank", pa.array([], pa.float64())
        )
    entries = pa.concat_tables([e for e, _ in parts])
    info = pa.concat_tables([i for _, i in parts])
    order = pc.sort_indices(entries, sort_keys=[("key", "ascending"), ("row", "ascending")])
    keys = entries.column("key").take(order).combine_chunks()
    rows = entries.column("row").take(order).to_numpy()
    same = np.zeros(len(rows), dtype=bool)
    if len(rows) > 1:
        same[1:] = pc.equal(keys.slice(1), keys.slice(0, len(keys) - 1)).to_numpy(
            zero_copy_only=False
        )
    starts = np.flatnonzero(~same)
    anchor = rows[starts[np.searchsorted(starts, np.arange(len(rows)), side="right") - 1]]
    a, b = anchor[same], rows[same]
    if spec.method == "near" and len(a):
        by_row = np.argsort(info.column("row").to_numpy())
        info_rows = info.column("row").to_numpy()[by_row]
        sig = info.column("sig").combine_chunks().flatten().to_numpy()
        sig = sig.reshape(-1, spec.num_perm)[by_row]
        sa, sb = np.searchsorted(info_rows, a), np.searchsorted(info_rows, b)
        keep = np.concatenate(
            [
                np.count_nonzero(sig[sa[i : i + 4096]] == sig[sb[i : i + 4096]], axis=1)
                / np.float64(spec.num_perm)
                >= spec.threshold
                for i in range(0, len(a), 4096)
            ]
        )
        a, b = a[keep], b[keep]
    nodes, roots = components(a, b)
    picked = info.filter(pc.is_in(info.column("row"), pa.array(nodes)))
    order_info = np.argsort(picked.column("row").to_numpy())
    picked = picked.take(pa.array(order_info))  # rows ascending, as `nodes`
    return pa.table(
        {
            "row": pa.array(nodes),
            "root": pa.array(roots),
            "id": picked.column("id"),
            "rank": picked.column("rank"),
        }
    )


def components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the edges a[i]–b[i]: (sorted nodes, each node's smallest node)."""
    nodes = np.unique(np.concatenate([a, b])) if len(a) else np.array([], np.uint64)
    found = UnionFind(len(nodes))
    for x, y in zip(
        np.searchsorted(nodes, a).tolist(), np.searchsorted(nodes, b).tolist(), strict=True
    ):
        found.union(x, y)
    return nodes, nodes[found.labels()] if len(nodes) else nodes


def merge_components(partials: list[pa.Table]) -> list[list[tuple[str, float]]]:
    """Join the partitions' components (a row may sit in several) into groups of (id, rank)."""
    table = pa.concat_tables(partials) if partials else pa.table({})
    if table.num_rows == 0:
        return []
    _, roots = components(table.column("row").to_numpy(), table.column("root").to_numpy())
    first = np.unique(table.column("row").to_numpy(), return_index=True)[1]
    ids = table.column("id").take(pa.array(first)).to_pylist()
    ranks = table.column("rank").take(pa.array(first)).to_numpy()
    members: dict[int, list[tuple[str, float]]] = {}
    for root, i, r in zip(roots.tolist(), ids, ranks.tolist(), strict=True):
        members.setdefault(root, []).append((i, r))
    return [rows for rows in members.values() if len(rows) > 1]


def shingles(text: str, size: int) -> list[str]:
    """Word n-grams of the normalised text (the whole text when it has fewer words)."""
    words = normalize_text(text).split()
    if len(words) <= size:
        return [" ".join(words)]
    return [" ".join(words[i : i + size]) for i in range(len(words) - size + 1)]


def minhash_generator(texts: list[str], shingle: int, num_perm: int, seed: int) -> Iterator[Any]:
    """Datasketch MinHashes of the texts' shingles, hashed with xxh32 instead of SHA-1.

    `MinHash.generator` copies one template per row, so permutations are drawn once, and
    `update_batch` applies them to all shingles of a row at once.
    """
    import xxhash
    from datasketch import MinHash

    signatures: Iterator[Any] = MinHash.generator(
        ([s.encode() for s in shingles(t, shingle)] for t in texts),
        num_perm=num_perm,
        seed=seed,
        hashfunc=xxhash.xxh32_intdigest,
    )
    return signatures


def signatures(texts: list[str], shingle: int, num_perm: int, seed: int) -> np.ndarray:
    """Datasketch MinHash values of each text's shingles, as uint32 (rows × num_perm)."""
    out = np.empty((len(texts), num_perm), dtype=np.uint32)
    for i, m in enumerate(minhash_generator(texts, shingle, num_perm, seed)):
        out[i] = m.hashvalues
    return out


def _band_keys(sig: np.ndarray, bands: int, band_rows: int) -> tuple[pa.Array, np.ndarray]:
    """Bucket keys (band number + the band's values, bytes) and their hashes, band-major."""
    n = sig.shape[0]
    width = 2 + 4 * band_rows
    keys = np.empty((bands, n, width), dtype=np.uint8)
    hashes = np.empty((bands, n), dtype=np.uint64)
    mix = (np.arange(1, band_rows + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | 1
    for band in range(bands):
        values = np.ascontiguousarray(sig[:, band * band_rows : (band + 1) * band_rows])
        keys[band, :, :2] = np.frombuffer(np.uint16(band).tobytes(), dtype=np.uint8)
        keys[band, :, 2:] = values.view(np.uint8).reshape(n, 4 * band_rows)
        with np.errstate(over="ignore"):
            hashes[band] = (values.astype(np.uint64) * mix).sum(axis=1) + np.uint64(band)
    flat = pa.py_buffer(keys.reshape(-1).tobytes())
    array = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), bands * n, [None, flat])
    return array.cast(pa.binary()), hashes.reshape(-1)


def _rank_values(table: pa.Table, rank_by: str) -> np.ndarray:
    if rank_by == "id" or rank_by not in table.column_names:
        return np.zeros(table.num_rows)
    values: np.ndarray = table.column(rank_by).to_numpy(zero_copy_only=False).astype(np.float64)
    ranked: np.ndarray = np.nan_to_num(values, nan=-1.0)
    return ranked
