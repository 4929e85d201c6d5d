"""Duplicate marking: exact (normalised-text hash), near (MinHash LSH), semantic (SemDeDup).

Each method is a step writing two columns: `is_dup_<method>` (bool: in a group and not its
representative) and `dup_group_<method>` (int64 group number, null for rows without
duplicates). After a method runs, `is_dup` is recomputed as "any method marked the row", so a
mix can exclude `is_dup` or look at one method's column.

The representative of a group is its row with the highest `quality_heuristic_v1` when that
column exists, ties (and lakes without it) broken by the smallest id. Nothing is deleted.

Groups are computed over every row that `where` selects, in `prepare`. Rows added later and
filled by a plain rerun are grouped among all rows, but the marks of rows computed before are
not revisited: run with `replace=True` (`--replace`) after large ingests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Any

import lance
import numpy as np
import pyarrow as pa

from curation.engine import Engine, Source, current_engine, use_engine
from curation.errors import CurationError
from curation.lake import Lake
from curation.steps.base import RowProgress, StepReport, apply
from curation.steps.dedup_base import (
    BucketSpec,
    DedupStep,
    UnionFind,
    bucket_map,
    bucket_reduce,
    embedding_matrix,
    merge_components,
    minhash_generator,
    normalize_text,
    shingles,  # noqa: F401 (re-exported: the bench and older callers import it from here)
)
from curation.steps.dedup_flag import WithDupFlag
from curation.steps.registry import register_step

METHODS = ("exact", "near", "semantic")


class RegisteredDedup(DedupStep):
    """A method the registry runs: `run` is `dedup` with the method's `Params`."""

    @classmethod
    def run(
        cls,
        lake: Lake,
        params: Any = None,
        *,
        where: str | None = None,
        replace: bool = False,
        progress: RowProgress | None = None,
    ) -> DedupReport:
        """`dedup` with this method and its `Params` (the registry's run)."""
        options = {} if params is None else dataclasses.asdict(params)
        threshold = options.pop("threshold", None)
        return dedup(
            lake,
            cls.method,
            threshold=threshold,
            where=where,
            replace=replace,
            progress=progress,
            **options,
        )


class BucketedDedup(RegisteredDedup):
    """A method that groups rows by bucket keys on the current engine (`bucket_map`).

    Each fragment's rows are keyed where they are read; buckets meet in hash partitions,
    each partition joins its buckets' members into components, and only rows that joined
    another (with id and rank) come back to the driver: never all rows, never all pairs.
    """

    def spec(self) -> BucketSpec:
        """How this method keys and checks rows."""
        return BucketSpec(self.method, rank_by=self.rank_by)

    def find_groups(
        self, records: lance.LanceDataset, where: str | None
    ) -> tuple[list[list[tuple[str, float]]], set[str] | None]:
        """Groups from the engine's map/shuffle/reduce; the selected ids when `where` is set."""
        columns = ["id", "text", *([self.rank_by] if self.rank_by != "id" else [])]
        spec = self.spec()
        partials = current_engine().map_reduce(
            Source.of(records),
            columns,
            where,
            partial(bucket_map, spec),
            partial(bucket_reduce, spec),
        )
        covered = None
        if where is not None:
            covered = set(records.to_table(columns=["id"], filter=where).column("id").to_pylist())
        return merge_components(partials), covered


@register_step(
    "dedup_exact_v1", group="dedup", command="exact", help="Normalised-text hash (exact)."
)
class ExactDedup(BucketedDedup):
    """Rows whose normalised text (lowercase, no punctuation, single spaces) is identical."""

    method = "exact"

    def group_labels(self, table: pa.Table) -> np.ndarray:
        """Label = index of the first row with the same normalised text."""
        first: dict[str, int] = {}
        return np.array(
            [
                first.setdefault(normalize_text(t), i)
                for i, t in enumerate(table.column("text").to_pylist())
            ],
            dtype=np.int64,
        )


@dataclass(frozen=True)
class NearParams:
    """Parameters of `dedup_near_v1`.

    Attributes:
        threshold: Jaccard similarity from which rows are duplicates.
        shingle: Words per shingle.
        num_perm: MinHash permutations.
        seed: MinHash seed.
    """

    threshold: float = 0.8
    shingle: int = 5
    num_perm: int = 128
    seed: int = 1


