"""`RayEngine`: a step's per-fragment work as Ray tasks (or actors for model steps).

The unit of work is what lance-ray's `add_columns` distributes (`lance_ray.io._handle_fragment`):
one `LanceFragment.merge_columns` per fragment, run where the fragment is read, returning
the fragment's new metadata and the merged `LanceSchema`. lance-ray then commits itself;
mixlake does not let it: the driver (`apply`) saves each returned fragment in the step's
checkpoint and commits all of them with its own commit path (one `Merge` carrying the journal
entry, under the writer lock). So a worker killed mid-step costs that fragment's retry
(`max_retries`), or the step fails with one line and the lake is unchanged.

Model steps (a tokenizer, an embedder, an LLM: steps declaring `model_step = True`, see
`curation.engine.is_model_step`) run on actors that receive the step once and load its
model once; `gpus_per_worker` becomes each actor's `num_gpus`. Other steps are
plain tasks. `map_reduce` runs mappers as tasks with one return per hash partition and one
reduce task per partition: Ray's object store is the shuffle. What runs on the workers is in
`curation.ray_workers`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from lance.fragment import FragmentMetadata
from lance.schema import LanceSchema

from curation.engine import (
    ENGINES,
    Advance,
    Engine,
    FragmentJob,
    LocalEngine,
    Mapper,
    Reducer,
    Source,
    is_model_step,
)
from curation.errors import CurationError, one_line
from curation.ingest.intake import REJECTS_FLUSH, Intake
from curation.ray_workers import (
    StepActor,
    map_fragment,
    merge_fragment,
    read_file,
    reduce_partition,
    register_serializers,
    shippable,
)
from curation.steps.columns import _load, _load_schema, _save

__all__ = ["RayEngine", "is_model_step", "make_engine", "wait_for_cluster"]


def make_engine(
    name: str = "local", address: str | None = None, gpus_per_worker: float = 0
) -> Engine:
    """The engine a CLI names: `local`, or `ray` at `address` (default `RAY_ADDRESS`).

    Lives here rather than in curation.engine so that module never imports this one.

    Raises:
        CurationError: an unknown engine name, or `--gpus-per-worker` without ray.
    """
    if name not in ENGINES:
        raise CurationError(f"unknown --engine {name!r}; use local or ray")
    if name == "local":
        if gpus_per_worker:
            raise CurationError("--gpus-per-worker needs --engine ray")
        return LocalEngine()
    return RayEngine(
        address=address or os.environ.get("RAY_ADDRESS") or None, gpus_per_worker=gpus_per_worker
    )


class RayEngine:
    """Run steps on a Ray cluster.

    Args:
        address: the cluster (`ray://host:10001`, `host:6379`); None: `RAY_ADDRESS`, else a
            local Ray started for this process.
        num_workers: concurrent tasks/actors (default: the cluster's CPUs).
        gpus_per_worker: GPUs per model-step actor (`num_gpus`); 0 runs them on CPUs.
        max_retries: how often a fragment whose worker died is retried before the step fails.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_workers: int | None = None,
        gpus_per_worker: float = 0,
        max_retries: int = 3,
    ) -> None:
        if num_workers is not None and num_workers < 1:
            raise CurationError(f"num_workers must be ≥ 1, got {num_workers}")
        if gpus_per_worker < 0:
            raise CurationError(f"--gpus-per-worker must be ≥ 0, got {gpus_per_worker}")
        self.address, self.num_workers = address, num_workers
        self.gpus_per_worker, self.max_retries = gpus_per_worker, max_retries

    # ------------------------------------------------------------------ the cluster
    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise CurationError(
                "--engine ray needs ray: pip install 'mixlake[ray]' (ray[data], lance-ray)"
            ) from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = self.address or "a local Ray"
                raise CurationError(
                    f"cannot reach the Ray cluster at {where}: {one_line(e)}"
                ) from e
            register_serializers(ray)
        return ray

    def workers(self) -> int:
        """How many tasks or actors run at once."""
        ray = self._ray()
        return self.num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))

    # ------------------------------------------------------------------ step columns
    def merge_columns(
        self,
        source: Source,
        job: FragmentJob,
        read: list[str],
        batch_size: int,
        checkpoint: Path | None,
        *,
        should_stop: Callable[[], bool],
        advance: Advance,
    ) -> tuple[list[FragmentMetadata], LanceSchema | None, bool]:
        """Every fragment not in the checkpoint on a worker; the driver saves each result."""
        ray = self._ray()
        done = _load(checkpoint)
        schema = _load_schema(checkpoint) if done else None
        fragments = [int(f.fragment_id) for f in source.open().get_fragments()]
        for fid in fragments:
            if fid in done:
                advance(int(done[fid].physical_rows), False)
        todo = [fid for fid in fragments if fid not in done]
        results: dict[int, FragmentMetadata] = dict(done)
        if todo:
            light = shippable(job)
            shipped = ray.put(light)
            if is_model_step(job.step):
                # By value: an actor restarted after a crash must not depend on a ref.
                calls, actors = self._on_actors(ray, light, source, todo, read, batch_size)
            else:
                task = ray.remote(merge_fragment).options(max_retries=self.max_retries)
                calls = {task.remote(source, shipped, fid, read, batch_size): fid for fid in todo}
                actors = []
            try:
                for fid, meta, fragment_schema in self._gather(ray, calls, should_stop, job):
                    results[fid] = meta
                    schema = fragment_schema
                    _save(checkpoint, fid, meta, fragment_schema)
                    advance(int(meta.physical_rows), True)
            finally:
                for actor in actors:
                    ray.kill(actor)
        return [results[fid] for fid in fragments], schema, bool(done)

    def _on_actors(
        self,
        ray: Any,
        shipped: Any,
        source: Source,
        todo: list[int],
        read: list[str],
        batch_size: int,
    ) -> tuple[dict[Any, int], list[Any]]:
        actor_class = ray.remote(StepActor).options(
            num_cpus=1,
            num_gpus=self.gpus_per_worker,
            max_restarts=self.max_retries,
            max_task_retries=self.max_retries,
        )
        actors = [actor_class.remote(shipped) for _ in range(min(self.workers(), len(todo)))]
        calls = {
            actors[i % len(actors)].run.remote(source, fid, read, batch_size): fid
            for i, fid in enumerate(todo)
        }
        return calls, actors

    def _gather(
        self, ray: Any, calls: dict[Any, int], should_stop: Callable[[], bool], job: FragmentJob
    ) -> Any:
        pending = list(calls)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            if should_stop():
                for ref in pending:
                    try:
                        ray.cancel(ref, force=True)
                    except (ValueError, TypeError):  # actor tasks cannot be force-cancelled
                        ray.cancel(ref)
                raise KeyboardInterrupt
            for ref in ready:
                fid = calls[ref]
                meta_json, fragment_schema = self._get(ray, ref, f"step {job.step.name}", fid)
                yield fid, FragmentMetadata.from_json(meta_json), fragment_schema

    def _get(self, ray: Any, ref: Any, what: str, fid: int | None = None) -> Any:
        where = f" on fragment {fid}" if fid is not None else ""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, BaseException) else e
            if isinstance(cause, CurationError):
                raise CurationError(str(cause)) from None
            raise CurationError(f"{what} failed{where}: {one_line(cause)}") from None
        except ray.exceptions.RayError as e:
            raise CurationError(
                f"{what}: a Ray worker died{where} and {self.max_retries} retries did not help "
                f"({type(e).__name__}); nothing was committed"
            ) from None

    # ------------------------------------------------------------------ map / reduce
    def map_reduce(
        self,
        source: Source,
        columns: list[str],
        where: str | None,
        mapper: Mapper,
        reducer: Reducer,
    ) -> list[pa.Table]:
        """Mapper tasks (one per fragment, one return per partition), then reduce tasks."""
        ray = self._ray()
        partitions = self.workers()
        fragments = [int(f.fragment_id) for f in source.open().get_fragments()]
        if not fragments:
            return [reducer([])]
        map_task = ray.remote(map_fragment).options(
            num_returns=partitions, max_retries=self.max_retries
        )
        reduce_task = ray.remote(reduce_partition).options(max_retries=self.max_retries)
        shipped_mapper, shipped_reducer = ray.put(mapper), ray.put(reducer)
        outputs = []
        for fid in fragments:
            refs = map_task.remote(source, fid, columns, where, shipped_mapper, partitions)
            outputs.append(refs if partitions > 1 else [refs])
        reduced = [
            reduce_task.remote(shipped_reducer, *[out[p] for out in outputs])
            for p in range(partitions)
        ]
        return [self._get(ray, ref, "grouping rows") for ref in reduced]

    # ------------------------------------------------------------------ ingest
    def read_files(
        self, inputs: list[tuple[Path, str]], intake: Intake
    ) -> Iterator[tuple[pa.Table, pa.Array, np.ndarray]]:
        """Parse, normalise and hash each file in a Ray task; yield in input order.

        The driver's `intake` takes each file's row counts and rejects in that order, so a
        reject, a count and the first error (`on_error=fail`) are the local path's.
        """
        ray = self._ray()
        settings = {
            "batch": intake.batch,
            "source": intake.source,
            "mapping": intake.mapping,
            "kind": intake.kind,
            "on_error": intake.on_error,
            "batch_rows": intake.row_buffer,
            "now": intake.now,
            "split": intake.split,
        }
        task = ray.remote(read_file).options(max_retries=self.max_retries)
        window = 2 * self.workers()
        pending: list[tuple[Path, Any]] = []
        queue = list(inputs)
        while queue or pending:
            while queue and len(pending) < window:
                path, fmt = queue.pop(0)
                pending.append((path, task.remote(path, fmt, settings)))
            path, ref = pending.pop(0)
            result = self._get(ray, ref, f"ingest of {path}")
            intake.rows_read += result["rows_read"]
            intake.rejected += result["rejected"]
            intake.reject_reasons.update(result["reasons"])
            intake.rejects.extend(result["rejects"])
            if len(intake.rejects) >= REJECTS_FLUSH:
                intake.finish()
                intake.flushed = True
            if intake.progress:
                intake.progress(str(path), _size(path))
            yield from result["tables"]


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def wait_for_cluster(address: str, nodes: int, timeout: float = 60) -> None:
    """Block until `nodes` nodes are alive at `address` (for scripts that just started one)."""
    import ray

    ray.init(
        address=address, logging_level=logging.ERROR, log_to_driver=False, ignore_reinit_error=True
    )
    deadline = time.monotonic() + timeout
    while _alive_nodes(ray) < nodes:
        if time.monotonic() > deadline:
            raise CurationError(f"the Ray cluster at {address} has fewer than {nodes} nodes")
        time.sleep(0.2)


def _alive_nodes(ray: Any) -> int:
    """How many nodes of the connected Ray cluster are alive (`ray.nodes()` is untyped)."""
    listed: list[dict[str, Any]] = ray.nodes()
    return sum(1 for n in listed if n["Alive"])
