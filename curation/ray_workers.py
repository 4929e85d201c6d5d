"""What `RayEngine` (curation.ray_engine) runs on Ray workers, and how steps travel there.

The driver side (choosing fragments, waiting, retries, checkpoints) is in `ray_engine`;
this module is the worker side: one fragment's `merge_columns` (as a task, or on a
`StepActor` that holds a model step and its loaded model), a mapper and a reducer of
`map_reduce`, and one input file's parsing for a distributed ingest. `shippable` and
`register_serializers` say how a step crosses to a worker: without its lazily loaded model,
and a loaded embedder as (name, device) so each worker loads its own.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from lance.schema import LanceSchema

from curation.engine import FragmentJob, Mapper, Reducer, Source, fragment_rows
from curation.errors import CurationError
from curation.ingest.intake import Intake
from curation.steps.columns import _BatchCache


def merge_fragment(
    source: Source, job: FragmentJob, fid: int, read: list[str], batch_size: int
) -> tuple[bytes, LanceSchema]:
    """One fragment's new columns (a Ray task): its metadata as JSON and the schema."""
    fragment = source.open().get_fragment(fid)
    if fragment is None:
        raise CurationError(f"fragment {fid} is gone from {source.uri}; rerun the step")
    probe_answering = _BatchCache(None, fid, job.compute, job.write_schema, lambda rows: None)
    meta, schema = fragment.merge_columns(probe_answering, columns=read, batch_size=batch_size)
    return orjson.dumps(meta.to_json()), schema


class StepActor:
    """Holds one step (and so its loaded model) for every fragment it is given."""

    def __init__(self, job: FragmentJob) -> None:
        self.job = job

    def run(
        self, source: Source, fid: int, read: list[str], batch_size: int
    ) -> tuple[bytes, LanceSchema]:
        """One fragment's new columns with the held step (see `merge_fragment`)."""
        return merge_fragment(source, self.job, fid, read, batch_size)


def map_fragment(
    source: Source, fid: int, columns: list[str], where: str | None, mapper: Mapper, parts: int
) -> Any:
    """One fragment's mapper output (a task with one return per partition)."""
    out = mapper(fragment_rows(source.open(), fid, columns, where), parts)
    return tuple(out) if parts > 1 else out[0]


def reduce_partition(reducer: Reducer, *tables: pa.Table) -> pa.Table:
    """One partition's result from every mapper's output for it (a task)."""
    return reducer(list(tables))


class _CollectingIntake(Intake):
    """An `Intake` on a worker: rejects are handed back to the driver, never written."""

    kept: list[dict[str, Any]]

    def finish(self) -> None:
        self.kept = [*getattr(self, "kept", []), *self.rejects]
        self.rejects.clear()


def read_file(path: Path, fmt: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One input file's core tables with their ids and keys, counts and rejects (a task)."""
    from curation.ingest.bulk_ids import canonical, hash_forms

    intake = _CollectingIntake(
        None,  # type: ignore[arg-type]  # a worker never writes to the lake
        settings["batch"],
        settings["source"],
        mapping=settings["mapping"],
        kind=settings["kind"],
        on_error=settings["on_error"],
        batch_rows=settings["batch_rows"],
        progress=None,
        now=settings["now"],
        split=settings["split"],
    )
    tables = []
    for core in intake.cores(path, fmt):
        ids, keys = hash_forms(canonical(core))
        tables.append((core, ids, keys))
    intake.finish()
    return {
        "tables": tables,
        "rows_read": intake.rows_read,
        "rejected": intake.rejected,
        "reasons": dict(intake.reject_reasons),
        "rejects": intake.kept,
    }


def shippable(job: FragmentJob) -> FragmentJob:
    """`job` with its step's lazily loaded model dropped: each worker loads its own."""
    step = copy.copy(job.step)
    for attribute in ("_model", "_tokenizer"):
        if getattr(step, attribute, None) is not None:
            setattr(step, attribute, None)
    return FragmentJob(step, job.out_schema, job.write_schema, job.wanted)


def register_serializers(ray: Any) -> None:
    """Ship a loaded sentence-transformers embedder as (name, device): workers reload it."""
    from curation.steps.embed import SentenceEmbedder

    ray.util.register_serializer(
        SentenceEmbedder, serializer=_embedder_ref, deserializer=_embedder_from_ref
    )


def _embedder_ref(embedder: Any) -> tuple[str, str]:
    return embedder.name, embedder.model.device.type


def _embedder_from_ref(ref: tuple[str, str]) -> Any:
    from curation.steps.embed import load_embedder

    return load_embedder(ref[0], ref[1])
