"""The lake: a LanceDB database holding the versioned `records` table and its companions."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lance
import pyarrow as pa

from curation.commit import Entry, Notice, writer_lock
from curation.commit import commit as commit_operation
from curation.errors import CurationError
from curation.journal import as_datetime, version_entries
from curation.schema import JOURNAL_SCHEMA, RECORDS_SCHEMA
from curation.sqltext import equals
from curation.storage import apply_storage_options

if TYPE_CHECKING:
    from lancedb import DBConnection

    from curation.ingest import IngestReport

DEFAULT_LAKE = "./lake"
LAKE_ENV = "MIXLAKE_LAKE"
PIN_PREFIX = "pin-"

VersionRef = int | str | None
"""A records version: a number, a tag name, "latest" or None (latest)."""


@dataclass(frozen=True)
class VersionEntry:
    """One version of a table, as `mixlake log` shows it."""

    version: int
    timestamp: dt.datetime
    rows: int
    operation: str
    message: str
    tags: tuple[str, ...]


def default_lake_uri() -> str:
    """The lake URI from `MIXLAKE_LAKE`, else `./lake`."""
    return os.environ.get(LAKE_ENV) or DEFAULT_LAKE


class Lake:
    """A mixlake lake at a URI (a local folder or anything Lance can open, e.g. `s3://…`).

    Opening a URI without a lake there is refused with a `CurationError` (make one with
    `Lake.create` or `mixlake init`).

    Args:
        uri: where the lake is; default `MIXLAKE_LAKE`, else `./lake`.
        storage_options: object-store settings (`endpoint`, `region`, credentials, …), set
            for this process (see `curation.storage.apply_storage_options`).

    Example:
        >>> lake = Lake.create(tmp_path / "lake")            # doctest: +SKIP
        >>> lake.ingest(["data.jsonl"], source="web")        # doctest: +SKIP
        >>> lake.sql("SELECT kind, count(*) FROM records GROUP BY kind")  # doctest: +SKIP
    """

    def __init__(
        self, uri: str | Path | None = None, *, storage_options: dict[str, str] | None = None
    ) -> None:
        if storage_options:
            apply_storage_options(storage_options)
        self.uri = str(uri) if uri is not None else default_lake_uri()
        if not self.has_table("records"):
            if "://" not in self.uri and Path(self.uri).is_file():
                raise CurationError(
                    f"no lake at {self.uri}: it is a file; a lake is a folder made by `mixlake init`"
                )
            raise CurationError(
                f"no lake at {self.uri}: create one with `mixlake init --lake {self.uri}`"
            )

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        uri: str | Path | None = None,
        *,
        exist_ok: bool = False,
        storage_options: dict[str, str] | None = None,
    ) -> Lake:
        """Create a lake with an empty `records` table (version 1).

        Args:
            uri: where the lake lives; defaults to `MIXLAKE_LAKE` or `./lake`.
            exist_ok: return the existing lake instead of failing when one is there.
            storage_options: object-store settings (`endpoint`, `region`, …; see
                `curation.storage`), applied to this process, never stored.
        """
        if storage_options:
            apply_storage_options(storage_options)
        uri_s = str(uri) if uri is not None else default_lake_uri()
        if lance_exists(_table_uri(uri_s, "records")):
            if exist_ok:
                return cls(uri_s)
            raise CurationError(f"a lake already exists at {uri_s}")
        if "://" not in uri_s:
            _make_lake_folder(Path(uri_s))
        with writer_lock(uri_s, "init"):
            if lance_exists(_table_uri(uri_s, "records")):
                return cls(uri_s) if exist_ok else cls._exists(uri_s)
            lance.write_dataset(
                RECORDS_SCHEMA.empty_table(),
                _table_uri(uri_s, "records"),
                mode="create",
                transaction_properties=Entry("init", "created the lake").properties(),
            )
        return cls(uri_s)

    @staticmethod
    def _exists(uri: str) -> Lake:
        raise CurationError(f"a lake already exists at {uri}")

    # ----------------------------------------------------------------- writing
    def writing(
        self, operation: str, notice: Notice | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Context manager holding this lake's writer lock (see `curation.commit`).

        Every mixlake write runs inside it: it reads the latest version, works, and commits
        on top of exactly that version. Reentrant within a thread.
        """
        return writer_lock(self.uri, operation, notice=notice)

    def commit(
        self,
        table: str,
        operation: lance.LanceOperation.BaseOperation,
        read_version: int,
        entry: Entry,
        *,
        extra: dict[str, str] | None = None,
    ) -> int:
        """Commit one operation on `table` as one version carrying its journal `entry`."""
        return commit_operation(self.table_uri(table), operation, read_version, entry, extra=extra)

    @property
    def db(self) -> DBConnection:
        """The LanceDB connection over this lake (for search and indexes)."""
        import lancedb

        return lancedb.connect(self.uri)

    def table_uri(self, name: str) -> str:
        """The Lance dataset URI of table `name`."""
        return _table_uri(self.uri, name)

    def has_table(self, name: str) -> bool:
        """Whether table `name` exists in the lake."""
        return lance_exists(self.table_uri(name))

    def table_names(self) -> list[str]:
        """Names of the tables in the lake."""
        if "://" in self.uri:
            return sorted(self.db.table_names())
        return sorted(p.name[: -len(".lance")] for p in Path(self.uri).glob("*.lance"))

    def dataset(self, name: str, version: int | None = None) -> lance.LanceDataset:
        """Open table `name` as a Lance dataset, at `version` or the latest."""
        if not self.has_table(name):
            raise CurationError(f"table {name!r} does not exist in the lake at {self.uri}")
        return lance.dataset(self.table_uri(name), version=version)

    # ---------------------------------------------------------------- versions
    def records(self, ref: VersionRef = None) -> lance.LanceDataset:
        """The `records` table at a version number, a tag, or the latest."""
        return self.dataset("records", self.resolve(ref))

    def latest_version(self) -> int:
        """The latest version number of `records`."""
        return int(self.dataset("records").version)

    def resolve(self, ref: VersionRef) -> int:
        """Turn a version reference (number, tag, "latest", None) into a version number."""
        ds = self.dataset("records")
        if ref is None or ref == "latest":
            return int(ds.version)
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            number = int(ref)
            known = {int(v["version"]) for v in ds.versions()}
            if number not in known:
                shown = ", ".join(str(v) for v in sorted(known)[-5:])
                raise CurationError(
                    f"records has no version {number} (latest versions: {shown}); see `mixlake log`"
                )
            return number
        tags = ds.tags.list()
        if ref not in tags:
            names = ", ".join(sorted(t for t in tags if not t.startswith(PIN_PREFIX))) or "none"
            raise CurationError(f"no tag {ref!r} on records (tags: {names}); see `mixlake tags`")
        return int(tags[ref]["version"])

    def tag(self, name: str, ref: VersionRef = None) -> int:
        """Tag a records version (default: latest) and return its number."""
        _check_tag_name(name)
        version = self.resolve(ref)
        ds = self.dataset("records")
        if name in ds.tags.list():
            raise CurationError(f"tag {name!r} already exists; pick another name")
        ds.tags.create(name, version)
        return version

    def tags(self, *, include_pins: bool = False) -> dict[str, int]:
        """Tag name → version. Pins (versions held by mixes and runs) only when asked."""
        out = {n: int(t["version"]) for n, t in self.dataset("records").tags.list().items()}
        if not include_pins:
            out = {n: v for n, v in out.items() if not n.startswith(PIN_PREFIX)}
        return dict(sorted(out.items(), key=lambda kv: (kv[1], kv[0])))

    def pin(self, holder: str, version: int) -> str:
        """Pin a records version for a mix or run, so `gc` keeps it. Idempotent."""
        name = PIN_PREFIX + _safe_ref(holder)
        ds = self.dataset("records")
        existing = ds.tags.list()
        if name in existing:
            if int(existing[name]["version"]) != version:
                ds.tags.update(name, version)
        else:
            ds.tags.create(name, version)
        return name

    def unpin(self, holder: str) -> None:
        """Remove a pin (e.g. of a materialization that failed before it was visible)."""
        name = PIN_PREFIX + _safe_ref(holder)
        ds = self.dataset("records")
        if name in ds.tags.list():
            ds.tags.delete(name)

    # ----------------------------------------------------------------- journal
    def journal_entries(self, table: str = "records") -> dict[int, dict[str, Any]]:
        """What made each live version of `table`, keyed by version.

        Read from the entry each commit carries; versions made before entries travelled
        with commits (older lakes) fall back to the `journal` table.
        """
        out: dict[int, dict[str, Any]] = {}
        if self.has_table("journal"):
            rows = self.dataset("journal").to_table(filter=equals("table_name", table))
            out = {int(r["version"]): r for r in rows.to_pylist()}
        if not self.has_table(table):
            return out
        out.update(version_entries(self.dataset(table), table))
        return out

    def journal_table(self) -> pa.Table:
        """Every journal entry of every table (what `SELECT … FROM journal` reads)."""
        names = ["records", *[n for n in self.table_names() if n not in ("records", "journal")]]
        rows = []
        for name in names:
            rows += sorted(self.journal_entries(name).values(), key=lambda r: r["version"])
        return pa.Table.from_pylist([{**r, "at": r.get("at")} for r in rows], schema=JOURNAL_SCHEMA)

    def log(self) -> list[VersionEntry]:
        """Every live version of `records`, newest first, with what made it."""
        ds = self.dataset("records")
        entries = self.journal_entries("records")
        by_version: dict[int, list[str]] = {}
        for name, version in self.tags(include_pins=True).items():
            by_version.setdefault(version, []).append(name)
        out = []
        for v in ds.versions():
            number = int(v["version"])
            j = entries.get(number, {})
            out.append(
                VersionEntry(
                    version=number,
                    timestamp=as_datetime(v["timestamp"]),
                    rows=int(v["metadata"].get("total_rows", 0)),
                    operation=j.get("operation", "?"),
                    message=j.get("message", "(made outside mixlake)"),
                    tags=tuple(sorted(by_version.get(number, []))),
                )
            )
        return sorted(out, key=lambda e: -e.version)

    # --------------------------------------------------------------- shortcuts
    # `curation.ingest` and `curation.query` build on this module; they register their entry
    # points here when imported (`import curation` imports both), so this module imports
    # neither and the package has no import cycle.
    def ingest(self, paths: list[str | Path], source: str, **options: Any) -> IngestReport:
        """Ingest files into `records`; see `curation.ingest.ingest` for the options."""
        report: IngestReport = _shortcut("ingest")(self, paths, source=source, **options)
        return report

    def sql(self, query: str, ref: VersionRef = None) -> pa.Table:
        """Run DuckDB SQL over `records` at a version; see `curation.query.sql`."""
        table: pa.Table = _shortcut("sql")(self, query, ref)
        return table


