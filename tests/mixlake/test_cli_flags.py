"""One meaning per short flag across every command; mix versions are written NAME@N."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.main import get_command

from mixlake.cli import app
from tests.mixlake.helpers import Cli

# Each short flag and the long options it may stand for (all of one meaning).
SHORT_FLAGS: dict[str, set[str | None]] = {
    "-h": {"--help"},  # help
    "-v": {"--version"},  # a records version number (never a mix version: NAME@N)
    "-t": {"--tag"},  # a records tag
    "-n": {None, "--sample"},  # how many rows/versions/examples to show
    "-s": {"--source"},  # the `source` name of ingested rows
    "-f": {"--format"},  # the format of the file read or written
    "-o": {"--out"},  # the file written
}


def _options(command: object, path: str) -> Iterator[tuple[str, list[str], str]]:
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "option":
            yield path, [*param.opts, *param.secondary_opts], param.help or ""
    for name, sub in getattr(command, "commands", {}).items():
        yield from _options(sub, f"{path} {name}")


def test_every_short_flag_has_one_meaning() -> None:
    seen: dict[str, set[str | None]] = {}
    for path, opts, _ in _options(get_command(app), "mixlake"):
        shorts = [o for o in opts if len(o) == 2 and o.startswith("-")]
        longs = [o for o in opts if o.startswith("--")]
        for short in shorts:
            assert short in SHORT_FLAGS, f"{path}: {short} is not in the table of short flags"
            long = longs[0] if longs else None
            assert long in SHORT_FLAGS[short], f"{path}: {short} means {long}"
            seen.setdefault(short, set()).add(long)
    assert set(seen) >= {"-v", "-t", "-n", "-s", "-f", "-o"}


def test_records_version_is_the_only_version_option() -> None:
    for path, opts, text in _options(get_command(app), "mixlake"):
        if "--version" in opts and path != "mixlake":
            assert "records version" in text.lower(), f"{path}: --version means {text!r}"


@pytest.mark.parametrize("command", ["show", "export"])
def test_mix_commands_take_name_at_version_not_a_flag(cli: Cli, command: str) -> None:
    code, _, err = cli("mix", command, "x", "--version", "1")
    assert code == 2 and "No such option: --version" in err
