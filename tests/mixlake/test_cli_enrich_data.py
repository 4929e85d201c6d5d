"""`mixlake embed|dedup|pii|decontaminate|cluster|search|stats` end to end on a tiny lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import Lake
from curation.testing import make_lake
from mixlake.cli import main

ROWS = [
    {"text": "How do I bake sourdough bread at home with a starter?"},
    {"text": "how do I bake sourdough bread at home, with a starter"},
    {"text": "Email me at chef@example.com or call 415-555-2671 about the bread."},
    {"text": "The stock market fell sharply on Tuesday after the earnings report."},
    {"text": "Investors sold shares as the market dropped on weak earnings news."},
    {"text": "My cat sleeps all day on the warm windowsill in the sun."},
]
EVAL = [{"text": "the stock market fell sharply on tuesday after the earnings report was released"}]


def run(lake: Lake, *args: str) -> int:
    return main([*args, "--lake", lake.uri])


def test_enrichment_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = make_lake(tmp_path, {"web": ROWS, "bench": EVAL})

    assert run(lake, "pii") == 0
    out = capsys.readouterr()
    assert "rows with PII: 1" in out.err and "email" in out.out

    assert run(lake, "dedup", "exact") == 0
    assert "groups: 1" in capsys.readouterr().err
    assert run(lake, "dedup", "exact") == 0
    assert "no new version" in capsys.readouterr().err
    assert run(lake, "dedup", "near", "--threshold", "0.7", "--shingle", "3") == 0
    assert "rows marked: 1" in capsys.readouterr().err

    assert run(lake, "decontaminate", "--against", "bench", "--n", "8") == 0
    out = capsys.readouterr()
    assert "contaminated: 1" in out.err and "bench" in out.out

    assert run(lake, "embed") == 0  # the real shipped MiniLM
    out = capsys.readouterr()
    assert "all-MiniLM-L6-v2" in out.err and "rows with vectors: 7" in out.err

    assert run(lake, "cluster", "--k", "2") == 0
    out = capsys.readouterr()
    assert "clusters (largest first)" in out.out and "rows clustered: 7" in out.err

    assert run(lake, "search", "baking bread", "--k", "2", "--where", "source = 'web'") == 0
    out = capsys.readouterr()
    assert "sourdough" in out.out and "results: 2" in out.err

    assert run(lake, "search", "windowsill", "--fts") == 0
    out = capsys.readouterr()
    assert "cat sleeps" in out.out and "results: 1" in out.err

    assert run(lake, "stats", "--plot", str(tmp_path / "charts")) == 0
    out = capsys.readouterr()
    assert "marks" in out.out and "contaminated" in out.out
    assert (tmp_path / "charts" / "rates.png").stat().st_size > 1000


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = make_lake(tmp_path, {"web": ROWS})
    version = lake.latest_version()
    assert run(lake, "dedup", "exact", "--where", "no_such_column = 1") == 2
    err = capsys.readouterr().err
    assert "bad --where" in err and "Traceback" not in err
    assert run(lake, "search", "bread") == 2
    assert "mixlake embed" in capsys.readouterr().err
    assert run(lake, "decontaminate", "--against", "missing-source") == 2
    assert "not an ingested source" in capsys.readouterr().err
    assert lake.latest_version() == version


def test_dedup_methods_are_the_registered_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = make_lake(tmp_path, {"web": ROWS})
    capsys.readouterr()
    assert run(lake, "dedup", "fuzzy") == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "unknown dedup step 'fuzzy'; choose one of exact, near, semantic" in err
    assert run(lake, "dedup", "exact", "--threshold", "0.5") == 2  # exact has no threshold
    assert "No such option: --threshold" in capsys.readouterr().err
    assert run(lake, "dedup", "semantic", "--help") == 0
    assert "--clusters" in capsys.readouterr().out
