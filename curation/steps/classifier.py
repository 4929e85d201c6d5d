"""`quality_classifier_v1`: logistic regression on the `embedding` column, trained on `labels`.

`ClassifierQualityStep.train(lake)` fits the model before `apply` runs, so the held-out
accuracy and a digest of the labels used are part of the column's provenance parameters:
rerunning with the same labels is a no-op; after new labels the step refuses unless replaced.
Training holds out a stratified share of the labels to measure accuracy, then refits on all of
them to score every row with P(good).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.errors import CurationError
from curation.labels import current_labels
from curation.lake import Lake
from curation.sqltext import identifier
from curation.steps.base import RowProgress, StepReport, apply
from curation.steps.registry import register_step

EMBEDDING = "embedding"


@dataclass(frozen=True)
class ClassifierConfig:
    """How the classifier is trained.

    Attributes:
        min_labels: fewer usable labels (with embeddings) is an error.
        held_out: share of labels held out to measure accuracy.
        seed: seed of the held-out split.
        c: inverse regularisation strength of the logistic regression.
    """

    min_labels: int = 10
    held_out: float = 0.25
    seed: int = 0
    c: float = 1.0

    def __post_init__(self) -> None:
        """Refuse settings the training cannot work with (too few labels, no held-out share)."""
        if self.min_labels < 4:
            raise CurationError(f"min_labels must be at least 4, got {self.min_labels}")
        if not 0.0 < self.held_out < 1.0:
            raise CurationError(f"held_out must be between 0 and 1, got {self.held_out}")
        if self.c <= 0:
            raise CurationError(f"c must be positive, got {self.c}")


@register_step(
    "quality_classifier_v1",
    group="score",
    help="P(good) from a logistic regression on `embedding`, trained on the `labels` table.",
)
class ClassifierQualityStep:
    """P(good) from a logistic regression over embeddings; build it with `train`.

    Not a model step: the fitted regression travels with the step (nothing is loaded).

    Args:
        model: the fitted scikit-learn `LogisticRegression`.
        info: training facts from `train` (label counts and digest, held-out accuracy,
            embedding, seed), returned by `params` and so kept in the column's provenance.
    """

    name = "quality_classifier_v1"
    input_columns: tuple[str, ...] = (EMBEDDING,)
    model_step = False
    Params = ClassifierConfig

    def __init__(self, model: Any, info: dict[str, Any]) -> None:
        self.model = model
        self.info = info

    @classmethod
    def train(cls, lake: Lake, config: ClassifierConfig | None = None) -> ClassifierQualityStep:
        """Fit on the labelled rows of the latest `records` that have an embedding.

        Raises:
            CurationError: no `embedding` column, too few usable labels, or a single class.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split

        cfg = config or ClassifierConfig()
        ds = lake.records()
        if EMBEDDING not in ds.schema.names:
            raise CurationError(
                "quality_classifier_v1 needs the `embedding` column; run `mixlake embed` first"
            )
        labels = current_labels(lake)
        x, y, ids = _labelled_vectors(ds, labels)
        if len(y) < cfg.min_labels:
            raise CurationError(
                f"quality_classifier_v1 needs at least {cfg.min_labels} labelled rows with "
                f"embeddings; found {len(y)} ({len(labels)} labelled in all). Add labels with "
                "`mixlake label` or embed the labelled rows"
            )
        counts = np.bincount(y, minlength=2)
        if counts.min() < 2:
            raise CurationError(
                f"quality_classifier_v1 needs both classes (at least 2 each); labels have "
                f"{counts[1]} good and {counts[0]} bad"
            )
        n_test = max(2, round(len(y) * cfg.held_out))
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=n_test, stratify=y, random_state=cfg.seed
        )
        held = LogisticRegression(C=cfg.c, max_iter=1000).fit(x_tr, y_tr)
        accuracy = float(held.score(x_te, y_te))
        model = LogisticRegression(C=cfg.c, max_iter=1000).fit(x, y)
        digest = hashlib.blake2b(
            "\n".join(
                f"{i}:{label}" for i, label in sorted(zip(ids, y.tolist(), strict=True))
            ).encode(),
            digest_size=8,
        ).hexdigest()
        info = {
            "labels": len(y),
            "good": int(counts[1]),
            "bad": int(counts[0]),
            "labels_digest": digest,
            "held_out": len(y_te),
            "held_out_accuracy": round(accuracy, 4),
            "embedding_dim": int(x.shape[1]),
            "embedding_step": _embedding_step(ds.schema.field(EMBEDDING)),
            "seed": cfg.seed,
            "c": cfg.c,
        }
        return cls(model, info)

    @classmethod
    def run(
        cls,
        lake: Lake,
        params: ClassifierConfig,
        *,
        where: str | None = None,
        replace: bool = False,
        progress: RowProgress | None = None,
    ) -> ClassifierReport:
        """Train on the labels, then score (`score_with_classifier`; the registry's run)."""
        step, report = score_with_classifier(
            lake, params, where=where, replace=replace, progress=progress
        )
        return ClassifierReport(report, step.info)

    @property
    def held_out_accuracy(self) -> float:
        """Accuracy on the held-out labels."""
        return float(self.info["held_out_accuracy"])

    def params(self) -> dict[str, Any]:
        """Training facts: label counts and digest, held-out accuracy, embedding, seed."""
        return dict(self.info)

    def output_schema(self) -> pa.Schema:
        """P(good) as float32."""
        return pa.schema([pa.field(self.name, pa.float32())])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Score rows with P(good); rows without an embedding get null."""
        column = batch.column(EMBEDDING)
        valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
        scores = np.full(batch.num_rows, np.nan, dtype=np.float32)
        if valid.any():
            x = _matrix(column.filter(pa.array(valid)))
            scores[valid] = self.model.predict_proba(x)[:, 1]
        return pa.RecordBatch.from_arrays(
            [pa.array(scores, pa.float32(), mask=~valid)], schema=self.output_schema()
        )


@dataclass(frozen=True)
class ClassifierReport:
    """What a classifier run did: the step report and the training facts (`info`)."""

    step: StepReport
    info: dict[str, Any]


def _labelled_vectors(
    ds: lance.LanceDataset, labels: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not labels:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), []
    ids = pa.array(sorted(labels), pa.string())
    # The id filter is pushed into Lance; null vectors are dropped in Arrow (substrait
    # filters cannot name a vector column).
    table = ds.to_table(columns=["id", EMBEDDING], filter=pc.field("id").isin(ids))
    table = table.filter(pc.is_valid(table.column(EMBEDDING))).sort_by("id")
    got = table.column("id").to_pylist()
    if not got:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), []
    x = _matrix(table.column(EMBEDDING).combine_chunks())
    y = np.array([labels[i] for i in got], dtype=np.int64)
    return x, y, got


def _matrix(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_fixed_size_list(column.type):
        flat: np.ndarray = column.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(column), column.type.list_size).astype(np.float32)
    return np.array(column.to_pylist(), dtype=np.float32)


def _embedding_step(field: pa.Field) -> str:
    meta: dict[bytes, bytes] = field.metadata or {}
    return meta.get(b"mixlake.step", b"?").decode()


def score_with_classifier(
    lake: Lake,
    config: ClassifierConfig | None = None,
    *,
    where: str | None = None,
    replace: bool = False,
    progress: RowProgress | None = None,
) -> tuple[ClassifierQualityStep, StepReport]:
    """Train on the labels, then score every row that has an embedding (and matches `where`).

    Rows without an embedding are left null, so a later run after `mixlake embed` fills them.

    Raises:
        CurationError: see `ClassifierQualityStep.train` and `apply`.
    """
    step = ClassifierQualityStep.train(lake, config)
    has_vector = f"{identifier(EMBEDDING)} IS NOT NULL"
    report = apply(
        step,
        lake,
        where=f"({where}) AND {has_vector}" if where else has_vector,
        replace=replace,
        progress=progress,
    )
    return step, report
