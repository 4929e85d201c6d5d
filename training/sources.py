"""Where training examples come from: a materialized lake mix, or an exported mix JSONL.

Both give the rows of one split in mix order with random access by index, so an epoch can be
read in any order without rescanning: the lake by row address at the mix's pinned version
(`queries.open_mix`), the file by byte offset (one pass over the file builds the index).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from training.errors import TrainingError

if TYPE_CHECKING:
    from queries import MixManifest

Example = dict[str, Any]
"""A rendered example: `id`, `split`, `component` and `messages` | `prompt`+`completion` | `text`."""


@dataclass(frozen=True)
class SourceInfo:
    """What a run records about its data."""

    mix: str
    mix_version: int | None
    checksum: str
    records_version: int | None
    seed: int
    origin: str
    exported_split: str | None = None
    """For an exported file of one split: that split (file positions then count its rows only)."""


class ExampleSource(Protocol):
    """Rows of one mix, per split, in mix order, with random access."""

    info: SourceInfo

    def ids(self, split: str) -> list[str]:
        """Record ids of `split` in mix order."""
        ...

    def positions(self, split: str) -> list[int]:
        """Mix positions (over all splits) of the rows of `split`, in mix order."""
        ...

    def fetch(self, split: str, indices: Sequence[int]) -> list[Example]:
        """Rendered examples at these indices of `split` (in the order asked)."""
        ...


def seed_from_checksum(checksum: str) -> int:
    """A stable seed for mixes whose manifest carries none."""
    return zlib.crc32(checksum.encode())


class FileSource:
    """An exported mix: its whole JSONL (every split, in mix order) or one per-split file.

    Given `STEM.SPLIT.jsonl` (a per-split file the manifest lists), the other splits' files
    listed beside it are read too (for evaluation), and positions count each split's rows, as
    for an export of one split (`exported_split`; `runs import` maps them back to the mix).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise TrainingError(f"config key data_file: {self.path} does not exist")
        self._offsets: dict[str, list[int]] = {}
        self._ids: dict[str, list[str]] = {}
        self._positions: dict[str, list[int]] = {}
        self._files: dict[str, Path] = {}
        manifest = _manifest(self.path)
        split_file = _split_of_file(self.path, manifest)
        if manifest is None or split_file is None:
            self._index(self.path, None)
        else:
            for split, name in manifest.files.items():
                sibling = self.path.with_name(name)
                if sibling == self.path or sibling.is_file():
                    self._index(sibling, split)
        if manifest is None:  # a JSONL written by hand: the file names the mix
            checksum = _file_checksum(self._ids)
            self.info = SourceInfo(
                self.path.stem, None, checksum, None, seed_from_checksum(checksum), str(path)
            )
            return
        seed = manifest.seed if manifest.seed is not None else seed_from_checksum(manifest.checksum)
        self.info = SourceInfo(
            mix=manifest.mix,
            mix_version=manifest.mix_version,
            checksum=manifest.checksum,
            records_version=manifest.records_version,
            seed=seed,
            origin=str(self.path),
            exported_split=split_file or manifest.split,
        )

    def _index(self, path: Path, only: str | None) -> None:
        """Index a file's rows by split (`only`: the split a per-split file holds)."""
        with path.open("rb") as f:
            offset, position = 0, 0
            for number, line in enumerate(f, start=1):
                if line.strip():
                    row = _parse(line, path, number)
                    split = str(row.get("split", "train"))
                    if only is not None and split != only:
                        raise TrainingError(
                            f"{path}:{number}: a row of split {split!r} in the file of split "
                            f"{only!r}"
                        )
                    self._files.setdefault(split, path)
                    self._offsets.setdefault(split, []).append(offset)
                    self._ids.setdefault(split, []).append(str(row["id"]))
                    self._positions.setdefault(split, []).append(position)
                    position += 1
                offset += len(line)

    def ids(self, split: str) -> list[str]:
        """Record ids of `split` in file (mix) order."""
        return list(self._ids.get(split, []))

    def positions(self, split: str) -> list[int]:
        """Line numbers (0-based, blank lines skipped) of `split`'s rows: their mix positions.

        In a per-split file they are the rows' indices in the split.
        """
        return list(self._positions.get(split, []))

    def fetch(self, split: str, indices: Sequence[int]) -> list[Example]:
        """Read the rows at these indices of `split` by seeking to their byte offsets."""
        offsets = self._offsets.get(split, [])
        out: list[Example] = []
        if not indices:
            return out
        with self._files[split].open("rb") as f:
            for i in indices:
                f.seek(offsets[i])
                out.append(orjson.loads(f.readline()))
        return out


