"""Bring a run trained without the lake (from an exported mix file) into a lake afterwards.

On a GPU box without the lake, `train` records the run only in its folder: `run.json`, the
exposure ledger (`exposures.jsonl`) and the per-row losses (`row_losses.json`). `import_run`
writes them to a lake as a run trained from the lake mix would have left them: the run's
`exposures`, the `train_loss_<run>` column, the pin on the records version it trained on and,
last, its `runs` row (so an import cut short is simply done again).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from curation import CurationError, Lake
from training.errors import TrainingError
from training.run_folder import (
    ADAPTER,
    EXPOSURES_FILE,
    final_epoch_losses,
    load_exposures,
    load_row_losses,
    read_run_file,
)
from training.run_record import RunRecord
from training.runs import (
    EXPOSURES_SCHEMA,
    Run,
    list_runs,
    save_run,
    write_exposures,
    write_train_loss,
)

SAMPLE = 5


@dataclass(frozen=True)
class ImportResult:
    """What `import_run` did."""

    run_id: str
    status: str
    imported: bool
    """False when the lake already held the run as its folder records it: nothing was written."""
    message: str
    """One line saying what happened, for people."""
    exposures: int = 0
    record_ids: int = 0
    """Distinct record ids the run trained on."""
    missing_ids: int = 0
    """Of those, the ids not in the lake's `records`: their exposures are kept, they get no loss."""
    missing_sample: tuple[str, ...] = ()
    train_loss_column: str | None = None
    pinned_version: int | None = None
    notes: tuple[str, ...] = ()


def import_run(lake: Lake, run_dir: str | Path) -> ImportResult:
    """Register a run trained from an exported mix file in `lake`, with its exposures and losses.

    Importing a run the lake already holds (imported before, or trained with the lake at
    hand) is a no-op; a run imported while unfinished is updated once its folder says more.

    Args:
        lake: the lake the mix was exported from.
        run_dir: the run's folder, `output_dir/<run_id>` (copied back from the GPU box).

    Returns:
        What was written, with the count of record ids the lake does not hold.

    Raises:
        TrainingError: not a run folder, a run still running or trained from a lake mix, a
            finished run without its exposure ledger, or a lake holding none of its rows.
    """
    folder = Path(run_dir)
    record = read_run_file(folder)
    run = _run_from_file(record, folder)
    if not record.config.get("data_file"):
        raise TrainingError(
            f"{folder}: run {run.run_id} trained from mix {run.mix!r} in the lake at "
            f"{record.lake}, where it is registered; only runs from an exported file import"
        )
    if run.status == "running":
        raise TrainingError(
            f"{folder}: run {run.run_id} is still running (or was killed before it could say "
            "so); let it finish, or resume it with `mixlake train CONFIG --resume`, then import"
        )
    held = next((r for r in list_runs(lake) if r.run_id == run.run_id), None)
    if held is not None and (held.status, held.finished_at) == (run.status, run.finished_at):
        return ImportResult(
            run.run_id,
            run.status,
            imported=False,
            message=f"run {run.run_id} ({run.status}) is already in the lake at {lake.uri}: "
            "nothing imported",
        )
    rows = load_exposures(folder)
    if rows is None:
        if run.status == "finished":
            raise TrainingError(
                f"{folder}: no {EXPOSURES_FILE}, so which rows run {run.run_id} saw is unknown "
                "(the folder predates runs keeping their ledger, or the file was not copied)"
            )
        rows = EXPOSURES_SCHEMA.empty_table().drop_columns(["run_id"])
    ids = pc.unique(rows.column("record_id").combine_chunks())
    missing = _not_in_records(lake, ids)
    if len(ids) and len(missing) == len(ids):
        raise TrainingError(
            f"none of the {len(ids)} record ids run {run.run_id} trained on are in the lake at "
            f"{lake.uri}; import it into the lake its mix was exported from"
        )
    rows, notes = _mix_positions(lake, run, record.source.exported_split, rows)
    pinned, note = _pin(lake, run)
    notes += note
    ledger = rows.add_column(0, "run_id", pa.array([run.run_id] * rows.num_rows, pa.string()))
    written = write_exposures(lake, run.run_id, ledger, 0) if rows.num_rows or held else 0
    column = _write_losses(lake, run, folder) if run.status == "finished" else None
    save_run(lake, run)
    verb = "updated" if held is not None else "imported"
    return ImportResult(
        run.run_id,
        run.status,
        imported=True,
        message=f"{verb} run {run.run_id} ({run.status}) into the lake at {lake.uri}",
        exposures=written,
        record_ids=len(ids),
        missing_ids=len(missing),
        missing_sample=tuple(missing[:SAMPLE]),
        train_loss_column=column,
        pinned_version=pinned,
        notes=tuple(notes),
    )


