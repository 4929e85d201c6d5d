"""Export a mix as files a trainer can read where the lake is not reachable.

Every export holds the rows of a mix in mix order, one file per split, so a loader gets the
splits the mix made (`datasets.load_dataset("json", data_files={...})` or
`load_dataset(FOLDER)`: the split is in each file's name, `STEM.train.jsonl`, …), plus a
manifest `STEM.manifest.yaml` (`queries.manifest.MixManifest`, a name no `*.json*` glob picks
up) naming the mix, its version, checksum, records version, spec hash, the rows and file per
split, and the rows a trainer would drop and why. The formats are the registered
`queries.export_formats.ExportFormat`s (`format_names()`): the plain ones in
`queries.export_plain` (`jsonl`, `records`, `parquet`, `arrow`, `hf`), the trainers' in
`queries.export_trainers` (`sharegpt`, `alpaca`, `trl-sft`, `trl-dpo`, `axolotl`).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curation import Lake
from queries import export_plain, export_trainers
from queries.errors import QueryError
from queries.export_formats import ExportFormat, get_format
from queries.export_rows import RowProgress, exported_rows, jsonl_bytes
from queries.manifest import FOLDER_MANIFEST, MANIFEST_SUFFIX, MixManifest, stem_path
from queries.materialize import MaterializedMix, open_mix

_BUILTIN = (export_plain, export_trainers)  # imported for their registrations


def export_mix(
    lake: Lake,
    name: str,
    fmt: str,
    out: str | Path,
    split: str | None = None,
    redact: bool = True,
    *,
    version: int | None = None,
    progress: RowProgress | None = None,
    trim_trailing_user: bool = False,
) -> Path:
    """Write the rows of a mix in mix order, one file per split, plus a manifest.

    Args:
        lake: the lake.
        name: mix name, or `name@version`.
        fmt: a registered export format (`queries.export_formats.format_names()`).
        out: output file, e.g. `out/chat.jsonl` (its stem names the per-split files); a
            folder for `hf`.
        split: only this split.
        redact: replace emails, phones, keys … with tags (`curation.pii.redact`).
        version: mix version (default: latest).
        progress: optional callback (rows done, rows total).
        trim_trailing_user: for `sharegpt`/`alpaca`, drop user turns after the last answer
            (LLaMA-Factory drops such conversations whole).

    Returns:
        The manifest path (`STEM.manifest.yaml`, or `manifest.yaml` inside an `hf` folder).

    Raises:
        QueryError: unknown format or split, a record that cannot be rendered, or a format
            no row of the mix fits.
    """
    the_format = get_format(fmt)
    mix = open_mix(lake, name, version)
    if split is not None and split not in mix.splits:
        known = ", ".join(mix.splits) or "none"
        raise QueryError(f"mix {mix.ref} has no split {split!r} (splits: {known})")
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    stats: Counter[str] = Counter()
    rows = exported_rows(mix, split, redact, stats, progress, full=the_format.full_records)
    splits = [s for s in mix.splits if split is None or s == split]
    if the_format.layout == "splits":
        files = _write_splits(the_format, rows, out_path, splits, stats, trim_trailing_user)
        the_format.write_sidecars(out_path, files)
    else:
        files = _write_one(the_format, rows, out_path, stats, trim_trailing_user)
    where = (
        out_path / FOLDER_MANIFEST
        if the_format.layout == "folder"
        else stem_path(out_path, MANIFEST_SUFFIX)
    )
    manifest = _manifest(mix, the_format, split, redact, stats, files, trim_trailing_user)
    if the_format.whole_file:
        manifest = dataclasses.replace(manifest, mix_order_file=out_path.name)
    return manifest.write(where)


def _converted(
    fmt: ExportFormat, rows: Iterator[dict[str, Any]], stats: Counter[str], trim: bool
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(split, converted row) per row the format writes; the others are counted in `stats`."""
    for row in rows:
        kept, skipped, dropped = fmt.convert(row, trim)
        if skipped:
            stats[f"{_SKIPPED}{skipped}"] += 1
        if dropped:
            stats[f"{_DROPPED}{dropped}"] += 1
        if kept is not None:
            yield row["split"], kept


def _write_splits(
    fmt: ExportFormat,
    rows: Iterator[dict[str, Any]],
    out: Path,
    splits: list[str],
    stats: Counter[str],
    trim: bool,
) -> dict[str, str]:
    """One `STEM.SPLIT.jsonl` (the format's suffix) per split, and `out` for a `whole_file` one.

    Written atomically: nothing is left behind by an export that fails.
    """
    files = {s: stem_path(out, f".{s}{fmt.suffix}").name for s in splits}
    targets = {s: out.with_name(f) for s, f in files.items()}
    if fmt.whole_file:
        targets["*"] = out
    tmps = {s: t.with_name(t.name + ".partial") for s, t in targets.items()}
    handles = {s: t.open("wb") for s, t in tmps.items()}
    written = 0
    try:
        for split, kept in _converted(fmt, rows, stats, trim):
            line = jsonl_bytes(kept)
            handles[split].write(line)
            if "*" in handles:
                handles["*"].write(line)
            written += 1
    except BaseException:
        for h in handles.values():
            h.close()
        for t in tmps.values():
            t.unlink(missing_ok=True)
        raise
    for h in handles.values():
        h.close()
    if written == 0 and fmt.must_fit:
        for t in tmps.values():
            t.unlink(missing_ok=True)
        why = ", ".join(k for k in stats if k.startswith(_SKIPPED)) or "no rows"
        raise QueryError(f"no row of the mix fits the {fmt.name} format ({why})")
    for s, t in tmps.items():
        t.replace(targets[s])
    return files


def _write_one(
    fmt: ExportFormat, rows: Iterator[dict[str, Any]], out: Path, stats: Counter[str], trim: bool
) -> dict[str, str]:
    """Every row as one file (or folder) at `out`, replaced atomically."""
    kept = [row for _, row in _converted(fmt, rows, stats, trim)]
    tmp = out.with_name(out.name + ".partial")
    try:
        fmt.write_rows(kept, tmp)
    except BaseException:
        _remove(tmp)
        raise
    if out.exists():
        _remove(out)
    tmp.replace(out)
    return {"*": out.name}


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


_SKIPPED = "skipped: "
_DROPPED = "dropped: "


def _manifest(
    mix: MaterializedMix,
    fmt: ExportFormat,
    split: str | None,
    redact: bool,
    stats: Counter[str],
    files: dict[str, str],
    trim: bool,
) -> MixManifest:
    def counts(prefix: str) -> dict[str, int]:
        return {k.removeprefix(prefix): v for k, v in stats.items() if k.startswith(prefix)}

    return MixManifest(
        mix=mix.name,
        mix_version=mix.version,
        checksum=mix.checksum,
        records_version=mix.records_version,
        spec_hash=mix.spec_hash,
        seed=mix.spec.seed,  # the trainer shuffles later epochs with it, as from the lake
        rows={s: v["rows"] for s, v in mix.splits.items() if split is None or s == split},
        split=split,
        format=fmt.name,
        format_version=fmt.version,
        files=files,
        template=mix.spec.format.template,
        redacted=redact,
        redactions=stats["redacted"],
        trim_trailing_user=trim,
        not_written=counts(_SKIPPED),
        trainer_drops=counts(_DROPPED),
    )


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The manifest of an export as plain data; `MixManifest.find(out)` gives it typed.

    Give the exported file, a split file or an `hf` folder.

    Raises:
        QueryError: no manifest, or one that cannot be read or misses a field.
    """
    return MixManifest.find(out).to_dict()