class MixSource:
    """A materialized mix in the lake, read through `queries.open_mix` by row address."""

    def __init__(self, lake: Any, name: str, version: int | None = None) -> None:
        from queries import QueryError, open_mix

        try:
            self.mix = open_mix(lake, name, version)
        except QueryError as e:
            raise TrainingError(f"config key mix: {e}") from None
        self._rows: dict[str, Any] = {}
        self._records: Any = None
        self.info = SourceInfo(
            mix=self.mix.name,
            mix_version=int(self.mix.version),
            checksum=str(self.mix.checksum),
            records_version=int(self.mix.records_version),
            seed=int(self.mix.spec.seed),
            origin=f"{lake.uri} mix {self.mix.ref}",
        )

    def _split_rows(self, split: str) -> Any:
        from queries import QueryError

        if split not in self._rows:
            if split not in self.mix.splits:
                self._rows[split] = None
            else:
                try:
                    self._rows[split] = self.mix.rows(split).combine_chunks()
                except QueryError as e:
                    raise TrainingError(f"mix {self.mix.ref}: {e}") from None
        return self._rows[split]

    def ids(self, split: str) -> list[str]:
        """Record ids of `split` in position order."""
        rows = self._split_rows(split)
        return [] if rows is None else [str(i) for i in rows.column("id").to_pylist()]

    def positions(self, split: str) -> list[int]:
        """Mix positions of `split`'s rows."""
        rows = self._split_rows(split)
        return [] if rows is None else [int(p) for p in rows.column("position").to_pylist()]

    def fetch(self, split: str, indices: Sequence[int]) -> list[Example]:
        """Rendered rows at these indices, read by row address at the pinned version."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from queries import QueryError, render
        from queries.render import render_columns

        rows = self._split_rows(split).take(pa.array(list(indices), pa.int64()))
        if self._records is None:
            self._records = self.mix.lake.records(self.mix.records_version)
        columns = render_columns(self.mix.spec.format, self._records.schema.names)
        got = self._records._take_rows(rows.column("row_addr").combine_chunks(), columns=columns)
        if not pc.all(pc.equal(got.column("id"), rows.column("id"))).as_py():
            raise TrainingError(
                f"mix {self.mix.ref}: row addresses no longer match records version "
                f"{self.mix.records_version}; re-materialize the mix"
            )
        meta = zip(*(rows.column(c).to_pylist() for c in ("id", "split", "component")), strict=True)
        out = []
        for (rid, spl, comp), record in zip(meta, got.to_pylist(), strict=True):
            try:
                rendered = render(record, self.mix.spec.format)
            except QueryError as e:
                raise TrainingError(f"mix {self.mix.ref}: {e}") from None
            out.append({"id": rid, "split": spl, "component": comp, **rendered})
        return out


def open_source(config: Any, lake: Any = None) -> ExampleSource:
    """The source a config names: `data_file`, or `mix` in `lake`."""
    if config.data_file is not None:
        source = FileSource(config.data_file)
        held = source.info.exported_split
        if held is not None and config.split != held:
            raise TrainingError(
                f"config key split: {config.split!r}, but data_file {config.data_file} is the "
                f"export of split {held!r} (its positions count that split's rows)"
            )
        return source
    if lake is None:
        raise TrainingError(
            f"config key mix: {config.mix!r} needs a lake (--lake or MIXLAKE_LAKE), or give "
            "data_file= an exported mix"
        )
    return MixSource(lake, config.mix, config.mix_version)


def _parse(line: bytes, path: Path, number: int) -> Example:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise TrainingError(f"{path}:{number}: not valid JSON ({e})") from None
    if not isinstance(row, dict) or "id" not in row:
        raise TrainingError(f"{path}:{number}: an exported example needs an `id`")
    if "chosen" in row or "rejected" in row:
        raise TrainingError(
            f"{path}:{number}: a preference row (chosen/rejected); SFT trains on chat, "
            "prompt/completion or text rows"
        )
    if not ("messages" in row or "text" in row or ("prompt" in row and "completion" in row)):
        raise TrainingError(
            f"{path}:{number}: an example needs `messages`, `prompt`+`completion` or `text`"
        )
    return row


def _manifest(path: Path) -> MixManifest | None:
    """The export manifest beside `path` (`STEM.manifest.yaml`, or a legacy sidecar).

    Returns None for a file without one.

    Raises:
        TrainingError: a manifest that cannot be read (one line: file and reason).
    """
    from queries import MixManifest, QueryError
    from queries.manifest import manifest_path

    if manifest_path(path) is None:
        return None
    try:
        return MixManifest.find(path)
    except QueryError as e:
        raise TrainingError(str(e)) from None


def _split_of_file(path: Path, manifest: MixManifest | None) -> str | None:
    """The split a per-split export file (`STEM.SPLIT.jsonl`) holds; None for a whole export."""
    if manifest is None or path.name == manifest.mix_order_file:
        return None
    for split, name in manifest.files.items():
        if name == path.name:
            return split
    return None


def _file_checksum(ids: dict[str, list[str]]) -> str:
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for split in sorted(ids):
        for i in ids[split]:
            h.update(f"{split}\t{i}\n".encode())
    return h.hexdigest()