_SHORTCUTS: dict[str, Callable[..., Any]] = {}


def register_shortcut(name: str, function: Callable[..., Any]) -> None:
    """Make `function(lake, …)` callable as `lake.<name>(…)` (see `Lake.ingest`, `Lake.sql`)."""
    _SHORTCUTS[name] = function


def _shortcut(name: str) -> Callable[..., Any]:
    if name not in _SHORTCUTS:
        import importlib

        importlib.import_module("curation")  # the package imports and registers every module
    return _SHORTCUTS[name]


def _make_lake_folder(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise CurationError(
            f"cannot create a lake at {path}: it is a file, not a folder; pick another path"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except NotADirectoryError:
        raise CurationError(
            f"cannot create a lake at {path}: a folder on that path is a file"
        ) from None
    except OSError as e:
        raise CurationError(f"cannot create a lake at {path}: {e.strerror or e}") from None


def _table_uri(lake_uri: str, name: str) -> str:
    return f"{lake_uri.rstrip('/')}/{name}.lance"


def lance_exists(uri: str) -> bool:
    """Whether a Lance dataset exists at `uri`."""
    if "://" not in uri:
        return (Path(uri) / "_versions").is_dir()
    try:
        lance.dataset(uri)
    except (ValueError, OSError):
        return False
    return True


def _safe_ref(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in text)


def _check_tag_name(name: str) -> None:
    if not name or _safe_ref(name) != name or name.startswith(PIN_PREFIX):
        raise CurationError(
            f"bad tag name {name!r}: use letters, digits, '.', '-' or '_' "
            f"(and not the reserved prefix {PIN_PREFIX!r})"
        )
