"""Opening or creating a lake where there is none: one-line CurationErrors naming the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import CurationError, Lake
from mixlake.cli import main


def _one_line(e: pytest.ExceptionInfo[CurationError]) -> str:
    message = str(e.value)
    assert len(message.splitlines()) == 1
    return message


def test_create_on_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a lake\n")
    with pytest.raises(CurationError) as e:
        Lake.create(path)
    message = _one_line(e)
    assert str(path) in message and "is a file" in message
    assert path.read_text() == "not a lake\n"


def test_create_below_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    path = tmp_path / "notes.txt" / "lake"
    with pytest.raises(CurationError) as e:
        Lake.create(path)
    assert str(path) in _one_line(e)


def test_open_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("x")
    with pytest.raises(CurationError) as e:
        Lake(path)
    message = _one_line(e)
    assert message.startswith(f"no lake at {path}") and "is a file" in message


@pytest.mark.parametrize("name", ["missing", "empty", "other"])
def test_open_a_folder_that_is_no_lake(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name != "missing":
        path.mkdir()
    if name == "other":
        (path / "data.jsonl").write_text("{}\n")
    with pytest.raises(CurationError) as e:
        Lake(path)
    assert _one_line(e) == f"no lake at {path}: create one with `mixlake init --lake {path}`"


def test_cli_init_on_a_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("x")
    code = main(["init", "--lake", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"error: cannot create a lake at {path}")
    assert len(err.splitlines()) == 1