@register_step(
    "dedup_near_v1", group="dedup", command="near", help="MinHash LSH (datasketch) over shingles."
)
class NearDedup(BucketedDedup):
    """MinHash LSH over word shingles (datasketch): estimated Jaccard ≥ `threshold`.

    Signatures are datasketch `MinHash` values; bands and rows per band are what
    datasketch's `MinHashLSH` picks for the threshold; a bucket's members join its first row
    (smallest row address) when their Jaccard estimate reaches the threshold, as
    `group_labels` (datasketch's own LSH, kept as the reference) does.
    """

    method = "near"
    Params = NearParams

    def __init__(
        self, threshold: float = 0.8, shingle: int = 5, num_perm: int = 128, seed: int = 1
    ) -> None:
        """Mark rows whose shingle sets have Jaccard similarity ≥ `threshold`."""
        if not 0.0 < threshold <= 1.0:
            raise CurationError(f"near dedup --threshold must be in (0, 1], got {threshold}")
        if shingle < 1:
            raise CurationError(f"near dedup --shingle must be ≥ 1, got {shingle}")
        super().__init__()
        self.threshold, self.shingle, self.num_perm, self.seed = threshold, shingle, num_perm, seed

    def method_params(self) -> dict[str, Any]:
        """Threshold, shingle size (words), permutations, seed."""
        return {
            "threshold": self.threshold,
            "shingle": self.shingle,
            "num_perm": self.num_perm,
            "seed": self.seed,
        }

    def spec(self) -> BucketSpec:
        """MinHash parameters and datasketch's (bands, rows per band) for the threshold."""
        from datasketch.lsh import _optimal_param

        try:
            bands, band_rows = _optimal_param(self.threshold, self.num_perm, 0.5, 0.5)
        except ValueError as e:
            raise CurationError(f"near dedup --threshold {self.threshold}: {e}") from None
        return BucketSpec(
            "near",
            rank_by=self.rank_by,
            threshold=self.threshold,
            shingle=self.shingle,
            num_perm=self.num_perm,
            seed=self.seed,
            bands=bands,
            band_rows=band_rows,
        )

    def group_labels(self, table: pa.Table) -> np.ndarray:
        """The reference grouping, all in this process, with datasketch's `MinHashLSH`.

        Every row goes into the LSH; rows that share a bucket are joined when their
        signatures' Jaccard estimate reaches the threshold (row order = the table's).
        """
        from datasketch import MinHashLSH

        texts = table.column("text").to_pylist()
        minhashes = list(minhash_generator(texts, self.shingle, self.num_perm, self.seed))
        try:
            lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)
        except ValueError as e:
            raise CurationError(
                f"near dedup --threshold {self.threshold} with {self.num_perm} permutations: {e};"
                " lower the threshold or raise num_perm"
            ) from None
        with lsh.insertion_session() as session:
            for row, m in enumerate(minhashes):
                session.insert(row, m, check_duplication=False)
        found = UnionFind(len(texts))
        for table_ in lsh.hashtables:
            for key in table_.keys():  # noqa: SIM118 (a datasketch storage, not a dict)
                members = sorted(table_.get(key))
                for other in members[1:]:
                    if found.find(other) != found.find(members[0]) and (
                        minhashes[members[0]].jaccard(minhashes[other]) >= self.threshold
                    ):
                        found.union(members[0], other)
        return found.labels()


@dataclass(frozen=True)
class SemanticParams:
    """Parameters of `dedup_semantic_v1`.

    Attributes:
        threshold: Cosine similarity from which rows are duplicates.
        clusters: k-means clusters (default ~200 rows each).
        seed: k-means seed.
        column: The embedding column.
    """

    threshold: float = 0.95
    clusters: int | None = None
    seed: int = 0
    column: str = "embedding"


