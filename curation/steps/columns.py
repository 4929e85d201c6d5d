"""Writing step columns as one uncommitted Lance `Merge`, fragment by fragment, resumably.

`apply` computes a step's columns with `LanceFragment.merge_columns` on every fragment (the
same per-fragment shape lance-ray distributes), keeps each finished fragment's metadata in a
checkpoint folder, and commits all of them as one `Merge` carrying the journal entry. A crash
or Ctrl-C commits nothing; rerunning the same step on the same version reuses the finished
fragments. `--replace` computes the new columns under temporary names and the same `Merge`
drops the old fields and renames the new ones, so replacing is one commit too (Lance's own
`drop_columns` + `add_columns` would be two, with a version in between that has neither).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import lance
import orjson
import pyarrow as pa
from lance.fragment import FragmentMetadata
from lance.schema import LanceSchema

from curation.commit import Entry
from curation.errors import CurationError, one_line
from curation.faults import crash_point
from curation.lake import Lake

TEMP_PREFIX = "__mixlake_new__"
TOMBSTONE = -2
"""Lance's marker for a field id that a data file still holds but the schema dropped."""

Udf = Callable[[pa.RecordBatch], pa.RecordBatch]


def merge_fragments(
    ds: lance.LanceDataset,
    udf: Udf,
    read_columns: list[str],
    batch_size: int,
    checkpoint: Path | None,
    output: pa.Schema,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    skipped: Callable[[int], None] = lambda rows: None,
) -> tuple[list[FragmentMetadata], LanceSchema | None, bool]:
    """Run `udf` over every fragment; return the new fragments, their schema, and resumed.

    Finished fragments are saved under `checkpoint` (when given) and reused on a rerun;
    `skipped` is told how many rows came from the checkpoint instead of `udf`. `output` is
    what `udf` returns (Lance first calls a UDF on one row to learn it; mixlake answers
    that probe with nulls, so a model step never runs for it).
    """
    done = _load(checkpoint)
    resumed = bool(done) or _has_batches(checkpoint)
    schema = _load_schema(checkpoint) if done else None
    out: list[FragmentMetadata] = []
    for fragment in ds.get_fragments():
        fid = int(fragment.fragment_id)
        if fid in done:
            out.append(done[fid])
            skipped(int(done[fid].physical_rows))
            continue
        if should_stop():
            raise KeyboardInterrupt
        cached = _BatchCache(checkpoint, fid, udf, output, skipped)
        failure: list[BaseException] = []

        def guarded(
            batch: pa.RecordBatch,
            cached: _BatchCache = cached,
            failure: list[BaseException] = failure,
        ) -> pa.RecordBatch:
            try:
                return cached(batch)
            except BaseException as e:  # re-raised as itself below, not as Lance's wrapper
                failure.append(e)
                raise

        try:
            meta, schema = fragment.merge_columns(
                guarded, columns=read_columns, batch_size=batch_size
            )
        except (OSError, ValueError, RuntimeError):
            if failure:
                raise failure[0] from None
            raise
        out.append(meta)
        _save(checkpoint, fid, meta, schema)
        cached.clear()
        crash_point("step:fragment-done")
    return out, schema, resumed


