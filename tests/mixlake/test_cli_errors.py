"""How the CLI fails: usage errors, user errors, internal errors, Ctrl-C, --debug, --version."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mixlake
import mixlake.commands.lake as lake_commands
from curation import CurationError, Lake
from curation.testing import make_lake
from mixlake.cli import INTERRUPTED
from tests.mixlake.helpers import Cli
from tests.mixlake.helpers import mixlake as run_mixlake

USAGE_ERRORS = [
    (["nosuch"], "No such command 'nosuch'"),
    (["log", "--bogus"], "No such option: --bogus"),
    (["show"], "Missing argument"),
    (["log", "-n", "many"], "Invalid value for '-n'"),
    (["ingest", "a.jsonl"], "Missing option '--source'"),
    (["mix", "nosuch"], "No such command 'nosuch'"),
    (["--debug", "log", "--bogus"], "No such option: --bogus"),
]


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS)
def test_usage_errors_exit_2_with_clicks_short_message(
    cli: Cli, args: list[str], message: str
) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert "Traceback" not in err and out == ""
    assert message in err
    errors = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and err.splitlines()[0].startswith("Usage: mixlake")


def test_usage_error_in_a_real_process_is_short() -> None:
    done = run_mixlake("log", "--bogus")
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "Traceback" not in err and "Error: No such option: --bogus" in err
    assert len(err.strip().splitlines()) <= 4


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["sql", "--help"], ["mix", "show", "-h"]])
def test_help_exits_0(cli: Cli, args: list[str]) -> None:
    code, out, _ = cli(*args)
    assert code == 0
    assert "Usage" in out


def test_version_prints_the_package_version(cli: Cli) -> None:
    code, out, err = cli("--version")
    assert code == 0 and err == ""
    assert out == f"mixlake {mixlake.__version__}\n"
    assert mixlake.__version__ not in ("", "0+unknown")


def test_debug_is_an_option_of_every_command(cli: Cli) -> None:
    _, out, _ = cli("--help")
    assert "--debug" in out
    _, out, _ = cli("ingest", "--help")
    assert "--debug" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--debug", "log", "--lake", "{lake}"],
        ["log", "--debug", "--lake", "{lake}"],
        ["log", "--lake", "{lake}", "--debug"],
        ["mix", "--debug", "ls", "--lake", "{lake}"],
        ["eval", "--debug", "compare", "a", "b", "--lake", "{lake}"],
    ],
)
def test_debug_shows_the_traceback_of_a_user_error(
    cli: Cli, tmp_path: Path, args: list[str]
) -> None:
    missing = str(tmp_path / "no-lake")
    code, _, err = cli(*(a.replace("{lake}", missing) for a in args))
    assert code == 2
    assert "Traceback" in err and "CurationError" in err
    assert err.strip().splitlines()[-1].startswith("error: no lake at")


def test_user_error_without_debug_is_one_line(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("log", "--lake", str(tmp_path / "no-lake"))
    assert code == 2
    assert err.strip().startswith("error: no lake at") and len(err.strip().splitlines()) == 1


def test_user_error_text_is_not_read_as_markup(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("log", "--lake", str(tmp_path / "[/bold]x[red]"))
    assert code == 2
    assert "[/bold]x[red]" in err and len(err.strip().splitlines()) == 1


def _raising(exc: BaseException) -> object:
    def open_lake(uri: str | None) -> Lake:
        raise exc

    return open_lake


def test_internal_error_is_one_line_exit_1(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_commands, "open_lake", _raising(ValueError("boom\nsecond line")))
    code, out, err = cli("log", "--lake", str(tmp_path))
    assert code == 1 and out == ""
    assert err == (
        "error: internal error: ValueError: boom (rerun with --debug for the traceback)\n"
    )


def test_internal_error_under_debug_shows_the_traceback(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_commands, "open_lake", _raising(RuntimeError("boom")))
    code, _, err = cli("--debug", "log", "--lake", str(tmp_path))
    assert code == 1
    assert "Traceback" in err and "RuntimeError: boom" in err


def test_ctrl_c_exits_130_with_one_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_commands, "open_lake", _raising(KeyboardInterrupt()))
    code, out, err = cli("log", "--lake", str(tmp_path))
    assert code == 130 and out == ""
    assert err.startswith("interrupted:") and len(err.strip().splitlines()) == 1


def test_debug_does_not_leak_into_the_next_call(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_commands, "open_lake", _raising(CurationError("bad thing")))
    assert cli("--debug", "log")[0] == 2
    code, _, err = cli("log")
    assert code == 2 and err == "error: bad thing\n"


def test_ctrl_c_inside_a_library_import_is_still_an_interrupt(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def open_lake(uri: str | None) -> Lake:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:  # what transformers' lazy import does with Ctrl-C
            raise ModuleNotFoundError("Could not import module 'LlamaConfig'") from e

    monkeypatch.setattr(lake_commands, "open_lake", open_lake)
    code, _, err = cli("log", "--lake", str(tmp_path))
    assert code == 130 and err.startswith("interrupted:")


def test_sigint_stops_a_long_query_with_one_line(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"a": [{"text": "one row"}]})
    endless = "SELECT count(*) FROM range(100000000000) t(i) WHERE i % 7 = 3"
    process = subprocess.Popen(
        [sys.executable, "-m", "mixlake.cli", "sql", endless, "--lake", lake.uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(8)  # imports (~1.5 s on an idle machine), then DuckDB runs for minutes
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, err.decode()
    assert out == b""
    assert err.decode().strip() == INTERRUPTED  # no traceback, no abort message
