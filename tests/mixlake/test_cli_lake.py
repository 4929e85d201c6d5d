"""The lake commands end to end through `mixlake.cli.main`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation import Lake
from curation.testing import write_jsonl
from mixlake.cli import main
from tests.conftest import SAMPLE_ROWS


class Cli:
    """Runs `mixlake` against one lake and returns (exit code, stdout, stderr)."""

    def __init__(self, lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.lake = str(lake)
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([*args, "--lake", self.lake])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> tuple[str, str]:
        code, out, err = self(*args)
        assert code == 0, err
        return out, err


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "lake", capsys)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "sample.jsonl", SAMPLE_ROWS)


def _batch(cli: Cli, source: str) -> str:
    out, _ = cli.ok(
        "sql", f"SELECT DISTINCT batch FROM records WHERE source = '{source}'", "--format", "json"
    )
    return str(json.loads(out)[0]["batch"])


def test_init_ingest_log_tag(cli: Cli, data: Path) -> None:
    _, err = cli.ok("init")
    assert "lake created" in err and "version: 1" in err
    _, err = cli.ok("ingest", str(data), "--source", "sample")
    assert "ingested" in err and "added: 6" in err and "version: 2" in err
    _, err = cli.ok("ingest", str(data), "--source", "sample")
    assert "nothing new (no version created)" in err and "already present: 6" in err
    _, err = cli.ok("tag", "v-clean")
    assert "tag: v-clean" in err and "version: 2" in err
    out, _ = cli.ok("tags")
    assert "v-clean" in out
    out, err = cli.ok("log")
    assert "source=sample: +6 rows" in out and "created the lake" in out
    assert "versions: 2" in err


def test_init_takes_the_path_as_an_argument_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "here")]) == 0
    assert "lake created" in capsys.readouterr().err
    assert (tmp_path / "here" / "records.lance").is_dir()
    assert main(["init", str(tmp_path / "a"), "--lake", str(tmp_path / "b")]) == 2
    assert "two places given" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_init_twice_is_a_user_error(cli: Cli) -> None:
    cli.ok("init")
    code, _, err = cli("init")
    assert code == 2
    assert err.strip().startswith("error: a lake already exists")
    assert len(err.strip().splitlines()) == 1


def test_missing_lake_is_one_line(cli: Cli) -> None:
    code, _, err = cli("log")
    assert code == 2
    assert "no lake at" in err and "mixlake init" in err


def test_bad_ingest_fails_then_skip_and_rejects(cli: Cli, tmp_path: Path) -> None:
    cli.ok("init")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "good"}\n{"text": "trunc\n{"text": 42}\n')
    code, _, err = cli("ingest", str(bad), "--source", "bad")
    assert code == 2
    assert f"{bad}:2: invalid JSON" in err
    out, _ = cli.ok("log")
    assert "source=bad" not in out
    _, err = cli.ok("ingest", str(bad), "--source", "bad", "--on-error", "skip")
    assert "added: 1" in err and "rejected: 2" in err
    out, err = cli.ok("rejects")
    assert "must be a string, got int" in out
    assert "shown: 2" in err


def test_show_head_and_bad_id(cli: Cli, data: Path) -> None:
    cli.ok("init")
    cli.ok("ingest", str(data), "-s", "sample")
    out, _ = cli.ok("sql", "SELECT id FROM records WHERE kind = 'preference'", "--format", "csv")
    record = out.strip().splitlines()[-1].strip('"')
    out, _ = cli.ok("show", record)
    assert "Say something kind." in out and "rejected: Go away." in out
    out, _ = cli.ok("head", "-n", "2", "--version", "2")
    assert "records @ version 2" in out
    code, _, err = cli("show", "XYZ")
    assert code == 2 and "ids are lowercase hex" in err
    code, _, err = cli("show", "abc123")
    assert code == 2 and "no record abc123" in err


def test_diff_delete_rollback(cli: Cli, data: Path, tmp_path: Path) -> None:
    cli.ok("init")
    cli.ok("ingest", str(data), "-s", "sample")
    cli.ok("tag", "clean")
    web = write_jsonl(tmp_path / "web.jsonl", [{"text": f"spam {i}"} for i in range(4)])
    cli.ok("ingest", str(web), "-s", "web")
    out, err = cli.ok("diff", "clean", "latest", "--ids")
    assert "web" in out and out.count("+ ") == 4
    assert "added: 4" in err and "removed: 0" in err

    _, err = cli.ok("delete", "--batch", _batch(cli, "web"))
    assert "rows removed: 4" in err and "version: 4" in err
    _, err = cli.ok("delete", "--where", "source = 'nobody'")
    assert "nothing matched" in err
    code, _, err = cli("delete", "--where", "no_such_column = 1")
    assert code == 2 and "bad --where predicate" in err

    _, err = cli.ok("rollback", "--to", "3")
    assert "new version: 5" in err and "rows: 10" in err
    _, err = cli.ok("rollback", "--to", "clean")
    assert "rows: 6" in err
    out, _ = cli.ok("log")
    assert out.count("rollback to version") == 2


def test_sql_formats(cli: Cli, data: Path, tmp_path: Path) -> None:
    cli.ok("init")
    cli.ok("ingest", str(data), "-s", "sample")
    query = "SELECT kind, count(*) AS n FROM records GROUP BY kind ORDER BY kind"
    out, err = cli.ok("sql", query)
    assert "preference" in out and "rows: 3" in err
    out, _ = cli.ok("sql", query, "--format", "csv")
    assert out.splitlines()[0] == '"kind","n"'
    assert '"chat",4' in out
    out, _ = cli.ok("sql", query, "--format", "json")
    rows = json.loads(out)
    assert rows[0] == {"kind": "chat", "n": 4} and len(rows) == 3
    out, _ = cli.ok("sql", query, "--format", "jsonl")
    assert [json.loads(line) for line in out.splitlines()] == rows
    target = tmp_path / "out.parquet"
    cli.ok("sql", query, "--format", "parquet", "--out", str(target))
    assert pq.read_table(target).num_rows == 3
    csv_out = tmp_path / "out.csv"
    cli.ok("sql", query, "--format", "csv", "--out", str(csv_out))
    assert csv_out.read_text().count("\n") == 4
    out, _ = cli.ok("sql", "SELECT count(*) AS n FROM records", "--version", "1", "--format", "csv")
    assert out.splitlines()[-1] == "0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sql", "SELEC 1"], "SQL error"),
        (["sql", "SELECT 1", "--format", "xml"], "unknown --format 'xml'"),
        (["sql", "SELECT 1", "--out", "x.txt"], "give --format csv|json|jsonl|parquet"),
        (["sql", "SELECT 1", "--version", "2", "--tag", "x"], "not both"),
        (["head", "--tag", "missing"], "no tag 'missing'"),
        (["ingest", "nope.jsonl", "-s", "x"], "nope.jsonl: no such file"),
        (["ingest", "a.jsonl", "-s", "x", "--map", "text"], "bad --map 'text'"),
        (["rollback", "--to", "1"], "already at version 1"),
        (["gc", "--older-than", "-3"], "zero or more days"),
    ],
)
def test_user_errors_exit_2_with_one_line(cli: Cli, args: list[str], message: str) -> None:
    cli.ok("init")
    code, _, err = cli(*args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_stats_and_plot(cli: Cli, data: Path, tmp_path: Path) -> None:
    cli.ok("init")
    cli.ok("ingest", str(data), "-s", "sample")
    plot = tmp_path / "len.png"
    out, err = cli.ok("stats", "--plot", str(plot))
    assert "sample" in out and "rows: 6" in err
    assert plot.stat().st_size > 1000
    out, _ = cli.ok("stats", "--by", "kind")
    assert "preference" in out


def test_gc_keeps_tags(cli: Cli, data: Path, tmp_path: Path) -> None:
    cli.ok("init")
    cli.ok("ingest", str(data), "-s", "sample")
    cli.ok("tag", "keep")
    cli.ok("ingest", str(write_jsonl(tmp_path / "w.jsonl", [{"text": "more"}])), "-s", "w")
    _, err = cli.ok("gc", "--older-than", "0")
    assert "versions removed: 1" in err and "kept (tagged/pinned): 2" in err
    assert Lake(cli.lake).records("keep").count_rows() == 6


def test_ingest_chitchat_and_map(cli: Cli, tmp_path: Path) -> None:
    cli.ok("init")
    mapped = write_jsonl(tmp_path / "m.jsonl", [{"body": "mapped body"}])
    _, err = cli.ok("ingest", str(mapped), "-s", "m", "--map", "text=body", "--kind", "text")
    assert "added: 1" in err
    _, err = cli.ok("ingest", "pkg:chitchat", "-s", "chitchat")
    assert "ingested" in err and "kinds: chat 6,240" in err


def test_show_prints_data_literally(cli: Cli, tmp_path: Path) -> None:
    cli.ok("init")
    text = "[red]not markup[/] and a list [1, 2]"
    rows = [{"messages": [{"role": "user", "content": text}], "tags": ["[b]x[/b]"]}]
    cli.ok("ingest", str(write_jsonl(tmp_path / "b.jsonl", rows)), "-s", "b")
    out, _ = cli.ok("sql", "SELECT id FROM records", "--format", "csv")
    record = out.strip().splitlines()[-1].strip('"')
    out, err = cli.ok("show", record)
    assert f"user: {text}" in out
    assert '"tags":["[b]x[/b]"]' in out
    assert f"id: {record}" in err and "version: 2" in err
    _, err = cli.ok("head", "-n", "1")
    assert "rows shown: 1" in err


def test_tables_print_markup_like_data_literally(cli: Cli, tmp_path: Path) -> None:
    cli.ok("init")
    text = "<s>[INST] Say hi [/INST] Hi! [red]x[/red]"
    cli.ok("ingest", str(write_jsonl(tmp_path / "l.jsonl", [{"text": text}])), "-s", "llama")
    out, _ = cli.ok("sql", "SELECT text FROM records")
    assert text in out
    out, _ = cli.ok("head")
    assert "[INST] Say hi [/INST]" in out
