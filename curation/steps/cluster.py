"""k-means clusters of the embeddings: a `cluster` column and a `clusters` table describing them.

`cluster` fits a seeded scikit-learn `MiniBatchKMeans` on the `embedding` column of the rows
`where` selects (rows without an embedding are left null) and writes each row's cluster. The
`clusters` table (rewritten each run, versioned like every Lance table) holds one row per
cluster: size, top terms (highest mean TF-IDF over member texts), the member nearest the
centroid as representative, and the centroid itself. Rows embedded later and filled by a
plain rerun are assigned to the nearest stored centroid, so earlier labels stay meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from curation.commit import Entry
from curation.errors import CurationError
from curation.faults import crash_point
from curation.lake import Lake
from curation.sqltext import in_list
from curation.steps.base import RowProgress, StepReport, apply
from curation.steps.dedup_base import embedding_matrix
from curation.steps.provenance import (
    column_provenance,
    jsonable,
    provenance_metadata,
    stored_params,
)
from curation.steps.registry import register_step

TOP_TERMS = 6


@dataclass(frozen=True)
class ClusterParams:
    """Parameters of `cluster_v1`.

    Attributes:
        k: Number of clusters.
        seed: k-means seed.
    """

    k: int = 20
    seed: int = 0


@register_step(
    "cluster_v1",
    command="cluster",
    help="k-means on embeddings: a `cluster` column and a `clusters` table with top terms.",
)
class ClusterStep:
    """`cluster`: the k-means cluster of each row's embedding."""

    name = "cluster"
    model_step = False
    Params = ClusterParams

    @classmethod
    def run(
        cls,
        lake: Lake,
        params: ClusterParams,
        *,
        where: str | None = None,
        replace: bool = False,
        progress: RowProgress | None = None,
    ) -> ClusterReport:
        """`cluster` with these parameters (the registry's run)."""
        return cluster(
            lake, params.k, seed=params.seed, where=where, replace=replace, progress=progress
        )

    def __init__(self, k: int, seed: int = 0, column: str = "embedding") -> None:
        """Cluster `column` into `k` clusters with a fixed `seed`."""
        if k < 1:
            raise CurationError(f"--k must be ≥ 1, got {k}")
        self.k, self.seed, self.column = k, seed, column
        self.input_columns: tuple[str, ...] = ("id",)
        self.centroids: np.ndarray | None = None
        self._labels: dict[str, int] = {}

    def params(self) -> dict[str, Any]:
        """k, seed and the embedding column."""
        return {"k": self.k, "seed": self.seed, "column": self.column}

    def output_schema(self) -> pa.Schema:
        """One int32 column."""
        return pa.schema([pa.field("cluster", pa.int32())])

    def prepare(self, records: lance.LanceDataset, where: str | None) -> None:
        """Fit k-means (or reuse the stored centroids when filling new rows) and label rows."""
        if self.column not in records.schema.names:
            raise CurationError(f"cluster needs {self.column}; run `mixlake embed` first")
        table = records.to_table(columns=["id", self.column], filter=where)
        if table.num_rows == 0:
            self._labels = {}
            return
        vectors = embedding_matrix(table.column(self.column))
        if self.centroids is None:
            if table.num_rows < self.k:
                raise CurationError(
                    f"--k {self.k} is more than the {table.num_rows} rows with embeddings; "
                    "lower --k or embed more rows"
                )
            from sklearn.cluster import MiniBatchKMeans

            model = MiniBatchKMeans(
                n_clusters=self.k, random_state=self.seed, n_init=3, batch_size=2048
            )
            labels = model.fit_predict(vectors)
            self.centroids = np.asarray(model.cluster_centers_, dtype=np.float32)
        else:
            labels = np.argmax(vectors @ _normalised(self.centroids).T, axis=1)
        self._labels = dict(zip(table.column("id").to_pylist(), labels.tolist(), strict=True))

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Look up each row's label."""
        labels = [self._labels.get(i) for i in batch.column("id").to_pylist()]
        return pa.RecordBatch.from_arrays(
            [pa.array(labels, pa.int32())], schema=self.output_schema()
        )


