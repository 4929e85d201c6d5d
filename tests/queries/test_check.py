"""`check_mix` reports every problem and writes nothing.

Each problem names the spec file, the component and the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import Lake
from curation.testing import make_lake
from queries import MixPlan, QueryError, check_mix, materialize_mix, parse_spec
from tests.queries.conftest import chat_rows


def spec_text(components: str, extra: str = "", total: str = "total_rows: 100") -> str:
    if "format:" not in extra:
        extra += "\nformat: {template: text}"
    return f"name: chk\nseed: 1\n{total}\n{extra}\ncomponents:\n{components}"


def check(lake: Lake, components: str, extra: str = "", total: str = "total_rows: 100") -> MixPlan:
    return check_mix(lake, parse_spec(spec_text(components, extra, total), "chk.yaml"))


CHAT = "  - name: chat\n    sql: source = 'chat'\n"
WEB = "  - name: web\n    sql: source = 'web'\n"


def only_problem(plan: MixPlan) -> str:
    assert len(plan.problems) == 1, plan.problems
    assert plan.problems[0].startswith("chk.yaml: ")
    return plan.problems[0]


def test_good_plan_counts(shared_lake: Lake) -> None:
    plan = check(shared_lake, CHAT + WEB.replace("'web'\n", "'web'\n    weight: 0.25\n"))
    assert plan.ok and plan.records_version == shared_lake.latest_version()
    assert [(c.name, c.available, c.target, c.taken) for c in plan.components] == [
        ("chat", 400, 80, 80),
        ("web", 150, 20, 20),
    ]
    assert plan.rows == 100 and plan.tokens and plan.tokens > 0
    assert sum(plan.splits.values()) == 100


@pytest.mark.parametrize(
    ("components", "extra", "expected"),
    [
        (
            "  - name: a\n    sql: source = 'chat' AND colour = 'red'\n",
            "",
            "component 'a': SQL error: unknown column 'colour'",
        ),
        ("  - name: a\n    sql: SELEC id FROM records\n", "", "component 'a': SQL error:"),
        (
            "  - name: a\n    sql: SELECT text FROM records\n",
            "",
            "component 'a': its SELECT must return the id column",
        ),
        (CHAT, "exclude: [nope > 1]", "exclude[0] 'nope > 1': unknown column 'nope'"),
        (
            CHAT + "    order_by: missing DESC\n",
            "",
            "component 'chat': order_by 'missing DESC': unknown column 'missing'",
        ),
        (
            CHAT + "    stratify_by: missing\n",
            "",
            "component 'chat': stratify_by 'missing': unknown column",
        ),
        ("  - name: none\n    sql: source = 'nowhere'\n", "", "component 'none': selects no rows"),
        (CHAT, "records: no-such-tag", "records: no tag 'no-such-tag'"),
        (CHAT, "records: 999", "records: records has no version 999"),
    ],
)
def test_each_problem_names_where_and_why(
    shared_lake: Lake, components: str, extra: str, expected: str
) -> None:
    assert expected in only_problem(check(shared_lake, components, extra))


def test_weight_that_cannot_be_met_suggests_max_repeats(shared_lake: Lake) -> None:
    problem = only_problem(
        check(
            shared_lake,
            CHAT + WEB.replace("'web'\n", "'web'\n    weight: 3\n"),
            total="total_rows: 400",
        )
    )
    assert "component 'web'" in problem
    assert "needs 300 rows but it has 150 rows" in problem
    assert "max_repeats: 2" in problem
    upsampled = WEB.replace("'web'\n", "'web'\n    weight: 3\n    max_repeats: 2\n")
    plan = check(shared_lake, CHAT + upsampled, total="total_rows: 400")
    assert plan.ok and plan.components[1].taken == 300 and plan.components[1].unique == 150


def test_max_rows_cap_is_a_note_not_a_problem(shared_lake: Lake) -> None:
    plan = check(shared_lake, CHAT + "    max_rows: 30\n")
    assert plan.ok and plan.components[0].taken == 30
    assert plan.components[0].note == "capped by max_rows 30"


def test_overlapping_components_warn_and_count_once(shared_lake: Lake) -> None:
    everything = "  - name: all\n    sql: 'true'\n"
    plan = check(shared_lake, CHAT + everything, total="total_rows: 200")
    assert plan.ok
    assert plan.components[1].overlap == 400 and plan.components[1].available == 150
    assert any("'all': 400 rows also match an earlier component" in w for w in plan.warnings)


def test_tokens_need_the_column(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"chat": chat_rows(20, "c")})
    problem = only_problem(check(lake, CHAT, total="total_tokens: 1000"))
    assert "run `mixlake tokens` first" in problem
    problem = only_problem(check(lake, CHAT + "    max_tokens: 50\n"))
    assert "run `mixlake tokens` first" in problem


def test_total_tokens_plan(shared_lake: Lake) -> None:
    plan = check(shared_lake, CHAT + WEB, total="total_tokens: 2000")
    assert plan.ok
    for c in plan.components:
        assert c.target == 1000
        assert c.taken_tokens is not None and 1000 <= c.taken_tokens < 1000 + 100


def test_prompt_field_missing_in_some_rows(shared_lake: Lake) -> None:
    fmt = "format: {template: prompt, prompt: 'Q: {text}', completion: ' {price}'}"
    problem = only_problem(check(shared_lake, CHAT + WEB, fmt))
    assert "component 'web': 150 rows have no field {price}" in problem
    assert check(shared_lake, CHAT, fmt).ok


def test_chat_template_needs_chat_records(shared_lake: Lake) -> None:
    problem = only_problem(check(shared_lake, CHAT + WEB, "format: {template: instruction}"))
    assert "component 'web': 150 rows have no messages" in problem
    assert check(shared_lake, CHAT, "format: {template: chat}").ok


def test_contaminated_rows(shared_lake: Lake) -> None:
    warn = check(shared_lake, CHAT, total="total_rows: 400")
    assert warn.ok and any("flagged contaminated" in w for w in warn.warnings)
    fail = check(shared_lake, CHAT, "on_contaminated: fail", total="total_rows: 300")
    assert "flagged contaminated" in only_problem(fail)
    exclude = check(shared_lake, CHAT, "on_contaminated: exclude", total="total_rows: 300")
    assert exclude.ok and exclude.components[0].available < 400
    assert not any("contaminated" in w for w in exclude.warnings)


def test_exact_text_in_two_splits_is_leakage(tmp_path: Path) -> None:
    # same text, different kind (chat vs text) => different ids, identical `text`
    rows = [{"text": f"q{i}\n\na{i}"} for i in range(60)]
    chats = [
        {
            "messages": [
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        }
        for i in range(60)
    ]
    lake = make_lake(tmp_path, {"plain": rows, "chat": chats})
    comps = "  - name: all\n    sql: 'true'\n"
    plan = check(lake, comps, "splits: {train: 0.5, test: 0.5}", total="total_rows: 120")
    problem = only_problem(plan)
    assert "leakage:" in problem and "exact text(s) land in two splits" in problem
    with pytest.raises(QueryError, match="leakage"):
        materialize_mix(lake, plan.spec)
    assert not lake.has_table("mixes") and not lake.has_table("mix__chk")