class _BatchCache:
    """Each computed batch of a fragment, kept (Arrow IPC) until the fragment is done.

    A crash mid-fragment loses at most the batch in flight.
    """

    def __init__(
        self,
        checkpoint: Path | None,
        fid: int,
        udf: Udf,
        output: pa.Schema,
        skipped: Callable[[int], None],
    ) -> None:
        self.checkpoint, self.fid, self.udf, self.output = checkpoint, fid, udf, output
        self.skipped, self.calls = skipped, 0

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.calls += 1
        if self.calls == 1:  # Lance's schema probe (the fragment's first row, again later)
            return pa.RecordBatch.from_arrays(
                [pa.nulls(batch.num_rows, f.type) for f in self.output], schema=self.output
            )
        if self.checkpoint is None:
            return self.udf(batch)
        key = hashlib.blake2b(digest_size=8)
        for chunk in batch.column("id").buffers():
            if chunk is not None:
                key.update(chunk)
        path = self.checkpoint / f"batch-{self.fid}-{key.hexdigest()}.arrow"
        if path.exists():
            with pa.ipc.open_file(path) as reader:
                kept = reader.get_batch(0)
            if kept.num_rows == batch.num_rows:
                self.skipped(batch.num_rows)
                return kept
        out = self.udf(batch)
        self.checkpoint.mkdir(parents=True, exist_ok=True)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, out.schema) as writer:
            writer.write_batch(out)
        _atomic_write(path, sink.getvalue().to_pybytes())
        crash_point("step:batch-done")
        return out

    def clear(self) -> None:
        if self.checkpoint is not None:
            for path in self.checkpoint.glob(f"batch-{self.fid}-*.arrow"):
                path.unlink(missing_ok=True)


def _has_batches(checkpoint: Path | None) -> bool:
    return checkpoint is not None and any(checkpoint.glob("batch-*.arrow"))


def replacing_schema(
    merged: LanceSchema, drop: Iterable[str], rename: dict[str, str]
) -> tuple[LanceSchema, set[int]]:
    """`merged` without the fields named in `drop` (and their children), renamed by `rename`.

    Returns the schema and the dropped field ids (top-level fields only are renamed).
    """
    reduced = cast(tuple[Any, ...], merged.__reduce__()[1])  # (metadata JSON, *Field protobufs)
    metadata_json: str = reduced[0]
    protos: list[bytes] = list(reduced[1:])
    parsed = [(_fields(p), p) for p in protos]
    drop_names = set(drop)
    dropped: set[int] = set()
    for fields, _ in parsed:
        if _int(fields, 4) == -1 and _str(fields, 2) in drop_names:
            dropped.add(_int(fields, 3))
    grew = True
    while grew:  # children of dropped fields go too
        grew = False
        for fields, _ in parsed:
            fid, parent = _int(fields, 3), _int(fields, 4)
            if parent in dropped and fid not in dropped:
                dropped.add(fid)
                grew = True
    kept = []
    for fields, raw in parsed:
        if _int(fields, 3) in dropped:
            continue
        name = _str(fields, 2)
        if _int(fields, 4) == -1 and name in rename:
            raw = _with_name(raw, rename[name])
        kept.append(raw)
    return LanceSchema._from_protos(metadata_json, *kept), dropped


def without_fields(fragments: list[FragmentMetadata], dropped: set[int]) -> list[FragmentMetadata]:
    """Fragments whose data files no longer serve `dropped` field ids.

    A file holding only dropped fields leaves the fragment; in a file that also holds kept
    fields the dropped ids become tombstones, as Lance's own drop does.
    """
    if not dropped:
        return fragments
    out = []
    for meta in fragments:
        data = orjson.loads(orjson.dumps(meta.to_json()))
        files = []
        for f in data["files"]:
            fields = list(f["fields"])
            if all(x in dropped or x == TOMBSTONE for x in fields):
                continue
            f["fields"] = [TOMBSTONE if x in dropped else x for x in fields]
            files.append(f)
        data["files"] = files
        out.append(FragmentMetadata.from_json(orjson.dumps(data).decode()))
    return out


def write_by_id(
    lake: Lake,
    ds: lance.LanceDataset,
    rows: pa.RecordBatchReader | pa.Table,
    entry: Entry,
    *,
    what: str,
) -> int:
    """Set existing columns of the rows named by `id` (one Lance merge-insert, one commit).

    The sparse write by id that step fills, eval results and training losses share. Call it
    under the writer lock with `ds` at the latest version.
    """
    try:
        tx, _ = ds.merge_insert("id").when_matched_update_all().execute_uncommitted(rows)
    except OSError as e:
        raise CurationError(f"{what} failed: {one_line(e)}") from e
    crash_point("write-by-id:before-commit")
    version = lake.commit("records", tx.operation, int(ds.version), entry)
    crash_point("write-by-id:after-commit")
    return version


