"""The export-format registry: one small class per format, registered under its name.

A format says how `queries.export.export_mix` lays out its files (one JSONL file per split,
one columnar file, or a folder), how one exported row becomes a row of the format (or why it
is not written, or why the trainer it names would drop it), and which sidecar files go
beside the rows (LLaMA-Factory's `dataset_info.json`, an Axolotl config). A format with a
`media_type` also encodes a plain table of rows as a download (the web UI's export).

Adding a format is one class and its test:

    @register_format
    class MyFormat(ExportFormat):
        name = "my-trainer"
        description = "rows as my-trainer reads them"

        def convert(self, row: Row, trim: bool) -> Converted:
            return {"text": row.get("text")}, None, None

The format's `version` is written in the export manifest (`format_version`): a change to what
a format writes bumps it, as a step's name gains a new suffix. The built-in formats are in
`queries.export_plain` and `queries.export_trainers`; `queries.export` imports both, so
`import queries` registers them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import pyarrow as pa

from queries.errors import QueryError

Row = dict[str, Any]
Converted = tuple[Row | None, str | None, str | None]
"""(row to write or None, reason it was not written, reason the named trainer would drop it)."""
Layout = Literal["splits", "file", "folder"]
Use = Literal["mix", "download"]
PRIVATE = ("kind", "rejected")
"""Fields of an exported row kept for the converters only (`queries.export_rows`)."""


class ExportFormat:
    """One export format: its name, file layout, row conversion and sidecars.

    Attributes:
        name: the name `--format` takes.
        version: bumped when what the format writes changes (the manifest records it).
        description: one line for `--help` and the docs.
        layout: `splits` (one JSON-lines `STEM.SPLIT<suffix>` per split), `file` (one file
            at `out`, a `split` column) or `folder` (`out` is a folder).
        suffix: the file name ending: of the per-split files, or the usual one of `out`.
        full_records: rows carry every core column of the record, not the rendered example.
        whole_file: also write every split, in mix order, at `out` itself (`jsonl`).
        must_fit: refuse an export where no row fits the format (nothing is written).
        for_mix: offered by `mix export` (a download-only format sets it False).
        media_type: set to offer the format for downloads of table rows (`encode_table`).
        nested: holds list and struct values (a CSV download gets scalar columns only).
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    description: ClassVar[str] = ""
    layout: ClassVar[Layout] = "splits"
    suffix: ClassVar[str] = ".jsonl"
    full_records: ClassVar[bool] = False
    whole_file: ClassVar[bool] = False
    must_fit: ClassVar[bool] = False
    for_mix: ClassVar[bool] = True
    media_type: ClassVar[str | None] = None
    nested: ClassVar[bool] = True

    def convert(self, row: Row, trim: bool) -> Converted:
        """The row as this format writes it, or why not (see `Converted`).

        The default keeps the rendered example, `id`, `split`, `component` and `meta`.
        `trim` asks to drop user turns after the last answer.
        """
        return {k: v for k, v in row.items() if k not in PRIVATE}, None, None

    def write_sidecars(self, out: Path, files: dict[str, str]) -> None:
        """Write the files that go beside the rows (default: none).

        Args:
            out: the export's `out` path (its folder and stem).
            files: the file name written per split.
        """

    def write_rows(self, rows: list[Row], path: Path) -> None:
        """Write converted rows as one file or folder at `path` (`file`/`folder` layouts)."""
        raise QueryError(f"export format {self.name!r} writes JSONL files per split only")

    def encode_table(self, table: pa.Table) -> bytes:
        """A table of rows as the bytes of a download (formats with a `media_type`)."""
        raise QueryError(f"export format {self.name!r} is not offered as a download")


_REGISTRY: dict[str, ExportFormat] = {}
F = TypeVar("F", bound=type[ExportFormat])


def register_format(cls: F) -> F:
    """Class decorator: register one instance of an `ExportFormat` under its `name`.

    Raises:
        QueryError: the name is empty or taken by another class.
    """
    name = getattr(cls, "name", "")
    if not name or name != name.strip():
        raise QueryError(f"export format class {cls.__name__} needs a name")
    held = _REGISTRY.get(name)
    if held is not None and type(held).__qualname__ != cls.__qualname__:
        raise QueryError(
            f"export format {name!r} is already registered by {type(held).__qualname__}"
        )
    _REGISTRY[name] = cls()
    return cls


def format_names(use: Use = "mix") -> tuple[str, ...]:
    """Names of the registered formats for `use`, in registration order.

    Args:
        use: `mix` (what `mix export --format` takes) or `download` (table rows, the web UI).
    """
    return tuple(n for n, f in _REGISTRY.items() if _offered(f, use))


def get_format(name: str, use: Use = "mix") -> ExportFormat:
    """The registered format called `name` for `use`.

    Raises:
        QueryError: no such format for that use (one line naming the known ones).
    """
    fmt = _REGISTRY.get(name)
    if fmt is None or not _offered(fmt, use):
        what = "export format" if use == "mix" else "download format"
        known = ", ".join(format_names(use)) or "none registered"
        raise QueryError(f"unknown {what} {name!r}; use one of {known}")
    return fmt


def _offered(fmt: ExportFormat, use: Use) -> bool:
    return fmt.for_mix if use == "mix" else fmt.media_type is not None


def unregister_format(name: str) -> None:
    """Remove a format (tests that register one of their own clean up with it)."""
    _REGISTRY.pop(name, None)
