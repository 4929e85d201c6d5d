"""Labels and quality_classifier_v1 on fake hash embeddings (no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from curation import CurationError, Lake
from curation.labels import add_labels, current_labels, ids_from_sql, read_label_csv
from curation.steps import apply, column_provenance
from curation.steps.classifier import ClassifierConfig, ClassifierQualityStep, score_with_classifier
from curation.testing import FakeEmbedder, make_lake

GOOD = "a clear helpful answer that explains the water cycle step by step with care {i}"
BAD = "buy cheap pills now click here spam offer winner casino {i}"


class FakeEmbedStep:
    """Writes `embedding` with the hash embedder, like the real embed step would."""

    name = "fake_embed_v1"
    input_columns: tuple[str, ...] = ("text",)

    def __init__(self, dim: int = 32) -> None:
        self.embedder = FakeEmbedder(dim)

    def params(self) -> dict:
        return {"model": self.embedder.name}

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field("embedding", pa.list_(pa.float32(), self.embedder.dim))])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        vectors = self.embedder.encode(batch.column("text").to_pylist())
        flat = pa.array(vectors.reshape(-1), pa.float32())
        column = pa.FixedSizeListArray.from_arrays(flat, self.embedder.dim)
        return pa.RecordBatch.from_arrays([column], schema=self.output_schema())


@pytest.fixture
def labelled(tmp_path: Path) -> Lake:
    rows = [{"text": GOOD.format(i=i)} for i in range(30)]
    rows += [{"text": BAD.format(i=i)} for i in range(30)]
    lake = make_lake(tmp_path, {"web": rows})
    apply(FakeEmbedStep(), lake, where="text NOT LIKE '%29'")  # two rows stay unembedded
    return lake


def _label_by_sql(lake: Lake, pattern: str, label: int, limit: int = 12) -> None:
    ids = ids_from_sql(lake, f"SELECT id FROM records WHERE text LIKE '{pattern}' LIMIT {limit}")
    add_labels(lake, [(i, label) for i in ids], "test")


def test_labels_append_journal_and_relabel(labelled: Lake, tmp_path: Path) -> None:
    _label_by_sql(labelled, "a clear%", 1, 3)
    ids = list(current_labels(labelled))
    csv = tmp_path / "labels.csv"
    csv.write_text("id,label\n" + f"{ids[0]},bad\n")
    report = add_labels(labelled, read_label_csv(csv), "csv")
    assert (report.rows, report.bad, report.total_labelled) == (1, 1, 3)
    assert current_labels(labelled)[ids[0]] == 0  # the latest label wins
    journal = labelled.journal_entries("labels")
    assert [j["operation"] for j in journal.values()] == ["label", "label"]


def test_bad_label_input_is_refused_and_writes_nothing(labelled: Lake, tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("id,label\nabc,maybe\n")
    with pytest.raises(CurationError, match=r"bad.csv:2: label 'maybe'"):
        read_label_csv(csv)
    with pytest.raises(CurationError, match="not in records"):
        add_labels(labelled, [("no-such-id", 1)], "test")
    one = ids_from_sql(labelled, "SELECT id FROM records LIMIT 1")[0]
    with pytest.raises(CurationError, match="both good and bad"):
        add_labels(labelled, [(one, 1), (one, 0)], "test")
    with pytest.raises(CurationError, match="`id` column"):
        ids_from_sql(labelled, "SELECT text FROM records")
    assert not labelled.has_table("labels")


def test_classifier_trains_reports_accuracy_and_scores(labelled: Lake) -> None:
    _label_by_sql(labelled, "a clear%", 1)
    _label_by_sql(labelled, "buy cheap%", 0)
    step, report = score_with_classifier(labelled)
    assert report.rows_computed == 58  # rows with an embedding
    assert step.held_out_accuracy == 1.0 and step.info["held_out"] == 6
    prov = column_provenance(labelled.records().schema.field("quality_classifier_v1"))
    assert prov["params"]["held_out_accuracy"] == 1.0
    assert prov["params"]["embedding_step"] == "fake_embed_v1"
    rows = labelled.sql("SELECT text, quality_classifier_v1 AS p FROM records").to_pylist()
    good = [r["p"] for r in rows if r["text"].startswith("a clear") and r["p"] is not None]
    bad = [r["p"] for r in rows if r["text"].startswith("buy") and r["p"] is not None]
    assert min(good) > 0.5 > max(bad)
    assert sum(r["p"] is None for r in rows) == 2
    again = score_with_classifier(labelled)[1]
    assert again.no_op


def test_new_labels_need_replace(labelled: Lake) -> None:
    _label_by_sql(labelled, "a clear%", 1)
    _label_by_sql(labelled, "buy cheap%", 0)
    score_with_classifier(labelled)
    _label_by_sql(labelled, "a clear%2%", 1)
    with pytest.raises(CurationError, match="--replace"):
        score_with_classifier(labelled)
    step, report = score_with_classifier(labelled, replace=True)
    assert report.version is not None and step.info["labels"] > 24


def test_classifier_errors(tmp_path: Path, labelled: Lake) -> None:
    bare = make_lake(tmp_path / "bare", {"web": [{"text": "hello there"}]})
    with pytest.raises(CurationError, match="mixlake embed"):
        ClassifierQualityStep.train(bare)
    _label_by_sql(labelled, "a clear%", 1, 3)
    with pytest.raises(CurationError, match="at least 10 labelled"):
        ClassifierQualityStep.train(labelled)
    _label_by_sql(labelled, "a clear%", 1, 20)
    with pytest.raises(CurationError, match="both classes"):
        ClassifierQualityStep.train(labelled)
    with pytest.raises(CurationError, match="held_out"):
        ClassifierConfig(held_out=1.5)


def test_scores_are_probabilities(labelled: Lake) -> None:
    _label_by_sql(labelled, "a clear%", 1)
    _label_by_sql(labelled, "buy cheap%", 0)
    step = ClassifierQualityStep.train(labelled)
    batch = labelled.records().to_table(columns=["embedding"]).to_batches()[0]
    scores = step(batch).column(0).to_numpy(zero_copy_only=False)
    finite = scores[~np.isnan(scores)]
    assert ((finite >= 0) & (finite <= 1)).all()
