"""What every dedup method shares: text normalisation, union-find, the step skeleton that
groups rows in `prepare` and picks representatives, and the embedding matrix helper."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import lance
import numpy as np
import pyarrow as pa

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
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
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

    def __init__(self) -> None:
        self.name = f"is_dup_{self.method}"
        self._marks: dict[str, tuple[bool, int | None]] = {}
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
        """Read the rows, find the groups, choose one representative per group."""
        columns = ["id", *self.read_columns]
        if self.rank_by != "id":
            columns.append(self.rank_by)
        table = records.to_table(columns=columns, filter=where)
        ids = table.column("id").to_pylist()
        labels = self.group_labels(table)
        quality = (
            np.nan_to_num(table.column(self.rank_by).to_numpy(zero_copy_only=False), nan=-1.0)
            if self.rank_by != "id"
            else np.zeros(len(ids))
        )
        members: dict[int, list[int]] = {}
        for row, label in enumerate(labels):
            members.setdefault(int(label), []).append(row)
        groups = sorted(
            (rows for rows in members.values() if len(rows) > 1),
            key=lambda rows: min(ids[r] for r in rows),
        )
        self._marks = {i: (False, None) for i in ids}
        for number, rows in enumerate(groups):
            keep = min(rows, key=lambda r: (-float(quality[r]), ids[r]))
            for r in rows:
                self._marks[ids[r]] = (r != keep, number)
        self.groups = len(groups)
        self.rows_in_groups = sum(len(g) for g in groups)
        self.rows_marked = self.rows_in_groups - len(groups)

    def covers(self, ids: list[str]) -> list[bool]:
        """Whether each id took part in the grouping (was selected in `prepare`)."""
        return [i in self._marks for i in ids]

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
    return vectors / norms
