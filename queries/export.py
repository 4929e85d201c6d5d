"""Export a mix as files a trainer can read where the lake is not reachable.

`jsonl` is one rendered example per line in mix order (`{"messages": [...], "id": …}` is the
chat format Axolotl and LLaMA-Factory read); `parquet` and `arrow` hold the same columns;
`hf` is a `datasets.Dataset.save_to_disk` folder. Each export has a manifest naming the mix,
its version, checksum, records version and spec hash, and the rows per split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from curation import Lake
from queries.errors import QueryError
from queries.materialize import MaterializedMix, open_mix

FORMATS = ("jsonl", "parquet", "arrow", "hf")
RowProgress = Callable[[int, int], None]


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
) -> Path:
    """Write the rendered rows of a mix in mix order, plus a manifest.

    Args:
        lake: the lake.
        name: mix name, or `name@version`.
        fmt: `jsonl`, `parquet`, `arrow` or `hf`.
        out: output file (a folder for `hf`).
        split: only this split.
        redact: replace emails, phones, keys … with tags (`curation.pii.redact`).
        version: mix version (default: latest).
        progress: optional callback (rows done, rows total).

    Returns:
        The manifest path (`<out>.manifest.json`, or `manifest.json` inside an `hf` folder).

    Raises:
        QueryError: unknown format or split, or a record that cannot be rendered.
    """
    if fmt not in FORMATS:
        raise QueryError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    mix = open_mix(lake, name, version)
    if split is not None and split not in mix.splits:
        known = ", ".join(mix.splits) or "none"
        raise QueryError(f"mix {mix.ref} has no split {split!r} (splits: {known})")
    total = mix.count(split)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    stats = {"redacted": 0}
    examples = _counted(_redacted(mix.examples(split), redact, stats), total, progress)
    tmp = out_path.with_name(out_path.name + ".partial")
    try:
        _write(fmt, examples, tmp)
    except BaseException:
        _remove(tmp)
        raise
    if out_path.is_dir() and fmt == "hf":
        _remove(out_path)
    tmp.replace(out_path)
    manifest = out_path / "manifest.json" if fmt == "hf" else _sidecar(out_path)
    manifest.write_bytes(
        orjson.dumps(
            _manifest(mix, fmt, split, redact, stats["redacted"]), option=orjson.OPT_INDENT_2
        )
    )
    return manifest


def _write(fmt: str, examples: Iterator[dict[str, Any]], tmp: Path) -> None:
    if fmt == "jsonl":
        with tmp.open("wb") as f:
            for ex in examples:
                f.write(orjson.dumps(ex) + b"\n")
    else:
        table = pa.Table.from_pylist(list(examples))
        if fmt == "parquet":
            pq.write_table(table, tmp)
        elif fmt == "arrow":
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
        else:
            import datasets

            datasets.disable_progress_bars()
            try:
                datasets.Dataset(table).save_to_disk(str(tmp))
            finally:
                datasets.enable_progress_bars()


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _sidecar(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def _manifest(
    mix: MaterializedMix, fmt: str, split: str | None, redact: bool, redacted: int
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
        "template": mix.spec.format.template,
        "redacted": redact,
        "redactions": redacted,
    }


def _redacted(
    examples: Iterator[dict[str, Any]], redact: bool, stats: dict[str, int]
) -> Iterator[dict[str, Any]]:
    if not redact:
        yield from examples
        return
    from curation.pii import redact as redact_text

    def clean(text: str) -> str:
        new, count = redact_text(text)
        stats["redacted"] += count
        return new

    for ex in examples:
        if "messages" in ex:
            ex["messages"] = [{**m, "content": clean(m["content"])} for m in ex["messages"]]
        for key in ("prompt", "completion", "text"):
            if key in ex:
                ex[key] = clean(ex[key])
        yield ex


def _counted(
    examples: Iterator[dict[str, Any]], total: int, progress: RowProgress | None
) -> Iterator[dict[str, Any]]:
    for i, ex in enumerate(examples, 1):
        if progress and (i % 256 == 0 or i == total):
            progress(i, total)
        yield ex


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The manifest of an export (give the exported file or `hf` folder)."""
    p = Path(out)
    path = p / "manifest.json" if p.is_dir() else _sidecar(p)
    try:
        return dict(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError) as e:
        raise QueryError(f"{path}: cannot read the export manifest ({e})") from None
