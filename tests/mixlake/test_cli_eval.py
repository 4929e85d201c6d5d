"""The eval commands end to end through `mixlake.cli.main`."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import Lake
from mixlake.cli import main
from tests.evals.conftest import eval_lake, tiny_llama

__all__ = ["eval_lake", "tiny_llama"]  # the eval tests' fixtures: a tiny Llama and its lake


def test_eval_compare_import_and_list_from_the_cli(
    eval_lake: Lake, tiny_llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = ["--lake", eval_lake.uri]
    out = tmp_path / "base.jsonl"
    args = [str(tiny_llama), "--suite", "heldout", "--eval-set", "chat", "--out", str(out)]
    assert main(["eval", *args, *lake]) == 0
    captured = capsys.readouterr()
    assert "perplexity" in captured.out and "evaluated base_tiny_llama" in captured.err
    assert out.read_text().startswith('{"manifest"')
    # the same eval again: no new version
    version = eval_lake.latest_version()
    assert main(["eval", "run", *args, *lake]) == 0
    assert eval_lake.latest_version() == version
    assert "version: unchanged" in capsys.readouterr().err.replace("\n", " ")
    # a second "target": the same model under another folder name
    other = tmp_path / "other-model"
    other.symlink_to(tiny_llama)
    args2 = [str(other), "--suite", "heldout", "--eval-set", "chat", "--batch-size", "2"]
    assert main(["eval", *args2, *lake]) == 0
    capsys.readouterr()
    png = tmp_path / "cmp.png"
    cmp_args = ["base_tiny_llama", "base_other_model", "--plot", str(png)]
    assert main(["eval", "compare", *cmp_args, *lake]) == 0
    shown = capsys.readouterr()
    assert "95% CI" in shown.out and "breakdown" in shown.out and png.is_file()
    assert main(["evals", "--suite", "heldout", *lake]) == 0
    listed = capsys.readouterr().out
    assert "base_tiny_llama" in listed and "base_other_model" in listed
    # an eval-set result imports with no mix checksum; a typo in the file is one clear line
    bad = tmp_path / "bad.jsonl"
    bad.write_text(out.read_text().splitlines()[0] + '\n{"id": "zz", "loss": 1}\n')
    assert main(["eval", "import", str(bad), *lake]) == 2
    assert "bad.jsonl:2: bad or missing record id 'zz'" in capsys.readouterr().err
    assert main(["eval", "import", str(out), *lake]) == 0


def test_bad_suite_and_unknown_run_exit_2(
    eval_lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = ["--lake", eval_lake.uri]
    assert main(["eval", "smollm2", "--suite", "vibes", "--eval-set", "qa", *lake]) == 2
    assert "unknown suite 'vibes'" in capsys.readouterr().err
    assert main(["eval", "r00000000", "--suite", "heldout", *lake]) == 2
    assert "no run 'r00000000'" in capsys.readouterr().err
