"""Export a mix as files a trainer can read where the lake is not reachable.

Every export holds the rows of a mix in mix order, one file per split, so a loader gets the
splits the mix made (`datasets.load_dataset("json", data_files={...})` or
`load_dataset(FOLDER)`: the split is in each file's name, `STEM.train.jsonl`, …), plus a
manifest `STEM.manifest.yaml` (a name no `*.json*` glob picks up) naming the mix, its version,
checksum, records version, spec hash, the rows and file per split, and the rows a trainer
would drop and why. Formats (`FORMATS`):

- `jsonl`: mixlake's rendered examples (`id`, `split`, `component`, `messages` |
  `prompt`+`completion` | `text`, and `meta` when the record has one), messages with their
  extra fields (`tool_calls`, `name`, …) restored. Also written whole, in mix order, at `out`
  itself: the file `mixlake train` (`data_file`) and `mixlake eval remote` read.
- `records`: every core column of each record (kind, text, messages with their fields,
  rejected, meta as exact JSON text): nothing a record holds is left out.
- `sharegpt`, `alpaca`: LLaMA-Factory's formats, with its `dataset_info.json` beside them.
- `trl-sft`, `trl-dpo`: trl's SFT and (conversational) DPO shapes.
- `axolotl`: `messages` for Axolotl's `chat_template` type, with `STEM.axolotl.yaml`.
- `parquet`, `arrow`: one file of `jsonl`'s rows with a `split` column; `hf`: a
  `datasets.DatasetDict.save_to_disk` folder, one dataset per split.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from curation import Lake
from queries.errors import QueryError
from queries.export_formats import CONVERTERS, axolotl_config, llamafactory_entry
from queries.export_rows import RowProgress, exported_rows, jsonl_bytes
from queries.materialize import MaterializedMix, open_mix

FORMATS = (
    "jsonl",
    "records",
    "sharegpt",
    "alpaca",
    "trl-sft",
    "trl-dpo",
    "axolotl",
    "parquet",
    "arrow",
    "hf",
)
JSON_FORMATS = ("jsonl", "records", *CONVERTERS)
LEGACY_MANIFEST = False
"""Also write `<out>.manifest.json` beside a `jsonl` export, for readers not yet on
`read_manifest` (training/sources.py, evals/remote.py); a `*.json*` glob picks it up."""


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
        fmt: one of `FORMATS`.
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
    if fmt not in FORMATS:
        raise QueryError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    mix = open_mix(lake, name, version)
    if split is not None and split not in mix.splits:
        known = ", ".join(mix.splits) or "none"
        raise QueryError(f"mix {mix.ref} has no split {split!r} (splits: {known})")
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    stats: Counter[str] = Counter()
    rows = exported_rows(mix, split, redact, stats, progress, full=fmt == "records")
    splits = [s for s in mix.splits if split is None or s == split]
    if fmt in JSON_FORMATS:
        files = _write_json_family(fmt, rows, out_path, splits, stats, trim_trailing_user)
        manifest = _stem_path(out_path, ".manifest.yaml")
    else:
        files = _write_columnar(fmt, rows, out_path)
        manifest = (
            out_path / "manifest.yaml" if fmt == "hf" else _stem_path(out_path, ".manifest.yaml")
        )
    info = _manifest(mix, fmt, split, redact, stats, files, trim_trailing_user)
    if fmt == "jsonl":
        info["mix_order_file"] = out_path.name  # every split, in mix order
    manifest.write_text(yaml.safe_dump(info, sort_keys=False, allow_unicode=True))
    if fmt == "jsonl" and LEGACY_MANIFEST:
        _legacy_sidecar(out_path).write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
    return manifest


def _write_json_family(
    fmt: str,
    rows: Iterator[dict[str, Any]],
    out: Path,
    splits: list[str],
    stats: Counter[str],
    trim: bool,
) -> dict[str, str]:
    """One `STEM.SPLIT.jsonl` per split (and `out` itself for `jsonl`), written atomically."""
    files = {s: _stem_path(out, f".{s}.jsonl").name for s in splits}
    targets = {s: out.with_name(f) for s, f in files.items()}
    if fmt == "jsonl":
        targets["*"] = out
    tmps = {s: t.with_name(t.name + ".partial") for s, t in targets.items()}
    handles = {s: t.open("wb") for s, t in tmps.items()}
    convert = CONVERTERS.get(fmt)
    written = 0
    try:
        for row in rows:
            kept: dict[str, Any] | None = row
            if fmt == "jsonl":  # the trainer's file: rendered example, id, split, meta
                kept = {k: v for k, v in row.items() if k not in ("kind", "rejected")}
            elif convert is not None:
                kept, skipped, dropped = convert(row, trim)
                if skipped:
                    stats[f"skipped: {skipped}"] += 1
                if dropped:
                    stats[f"dropped by LLaMA-Factory: {dropped}"] += 1
            if kept is None:
                continue
            line = jsonl_bytes(kept)
            handles[row["split"]].write(line)
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
    if written == 0 and fmt in CONVERTERS:
        for t in tmps.values():
            t.unlink(missing_ok=True)
        why = ", ".join(k for k in stats if k.startswith("skipped")) or "no rows"
        raise QueryError(f"no row of the mix fits the {fmt} format ({why})")
    for s, t in tmps.items():
        t.replace(targets[s])
    if fmt in ("sharegpt", "alpaca"):
        _update_dataset_info(out, fmt, files)
    if fmt == "axolotl":
        config = axolotl_config(str(out.parent.resolve()), files)
        _stem_path(out, ".axolotl.yaml").write_text(config)
    return files


def _write_columnar(fmt: str, rows: Iterator[dict[str, Any]], out: Path) -> dict[str, str]:
    examples = [{k: v for k, v in r.items() if k not in ("kind", "rejected")} for r in rows]
    tmp = out.with_name(out.name + ".partial")
    try:
        table = _table(examples)
        if fmt == "parquet":
            pq.write_table(table, tmp)
        elif fmt == "arrow":
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
        else:
            import datasets

            by_split: dict[str, list[dict[str, Any]]] = {}
            for ex in examples:
                by_split.setdefault(ex["split"], []).append(ex)
            datasets.disable_progress_bars()
            try:
                parts = {s: datasets.Dataset(_table(r)) for s, r in by_split.items()}
                datasets.DatasetDict(parts).save_to_disk(str(tmp))
            finally:
                datasets.enable_progress_bars()
    except BaseException:
        _remove(tmp)
        raise
    if out.exists():
        _remove(out)
    tmp.replace(out)
    return {"*": out.name}


def _table(examples: list[dict[str, Any]]) -> pa.Table:
    try:
        return pa.Table.from_pylist(examples)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
        raise QueryError(
            f"the rows do not fit one Arrow schema ({e}); export with --format jsonl"
        ) from None


def _update_dataset_info(out: Path, fmt: str, files: dict[str, str]) -> None:
    """Add this export's entries (`STEM_SPLIT`) to `dataset_info.json` in its folder."""
    path = out.with_name("dataset_info.json")
    info: dict[str, Any] = {}
    if path.exists():
        try:
            info = dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as e:
            raise QueryError(f"{path}: not a LLaMA-Factory dataset_info.json ({e})") from None
    stem = _stem(out)
    for split, name in files.items():
        info[f"{stem}_{split}"] = llamafactory_entry(fmt, name)
    path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _stem(out: Path) -> str:
    name = out.name
    for suffix in (".jsonl", ".json", ".parquet", ".arrow"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _stem_path(out: Path, suffix: str) -> Path:
    return out.with_name(_stem(out) + suffix)


def _legacy_sidecar(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def _manifest(
    mix: MaterializedMix,
    fmt: str,
    split: str | None,
    redact: bool,
    stats: Counter[str],
    files: dict[str, str],
    trim: bool,
) -> dict[str, Any]:
    splits = {s: v["rows"] for s, v in mix.splits.items() if split is None or s == split}
    return {
        "mix": mix.name,
        "mix_version": mix.version,
        "checksum": mix.checksum,
        "records_version": mix.records_version,
        "spec_hash": mix.spec_hash,
        "seed": mix.spec.seed,  # the trainer shuffles later epochs with it, as from the lake
        "rows": splits,
        "split": split,
        "format": fmt,
        "files": files,
        "template": mix.spec.format.template,
        "redacted": redact,
        "redactions": stats["redacted"],
        "trim_trailing_user": trim,
        "not_written": {
            k.removeprefix("skipped: "): v for k, v in stats.items() if k.startswith("skipped")
        },
        "trainer_drops": {
            k.removeprefix("dropped by LLaMA-Factory: "): v
            for k, v in stats.items()
            if k.startswith("dropped")
        },
    }


def manifest_path(out: str | Path) -> Path | None:
    """Where the manifest of an export is (the new name first, then the legacy one)."""
    p = Path(out)
    candidates = (
        [p / "manifest.yaml", p / "manifest.json"]
        if p.is_dir()
        else [_stem_path(p, ".manifest.yaml"), _legacy_sidecar(p), _stem_path(p, ".manifest.json")]
    )
    if not p.is_dir() and "." in _stem(p):  # a split file, STEM.SPLIT.jsonl
        candidates.append(p.with_name(_stem(p).rsplit(".", 1)[0] + ".manifest.yaml"))
    return next((c for c in candidates if c.is_file()), None)


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The manifest of an export (give the exported file, a split file's stem, or `hf` folder).

    Reads `STEM.manifest.yaml`, and the legacy `NAME.manifest.json` of older exports.

    Raises:
        QueryError: no manifest, or one that cannot be read.
    """
    path = manifest_path(out)
    if path is None:
        raise QueryError(f"{out}: no export manifest beside it (STEM.manifest.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise QueryError(f"{path}: cannot read the export manifest ({e})") from None
    if not isinstance(data, dict):
        raise QueryError(f"{path}: the export manifest is not a mapping")
    return data
