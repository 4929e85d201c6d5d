"""`mix check` says how many rows a completion-only trainer cannot learn from."""

from __future__ import annotations

from pathlib import Path

from curation.testing import make_lake
from mixlake.cli import main
from queries import parse_spec
from queries.coverage import no_reply_warnings, rows_without_reply
from queries.plan import select_mix

SPEC = """\
name: chats
records: latest
seed: 1
total_rows: 40
components:
  - name: all
    sql: SELECT * FROM records
    weight: 1.0
splits: {train: 1.0}
"""


def _rows() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(30):
        out.append(
            {
                "messages": [
                    {"role": "user", "content": f"question {i}"},
                    {"role": "assistant", "content": f"answer {i}"},
                ]
            }
        )
    for i in range(10):  # a user message alone, as 2,226 chitchat conversations are
        out.append({"messages": [{"role": "user", "content": f"lonely {i}"}]})
    return out


def test_rows_without_reply_are_counted(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"chat": _rows()})
    plan, selection = select_mix(lake, parse_spec(SPEC))
    assert selection is not None and plan.records_version is not None
    counts = rows_without_reply(lake, plan.records_version, selection)
    assert counts == {"train": (10, 40)}
    [warning] = no_reply_warnings(counts)
    assert warning.startswith("10 of 40 train rows have no assistant turn")


def test_mix_check_prints_the_warning(tmp_path: Path, capsys: object) -> None:
    lake = make_lake(tmp_path, {"chat": _rows()})
    spec = tmp_path / "chats.yaml"
    spec.write_text(SPEC)
    assert main(["mix", "check", str(spec), "--lake", lake.uri]) == 0
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "10 of 40 train rows have no assistant turn" in " ".join(err.split())


def test_a_predicate_may_start_with_a_parenthesis(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"chat": _rows()})
    spec = SPEC.replace(
        "sql: SELECT * FROM records",
        "sql: (kind = 'chat' OR kind = 'text') AND source = 'chat'",
    )
    plan, selection = select_mix(lake, parse_spec(spec))
    assert not plan.problems and selection is not None and len(selection.ids) == 40
