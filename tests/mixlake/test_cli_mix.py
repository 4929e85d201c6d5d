"""`mixlake mix …` end to end on a small enriched lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import Lake
from mixlake.cli import main
from queries import read_manifest
from tests.queries.conftest import enriched_lake

GOOD = """
name: cli
seed: 3
total_rows: 60
exclude: [is_dup]
components:
  - name: short
    sql: source = 'chat' AND n_tokens < 12
    weight: 1
    max_repeats: 2
  - name: chat
    sql: source = 'chat'
    weight: 2
splits: {train: 0.8, val: 0.2}
format: {template: chat}
"""


def run(lake: Lake, *args: str) -> int:
    return main([*args, "--lake", lake.uri])


def test_mix_commands_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fresh_lake = enriched_lake(tmp_path / "lake")
    spec = tmp_path / "cli.yaml"
    spec.write_text(GOOD)
    assert run(fresh_lake, "mix", "check", str(spec)) == 0
    out = capsys.readouterr()
    assert "plan for cli" in out.out and "spec ok" in out.err
    assert not fresh_lake.has_table("mixes")

    assert run(fresh_lake, "mix", "materialize", str(spec)) == 0
    assert "materialized" in capsys.readouterr().err
    assert run(fresh_lake, "mix", "materialize", str(spec)) == 0
    assert "unchanged" in capsys.readouterr().err

    spec.write_text(GOOD.replace("seed: 3", "seed: 4"))
    assert run(fresh_lake, "mix", "materialize", str(spec)) == 0
    assert run(fresh_lake, "mix", "ls") == 0
    listing = capsys.readouterr().out
    assert listing.count("cli") >= 2

    assert run(fresh_lake, "mix", "show", "cli@1", "--sample", "2", "--split", "val") == 0
    shown = capsys.readouterr().out
    assert "tokens per row" in shown and "chat" in shown and "val" in shown

    assert run(fresh_lake, "mix", "diff", "cli@1", "cli@2") == 0
    diff = capsys.readouterr()
    assert "cli@1 → cli@2" in diff.out and "mix diff" in diff.err

    out_file = tmp_path / "exp" / "cli.jsonl"
    assert run(fresh_lake, "mix", "export", "cli", "--out", str(out_file), "--split", "train") == 0
    assert "exported" in capsys.readouterr().err
    lines = out_file.read_text().splitlines()
    manifest = read_manifest(tmp_path / "exp" / "cli.jsonl")
    assert len(lines) == manifest["rows"]["train"] and manifest["mix_version"] == 2


def test_check_problems_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_lake = enriched_lake(tmp_path / "lake")
    spec = tmp_path / "bad.yaml"
    spec.write_text(GOOD.replace("n_tokens < 12", "n_tokenz < 12"))
    assert run(fresh_lake, "mix", "materialize", str(spec)) == 2
    err = capsys.readouterr().err
    assert f"{spec}: component 'short': SQL error: unknown column 'n_tokenz'" in err
    assert "nothing written" in err
    assert not fresh_lake.has_table("mixes") and not fresh_lake.has_table("mix__cli")
    spec.write_text("name: x\ncomponents: 3\n")
    assert run(fresh_lake, "mix", "check", str(spec)) == 2
    assert "components must be a non-empty list" in capsys.readouterr().err
    assert run(fresh_lake, "mix", "show", "ghost") == 2
    assert "no mix 'ghost'" in capsys.readouterr().err