@contextmanager
def interrupts_deferred() -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C into a flag the step checks between batches.

    A KeyboardInterrupt raised while Lance's Rust code is calling back into the step aborts
    the process (SIGABRT, no message); a flag checked in Python raises it where it is safe.
    """
    hit = [False]
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: Any) -> None:
        if hit[0]:  # a second Ctrl-C: the user insists
            raise KeyboardInterrupt
        hit[0] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: hit[0]
    finally:
        signal.signal(signal.SIGINT, previous)
    if hit[0]:
        raise KeyboardInterrupt


def remove_checkpoint(checkpoint: Path | None) -> None:
    """Forget a checkpoint once its columns are committed."""
    if checkpoint is not None:
        shutil.rmtree(checkpoint, ignore_errors=True)


# ----------------------------------------------------------------------- checkpoint files
def _save(checkpoint: Path | None, fid: int, meta: FragmentMetadata, schema: Any) -> None:
    if checkpoint is None:
        return
    checkpoint.mkdir(parents=True, exist_ok=True)
    _atomic_write(checkpoint / "schema.pickle", pickle.dumps(schema))
    _atomic_write(checkpoint / f"fragment-{fid}.json", orjson.dumps(meta.to_json()))


def _load(checkpoint: Path | None) -> dict[int, FragmentMetadata]:
    if checkpoint is None or not (checkpoint / "schema.pickle").exists():
        return {}
    out = {}
    for path in checkpoint.glob("fragment-*.json"):
        fid = int(path.stem.removeprefix("fragment-"))
        out[fid] = FragmentMetadata.from_json(path.read_text())
    return out


def _load_schema(checkpoint: Path | None) -> LanceSchema | None:
    if checkpoint is None:
        return None
    try:
        schema = pickle.loads((checkpoint / "schema.pickle").read_bytes())
    except (OSError, pickle.UnpicklingError) as e:
        raise CurationError(f"step checkpoint {checkpoint} is unreadable ({e}); delete it") from e
    return schema if isinstance(schema, LanceSchema) else None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ------------------------------------------- Lance's Field protobuf: just what renaming needs
def _fields(raw: bytes) -> dict[int, list[Any]]:
    """Top-level protobuf fields: number → values (ints for varints, bytes otherwise)."""
    out: dict[int, list[Any]] = {}
    i = 0
    while i < len(raw):
        tag, i = _varint(raw, i)
        number, wire = tag >> 3, tag & 7
        value: Any
        if wire == 0:
            value, i = _varint(raw, i)
        elif wire == 2:
            size, i = _varint(raw, i)
            value, i = raw[i : i + size], i + size
        elif wire == 1:
            value, i = raw[i : i + 8], i + 8
        elif wire == 5:
            value, i = raw[i : i + 4], i + 4
        else:
            raise CurationError(f"unexpected protobuf wire type {wire} in a Lance field")
        out.setdefault(number, []).append(value)
    return out


def _with_name(raw: bytes, name: str) -> bytes:
    """The Field message with field 2 (`name`) replaced."""
    out, i = bytearray(), 0
    encoded = name.encode()
    while i < len(raw):
        start = i
        tag, i = _varint(raw, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, i = _varint(raw, i)
        elif wire == 2:
            size, i = _varint(raw, i)
            i += size
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        if number == 2 and wire == 2:
            out += _encode_varint(tag) + _encode_varint(len(encoded)) + encoded
        else:
            out += raw[start:i]
    return bytes(out)


def _int(fields: dict[int, list[Any]], number: int) -> int:
    value = int(fields.get(number, [0])[0])
    return value - (1 << 64) if value >= 1 << 63 else value  # int32 -1 is a 10-byte varint


def _str(fields: dict[int, list[Any]], number: int) -> str:
    return bytes(fields.get(number, [b""])[0]).decode()


def _varint(raw: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = raw[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
