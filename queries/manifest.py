"""The export manifest: what `mixlake mix export` wrote, for the trainer and evals away from the lake.

`STEM.manifest.yaml` sits beside the files of an export (`manifest.yaml` inside an `hf`
folder); exports made before it was YAML have `NAME.manifest.json` (same fields, fewer of
them: no `seed`, `files`, …). `MixManifest` is the one reader and writer of both:
`MixManifest.find(out)` locates and reads the manifest of an export, `from_file` reads one
file, `write` writes YAML, `to_json` the same fields as JSON. A missing or malformed field is
one `QueryError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from queries.errors import QueryError

MANIFEST_SUFFIX = ".manifest.yaml"
FOLDER_MANIFEST = "manifest.yaml"
_SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow")


@dataclass(frozen=True)
class MixManifest:
    """One export of a mix: which mix, at which version and checksum, and the files written."""

    mix: str
    """Mix name."""
    checksum: str
    """Checksum of the mix's ordered id list (what evals and imports check results against)."""
    format: str
    """Export format name (`queries.export_formats`)."""
    rows: dict[str, int]
    """Rows per split exported."""
    mix_version: int | None = None
    records_version: int | None = None
    """The `records` version the mix is pinned to."""
    spec_hash: str | None = None
    seed: int | None = None
    """The mix seed (the trainer shuffles later epochs with it); None in older manifests."""
    split: str | None = None
    """The one split exported, or None for every split."""
    files: dict[str, str] = field(default_factory=dict)
    """File name per split, beside the manifest (`*` for a one-file or folder export)."""
    mix_order_file: str | None = None
    """For `jsonl`: the file holding every split in mix order."""
    format_version: int = 1
    template: str | None = None
    redacted: bool = True
    redactions: int = 0
    trim_trailing_user: bool = False
    not_written: dict[str, int] = field(default_factory=dict)
    """Rows not written, by reason (a format they do not fit)."""
    trainer_drops: dict[str, int] = field(default_factory=dict)
    """Rows written that the named trainer would drop, by reason."""

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain data, in file order (the mix first, the counts last)."""
        data = dataclasses.asdict(self)
        return {k: data[k] for k in _FILE_ORDER} | data

    def to_json(self) -> str:
        """The manifest as one JSON object (raw, no wrapping)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def to_yaml(self) -> str:
        """The manifest as the YAML `write` puts in `STEM.manifest.yaml`."""
        text: str = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        return text

    def write(self, path: str | Path) -> Path:
        """Write the manifest as YAML at `path`; returns the path."""
        p = Path(path)
        p.write_text(self.to_yaml())
        return p

    @classmethod
    def from_dict(cls, data: Any, where: str | Path) -> MixManifest:
        """A manifest from parsed data; unknown keys are ignored (newer writers may add some).

        Raises:
            QueryError: not a mapping, a required field missing, or a field of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise QueryError(f"{where}: the export manifest is not a mapping")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if data.get(f.name) is None:
                if _required(f):
                    raise QueryError(f"{where}: the export manifest has no {f.name!r}")
                continue  # absent (an older manifest) or null: the default
            values[f.name] = _checked(f.name, data[f.name], where)
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> MixManifest:
        """Read one manifest file (YAML, or the JSON of older exports).

        Raises:
            QueryError: the file is missing or unreadable, or a field is missing or malformed.
        """
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
            raise QueryError(f"{p}: cannot read the export manifest ({reason})") from None
        return cls.from_dict(data, p)

    @classmethod
    def find(cls, out: str | Path) -> MixManifest:
        """The manifest of an export: give the exported file, a split file, or an `hf` folder.

        Raises:
            QueryError: no manifest beside it, or one that cannot be read.
        """
        path = manifest_path(out)
        if path is None:
            raise QueryError(f"{out}: no export manifest beside it (STEM{MANIFEST_SUFFIX})")
        return cls.from_file(path)


_FILE_ORDER = (
    "mix",
    "mix_version",
    "checksum",
    "records_version",
    "spec_hash",
    "seed",
    "rows",
    "split",
    "format",
    "format_version",
    "files",
    "mix_order_file",
    "template",
    "redacted",
    "redactions",
    "trim_trailing_user",
    "not_written",
    "trainer_drops",
)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


_INT = ("mix_version", "records_version", "seed", "redactions", "format_version")
_STR = ("mix", "checksum", "format", "spec_hash", "split", "mix_order_file", "template")
_BOOL = ("redacted", "trim_trailing_user")
_COUNTS = ("rows", "not_written", "trainer_drops")


def _checked(name: str, value: Any, where: str | Path) -> Any:
    """The value of field `name`, or a one-line error saying what it should be."""
    if name in _INT:
        ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif name in _STR:
        ok, want = isinstance(value, str) and value != "", "a non-empty string"
    elif name in _BOOL:
        ok, want = isinstance(value, bool), "true or false"
    elif name in _COUNTS:
        ok = isinstance(value, Mapping) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value.values()
        )
        want = "a mapping of names to counts"
    else:  # files
        ok = isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values())
        want = "a mapping of splits to file names"
    if not ok:
        raise QueryError(f"{where}: export manifest field {name!r} must be {want}, got {value!r}")
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else value


def export_stem(out: Path) -> str:
    """The stem an export's files share: `out/chat.jsonl` → `chat`."""
    name = out.name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def stem_path(out: Path, suffix: str) -> Path:
    """`STEM + suffix` beside `out` (`chat.jsonl`, `.val.jsonl` → `chat.val.jsonl`)."""
    return out.with_name(export_stem(out) + suffix)


def legacy_sidecar(out: Path) -> Path:
    """Where exports before the YAML manifest put theirs: `NAME.manifest.json`."""
    return out.with_name(out.name + ".manifest.json")


def manifest_path(out: str | Path) -> Path | None:
    """Where the manifest of an export is (the YAML name first, then the legacy ones); None."""
    p = Path(out)
    if p.is_dir():
        candidates = [p / FOLDER_MANIFEST, p / "manifest.json"]
    else:
        candidates = [
            stem_path(p, MANIFEST_SUFFIX),
            legacy_sidecar(p),
            stem_path(p, ".manifest.json"),
        ]
        if "." in export_stem(p):  # a split file, STEM.SPLIT.jsonl
            whole = p.with_name(export_stem(p).rsplit(".", 1)[0] + p.suffix)
            candidates += [stem_path(whole, MANIFEST_SUFFIX), legacy_sidecar(whole)]
    return next((c for c in candidates if c.is_file()), None)