def _run_from_file(record: RunRecord, folder: Path) -> Run:
    """The `runs` row of a recorded run; its adapter is the copy brought back with the folder."""
    local = folder / ADAPTER
    if record.adapter_path and (local / "adapter_config.json").is_file():
        return record.to_run(adapter_path=str(local.resolve()))
    return record.to_run()


def _not_in_records(lake: Lake, ids: pa.Array) -> list[str]:
    if len(ids) == 0:
        return []
    known = lake.records().to_table(columns=["id"]).column("id").combine_chunks()
    absent = ids.filter(pc.invert(pc.is_in(ids, value_set=known)))
    return [str(i) for i in absent.to_pylist()]


def _mix_positions(
    lake: Lake, run: Run, exported_split: str | None, rows: pa.Table
) -> tuple[pa.Table, list[str]]:
    """Mix positions for the exposures of a file that held one split (it numbers that split)."""
    if exported_split is None or rows.num_rows == 0:
        return rows, []
    from queries import QueryError, open_mix

    try:
        mix = open_mix(lake, str(run.mix), run.mix_version)
    except QueryError:
        mix = None
    if mix is None or mix.checksum != run.mix_checksum or exported_split not in mix.splits:
        return rows, [
            f"positions count the rows of split {exported_split!r} of the exported file: mix "
            f"{run.mix}@{run.mix_version} with checksum {str(run.mix_checksum)[:12]} is not "
            "in this lake to map them to mix positions"
        ]
    split_rows = mix.rows(exported_split)
    index = rows.column("position").combine_chunks()
    if (
        pc.max(index).as_py() >= split_rows.num_rows
        or not pc.all(
            pc.equal(pc.take(split_rows.column("id"), index), rows.column("record_id"))
        ).as_py()
    ):
        raise TrainingError(
            f"run {run.run_id}: its exposures do not follow split {exported_split!r} of mix "
            f"{mix.ref} in this lake (same checksum, other rows?); nothing imported"
        )
    positions = pc.take(split_rows.column("position"), index)
    return rows.set_column(rows.schema.get_field_index("position"), "position", positions), []


def _pin(lake: Lake, run: Run) -> tuple[int | None, list[str]]:
    if run.records_version is None:
        return None, []
    version = int(run.records_version)
    known = {int(v["version"]) for v in lake.dataset("records").versions()}
    if version not in known:
        return None, [
            f"records version {version} the run trained on is not in this lake: not pinned"
        ]
    lake.pin(f"run-{run.run_id}", version)
    return version, []


def _write_losses(lake: Lake, run: Run, folder: Path) -> str | None:
    config = yaml.safe_load(run.config) if run.config else None
    losses = final_epoch_losses(
        load_row_losses(folder), config if isinstance(config, dict) else None
    )
    if not losses:
        return None
    try:
        write_train_loss(lake, run.run_id, losses)
    except CurationError as e:
        raise TrainingError(f"run {run.run_id}: cannot write its per-row loss ({e})") from None
    return f"train_loss_{run.run_id}"
