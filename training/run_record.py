"""`run.json`: the record a run keeps in its own folder, `output_dir/<run_id>/run.json`.

It holds the run as `runs` does (status, config, metrics, adapter, times), plus where its data
came from (`RunSource`: the mix, its checksum, the exported split), the lake it wrote to and
the processes it trained with (`world_size`). The trainer writes it when the run starts, fails
or finishes; `--resume`, `runs import` and evals read it. `RunRecord` is its one reader and
writer: a missing or malformed field is one `TrainingError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from training.errors import TrainingError
from training.runs import Run

if TYPE_CHECKING:
    from training.sources import SourceInfo

RUN_FILE = "run.json"
RUN_ID = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class RunSource:
    """Where a run's data came from."""

    mix: str | None
    mix_version: int | None = None
    checksum: str | None = None
    """Checksum of the mix's ordered id list (`--resume` refuses another)."""
    records_version: int | None = None
    origin: str | None = None
    """The lake and mix, or the exported file, the rows were read from."""
    exported_split: str | None = None
    """For an exported file of one split: that split (positions count its rows)."""

    @classmethod
    def of(cls, info: SourceInfo) -> RunSource:
        """The source of a run reading from `info` (an `ExampleSource`'s)."""
        return cls(
            info.mix,
            info.mix_version,
            info.checksum,
            info.records_version,
            info.origin,
            info.exported_split,
        )


@dataclass(frozen=True)
class RunRecord:
    """One run as its folder records it (`run.json`)."""

    run_id: str
    status: str
    """`running`, `finished`, `failed` or `interrupted`."""
    config: dict[str, Any]
    """The `TrainConfig` the run trained with, as a mapping."""
    source: RunSource
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    lake: str | None = None
    """The lake URI the run wrote to; None for a run from an exported file without one."""
    world_size: int = 1
    git_commit: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    best_metrics: dict[str, Any] = field(default_factory=dict)
    adapter_path: str | None = None

    @classmethod
    def of_run(
        cls, run: Run, source: SourceInfo, lake: str | None, world_size: int = 1
    ) -> RunRecord:
        """The record of `run` (as `runs` holds it), reading from `source`."""
        config = yaml.safe_load(run.config) if run.config else {}
        return cls(
            run_id=run.run_id,
            status=run.status,
            config=dict(config or {}),
            source=RunSource.of(source),
            started_at=run.started_at,
            finished_at=run.finished_at,
            lake=lake,
            world_size=world_size,
            git_commit=run.git_commit,
            metrics=dict(run.metrics),
            best_metrics=dict(run.best_metrics),
            adapter_path=run.adapter_path,
        )

    def to_run(self, adapter_path: str | None = None) -> Run:
        """The run as a `runs` row holds it (`adapter_path` replaces the recorded one)."""
        return Run(
            run_id=self.run_id,
            mix=self.source.mix,
            mix_version=self.source.mix_version,
            mix_checksum=self.source.checksum,
            records_version=self.source.records_version,
            config=yaml.safe_dump(self.config, sort_keys=False),
            git_commit=self.git_commit,
            status=self.status,
            metrics=dict(self.metrics),
            best_metrics=dict(self.best_metrics),
            adapter_path=adapter_path if adapter_path is not None else self.adapter_path,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (times as ISO 8601 text)."""
        data = dataclasses.asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data

    def to_json(self) -> str:
        """The text of `run.json` (indented for people; values no JSON holds as text)."""
        return json.dumps(self.to_dict(), indent=2, default=str)

    def write(self, run_dir: Path) -> Path:
        """Write (or rewrite) `run_dir/run.json`; returns its path."""
        path = run_dir / RUN_FILE
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: Any, where: str | Path) -> RunRecord:
        """A record from parsed `run.json` data.

        Raises:
            TrainingError: not a mapping, a field missing, or one of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise TrainingError(f"{where}: not a run record (not a JSON object)")
        absent = [
            k for k in ("run_id", "status", "config", "source", "started_at") if k not in data
        ]
        if absent:
            raise TrainingError(f"{where}: not a run record (missing {', '.join(absent)})")
        run_id = _field(data, "run_id", str, where)
        if not RUN_ID.match(run_id):
            raise TrainingError(f"{where}: bad run_id {run_id!r}")
        source = _field(data, "source", Mapping, where) or {}
        return cls(
            run_id=run_id,
            status=_field(data, "status", str, where),
            config=dict(_field(data, "config", Mapping, where) or {}),
            source=RunSource(
                mix=_field(source, "mix", str, where, optional=True),
                mix_version=_field(source, "mix_version", int, where, optional=True),
                checksum=_field(source, "checksum", str, where, optional=True),
                records_version=_field(source, "records_version", int, where, optional=True),
                origin=_field(source, "origin", str, where, optional=True),
                exported_split=_field(source, "exported_split", str, where, optional=True),
            ),
            started_at=_time(data, "started_at", where),
            finished_at=_time(data, "finished_at", where) if data.get("finished_at") else None,
            lake=_field(data, "lake", str, where, optional=True),
            world_size=_field(data, "world_size", int, where, optional=True) or 1,
            git_commit=_field(data, "git_commit", str, where, optional=True),
            metrics=dict(_field(data, "metrics", Mapping, where, optional=True) or {}),
            best_metrics=dict(_field(data, "best_metrics", Mapping, where, optional=True) or {}),
            adapter_path=_field(data, "adapter_path", str, where, optional=True),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> RunRecord:
        """Read a `run.json` (give the file or its run folder).

        Raises:
            TrainingError: no such folder or file, unreadable JSON, or a bad field.
        """
        p = Path(path)
        if p.is_dir():
            p = p / RUN_FILE
            if not p.is_file():
                raise TrainingError(
                    f"{p.parent}: not a run folder (no {RUN_FILE}; give output_dir/<run_id>)"
                )
        elif not (p.name == RUN_FILE and p.is_file()):
            raise TrainingError(f"{p}: no such run folder (give output_dir/<run_id>)")
        try:
            data = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TrainingError(f"{p}: cannot read the run record ({e})") from None
        return cls.from_dict(data, p)


def _field(
    data: Mapping[str, Any], key: str, kind: type, where: str | Path, optional: bool = False
) -> Any:
    value = data.get(key)
    if value is None and (optional or kind is Mapping):
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        want = {str: "text", int: "an integer", Mapping: "an object"}.get(kind, kind.__name__)
        raise TrainingError(f"{where}: run record field {key!r} must be {want}, got {value!r}")
    return value


def _time(data: Mapping[str, Any], key: str, where: str | Path) -> dt.datetime:
    text = _field(data, key, str, where)
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise TrainingError(
            f"{where}: run record field {key!r} must be an ISO 8601 time, got {text!r}"
        ) from None