@register_step(
    "dedup_semantic_v1",
    group="dedup",
    command="semantic",
    help="SemDeDup: cosine within k-means clusters of `embedding`.",
)
class SemanticDedup(RegisteredDedup):
    """SemDeDup: k-means on embeddings, then cosine ≥ `threshold` within each cluster."""

    method = "semantic"
    read_columns = ("embedding",)
    Params = SemanticParams

    def __init__(
        self,
        threshold: float = 0.95,
        clusters: int | None = None,
        seed: int = 0,
        column: str = "embedding",
    ) -> None:
        """Mark rows whose embeddings have cosine similarity ≥ `threshold`."""
        if not 0.0 < threshold <= 1.0:
            raise CurationError(f"semantic dedup --threshold must be in (0, 1], got {threshold}")
        super().__init__()
        self.threshold, self.clusters, self.seed, self.column = threshold, clusters, seed, column
        self.read_columns = (column,)

    def method_params(self) -> dict[str, Any]:
        """Threshold, number of clusters (None: about 200 rows per cluster), seed, column."""
        return {
            "threshold": self.threshold,
            "clusters": self.clusters,
            "seed": self.seed,
            "column": self.column,
        }

    def prepare(self, records: lance.LanceDataset, where: str | None) -> None:
        """Only rows that have an embedding take part."""
        if self.column not in records.schema.names:
            raise CurationError(f"semantic dedup needs {self.column}; run `mixlake embed` first")
        has = f"{self.column} IS NOT NULL"
        super().prepare(records, f"({where}) AND {has}" if where else has)

    def group_labels(self, table: pa.Table) -> np.ndarray:
        """Union pairs above the cosine threshold inside each k-means cluster."""
        vectors = embedding_matrix(table.column(self.column))
        n = len(vectors)
        found = UnionFind(n)
        if n < 2:
            return found.labels()
        k = self.clusters or max(1, n // 200)
        assign = kmeans_labels(vectors, min(k, n), self.seed)
        for c in np.unique(assign):
            rows = np.flatnonzero(assign == c)
            sims = vectors[rows] @ vectors[rows].T
            a_idx, b_idx = np.nonzero(np.triu(sims >= self.threshold, k=1))
            for a, b in zip(a_idx, b_idx, strict=True):
                found.union(int(rows[a]), int(rows[b]))
        return found.labels()


def kmeans_labels(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Seeded MiniBatchKMeans cluster labels."""
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=1024)
    return np.asarray(model.fit_predict(vectors))


@dataclass(frozen=True)
class DedupReport:
    """What `dedup` did: groups found, rows in groups, rows marked, and `is_dup` overall."""

    method: str
    step: StepReport
    groups: int
    rows_in_groups: int
    rows_marked: int
    is_dup_rows: int
    is_dup_version: int | None


def make_dedup_step(method: str, threshold: float | None = None, **options: Any) -> DedupStep:
    """The step for `method` (exact, near or semantic) with its options."""
    if method == "exact":
        return ExactDedup()
    if method == "near":
        return NearDedup(threshold if threshold is not None else 0.8, **options)
    if method == "semantic":
        return SemanticDedup(threshold if threshold is not None else 0.95, **options)
    raise CurationError(f"unknown dedup method {method!r}; use exact, near or semantic")


def dedup(
    lake: Lake,
    method: str,
    *,
    threshold: float | None = None,
    where: str | None = None,
    replace: bool = False,
    progress: RowProgress | None = None,
    engine: Engine | None = None,
    **options: Any,
) -> DedupReport:
    """Mark duplicates with one method and recompute `is_dup`.

    Args:
        lake: the lake.
        method: `exact`, `near` (MinHash LSH) or `semantic` (embedding cosine in clusters).
        threshold: Jaccard (near, default 0.8) or cosine (semantic, default 0.95) threshold.
        where: only rows matching this SQL predicate take part.
        replace: recompute when the columns exist with other parameters.
        progress: callback (rows done, rows total).
        engine: where grouping and marking run (default: `use_engine`'s, else local);
            exact and near group through the engine's shuffle, semantic groups here.
        **options: method options: `shingle`, `num_perm`, `seed` (near); `clusters`, `seed`,
            `column` (semantic).

    Raises:
        CurationError: unknown method, bad threshold, missing embeddings, or columns made
            with other parameters and no `replace`.
    """
    step = make_dedup_step(method, threshold, **options)
    with use_engine(engine), lake.writing(f"dedup {method}"):
        schema = lake.dataset("records").schema
        step.use_quality(schema)
        if isinstance(step, SemanticDedup):
            if step.column not in schema.names:
                raise CurationError(
                    f"semantic dedup needs {step.column}; run `mixlake embed` first"
                )
            # Rows without a vector stay null, so a rerun after embedding more rows fills them.
            has = f"{step.column} IS NOT NULL"
            where = f"({where}) AND {has}" if where else has
        others = tuple(m for m in METHODS if m != method and f"is_dup_{m}" in schema.names)
        # The method's marks and `is_dup` are one step, so they land in one commit.
        combined = WithDupFlag(step, others)
        report = apply(
            combined, lake, where=where, replace=replace, recompute=("is_dup",), progress=progress
        )
        ds = lake.dataset("records")
        if report.no_op:
            step.prepare(ds, where)  # a no-op rerun still reports the groups it found
        flag_version = report.version
    return DedupReport(
        method=method,
        step=report,
        groups=step.groups,
        rows_in_groups=step.rows_in_groups,
        rows_marked=step.rows_marked,
        is_dup_rows=int(ds.count_rows(filter="is_dup")),
        is_dup_version=flag_version,
    )
