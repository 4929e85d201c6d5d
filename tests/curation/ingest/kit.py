"""What the bad-input tests share: good rows, a file of given lines, the lake's state."""

from __future__ import annotations

from pathlib import Path

from curation import Lake

GOOD = [{"text": "first good row"}, {"text": "second good row"}]


def state(lake: Lake) -> tuple[int, int, list[str]]:
    """The latest version, the number of records and the tables: unchanged by a failure."""
    return lake.latest_version(), lake.records().count_rows(), lake.table_names()


def lines_file(tmp_path: Path, *lines: str, name: str = "bad.jsonl") -> Path:
    """A file of `lines`, one per line."""
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path