def _normalised(m: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    norms: npt.NDArray[np.floating] = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms


@dataclass(frozen=True)
class ClusterInfo:
    """One row of the `clusters` table."""

    cluster: int
    size: int
    top_terms: tuple[str, ...]
    representative: str
    snippet: str


@dataclass(frozen=True)
class ClusterReport:
    """What `cluster` did and the clusters it describes (largest first)."""

    step: StepReport
    rows: int
    clusters: tuple[ClusterInfo, ...]


def _stored_centroids(lake: Lake, params: dict[str, Any]) -> np.ndarray | None:
    if not lake.has_table("clusters"):
        return None
    meta = lake.dataset("clusters").schema.metadata or {}
    if stored_params(meta) != jsonable(params):
        return None
    table = lake.dataset("clusters").to_table(columns=["cluster", "centroid"])
    order = np.argsort(table.column("cluster").to_numpy())
    dim = table.schema.field("centroid").type.list_size
    flat = table.column("centroid").combine_chunks().values.to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(-1, dim)[order]


def describe_clusters(
    lake: Lake, centroids: np.ndarray, column: str = "embedding"
) -> tuple[pa.Table, dict[str, str]]:
    """Describe each cluster: size, top TF-IDF terms, representative and centroid.

    Args:
        lake: the lake whose latest `records` carry a `cluster` column.
        centroids: one centroid per cluster, in cluster order.
        column: the embedding column the clusters were made from.

    Returns:
        A table with one row per cluster (the representative is the id of the member nearest
        its centroid), and the text of every clustered row by id.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    table = lake.dataset("records").to_table(
        columns=["id", "text", "cluster", column], filter="cluster IS NOT NULL"
    )
    labels = table.column("cluster").to_numpy()
    texts = table.column("text").to_pylist()
    ids = table.column("id").to_pylist()
    vectors = embedding_matrix(table.column(column))
    tfidf = TfidfVectorizer(
        max_features=20000,
        stop_words="english",
        sublinear_tf=True,
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
    )
    try:
        matrix = tfidf.fit_transform(texts)
        vocab = np.array(tfidf.get_feature_names_out())
    except ValueError:  # only stop words or empty texts
        matrix, vocab = None, np.array([], dtype=str)
    rows: dict[str, list[Any]] = {k: [] for k in ("cluster", "size", "top_terms", "representative")}
    for c in range(len(centroids)):
        members = np.flatnonzero(labels == c)
        rows["cluster"].append(c)
        rows["size"].append(len(members))
        if len(members) == 0:
            rows["top_terms"].append([])
            rows["representative"].append(None)
            continue
        if matrix is not None and len(vocab):
            weights = np.asarray(matrix[members].mean(axis=0)).ravel()
            top = [str(vocab[i]) for i in np.argsort(-weights)[:TOP_TERMS] if weights[i] > 0]
        else:
            top = []
        rows["top_terms"].append(top)
        nearest = members[int(np.argmax(vectors[members] @ _normalised(centroids)[c]))]
        rows["representative"].append(ids[nearest])
    flat = pa.array(centroids.astype(np.float32).reshape(-1), pa.float32())
    return pa.table(
        {
            "cluster": pa.array(rows["cluster"], pa.int32()),
            "size": pa.array(rows["size"], pa.int64()),
            "top_terms": pa.array(rows["top_terms"], pa.list_(pa.string())),
            "representative": pa.array(rows["representative"], pa.string()),
            "centroid": pa.FixedSizeListArray.from_arrays(flat, centroids.shape[1]),
        }
    ), dict(zip(ids, texts, strict=True))


def cluster(
    lake: Lake,
    k: int,
    *,
    seed: int = 0,
    column: str = "embedding",
    where: str | None = None,
    replace: bool = False,
    progress: RowProgress | None = None,
) -> ClusterReport:
    """Cluster the embeddings into `k` groups and describe each group.

    Args:
        lake: the lake.
        k: number of clusters.
        seed: k-means seed (same seed, same rows ⇒ same clusters).
        column: the embedding column.
        where: only rows matching this SQL predicate (rows without embeddings are skipped).
        replace: recompute when `cluster` exists with another k, seed or column.
        progress: callback (rows done, rows total).

    Raises:
        CurationError: no embeddings, k larger than the rows, or `cluster` made with other
            parameters and no `replace`.
    """
    step = ClusterStep(k, seed, column)
    schema = lake.dataset("records").schema
    if column not in schema.names:
        raise CurationError(f"cluster needs {column}; run `mixlake embed` first")
    if "cluster" in schema.names and not replace:
        made = column_provenance(schema.field("cluster")).get("params")
        if made == step.params():
            step.centroids = _stored_centroids(lake, step.params())
    has = f"{column} IS NOT NULL"
    selected = f"({where}) AND {has}" if where else has
    report = apply(step, lake, where=selected, replace=replace, progress=progress)
    rebuild = report.no_op and step.centroids is None
    if rebuild:
        # `cluster` is there but `clusters` describes another clustering (a crash came between
        # the two writes): k-means is seeded, so preparing again gives the column's centroids.
        step.prepare(lake.dataset("records"), selected)
    if report.no_op and not rebuild and lake.has_table("clusters"):
        table = lake.dataset("clusters").to_table()
        texts = _texts(lake, table.column("representative").to_pylist())
    else:
        if step.centroids is None:
            raise CurationError("cluster: no rows with embeddings matched; nothing to cluster")
        table, texts = describe_clusters(lake, step.centroids, column)
        meta = provenance_metadata(step.name, step.params(), lake.latest_version())
        table = table.replace_schema_metadata(meta)
        uri = lake.table_uri("clusters")
        entry = Entry("clusters", f"described {table.num_rows} clusters", step.params())
        with lake.writing("describe clusters"):
            lance.write_dataset(
                table,
                uri,
                mode="overwrite" if lake.has_table("clusters") else "create",
                transaction_properties=entry.properties(),
            )
        crash_point("cluster:described")
    infos = tuple(
        sorted(
            (
                ClusterInfo(
                    int(r["cluster"]),
                    int(r["size"]),
                    tuple(r["top_terms"]),
                    r["representative"] or "",
                    " ".join((texts.get(r["representative"]) or "").split())[:120],
                )
                for r in table.select(
                    ["cluster", "size", "top_terms", "representative"]
                ).to_pylist()
            ),
            key=lambda c: (-c.size, c.cluster),
        )
    )
    return ClusterReport(report, sum(c.size for c in infos), infos)


def _texts(lake: Lake, ids: list[str | None]) -> dict[str, str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    table = lake.dataset("records").to_table(columns=["id", "text"], filter=in_list("id", wanted))
    return dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True))
