"""quality_judge_v1: the reply parser, the step with a scripted model, and SmolLM2 on 3 rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import CurationError, Lake
from curation.steps import apply, column_provenance
from curation.steps.judge import JudgeQualityStep, parse_score
from curation.testing import make_lake


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("4", 4),
        ("5\n\nThe quality of this sample is high.", 5),
        ("Score: **3**", 3),
        ("4/5", 4),
        ("I'd say 2 out of 5.", 2),
        ("Rating: 1. It is spam.", 1),
        ("(3)", 3),
        ("10/10 would read again, so 5", 5),
        ("0.5", None),
        ("25 points, 7 stars", None),
        ("4.3\n\nThe quality of", 4),
        ("3.5", 4),
        ("1.2.3", None),
        ("", None),
        (None, None),
        ("excellent", None),
        ("6", None),
        ("the score is 2.4 overall", 2),
        ("rated 1-5: 4", 1),  # the first number in range wins; documented behaviour
        ("Rating: 5.", 5),
    ],
)
def test_parse_score(reply: str | None, score: int | None) -> None:
    assert parse_score(reply) == score


class ScriptedJudge(JudgeQualityStep):
    """The real step with generation replaced by canned replies (no model)."""

    def __init__(self, replies: dict[str, str]) -> None:
        super().__init__()
        self.replies = replies

    def generate(self, samples: list[str]) -> list[str]:
        return [self.replies[s.split()[0]] for s in samples]


@pytest.fixture
def small_lake(tmp_path: Path) -> Lake:
    words = ["alpha", "beta", "gamma", "delta"]
    return make_lake(tmp_path, {"web": [{"text": f"{w} sample text"} for w in words]})


def test_step_stores_reply_and_score_and_counts_failures(small_lake: Lake) -> None:
    judge = ScriptedJudge(
        {"alpha": "5", "beta": "Score: 2", "gamma": "I cannot rate", "delta": "3"}
    )
    report = apply(judge, small_lake, where="text NOT LIKE 'delta%'")
    assert report.rows_computed == 3 and judge.parse_failures == 1
    rows = small_lake.sql(
        "SELECT split_part(text, ' ', 1) AS w, quality_judge_v1 AS s, quality_judge_v1_reply AS r "
        "FROM records ORDER BY w"
    ).to_pylist()
    assert [(r["w"], r["s"], r["r"]) for r in rows] == [
        ("alpha", 5, "5"),
        ("beta", 2, "Score: 2"),
        ("delta", None, None),
        ("gamma", None, "I cannot rate"),
    ]
    prov = column_provenance(small_lake.records().schema.field("quality_judge_v1"))
    assert prov["params"]["model"] == "smollm2" and prov["params"]["decoding"] == "greedy"

    # A parse failure counts as computed: only the row outside `where` is left to do.
    second = apply(judge, small_lake)
    assert second.rows_computed == 1
    assert apply(judge, small_lake).no_op


def test_bad_model_path_and_limits(tmp_path: Path) -> None:
    with pytest.raises(CurationError, match="no such local folder"):
        JudgeQualityStep(str(tmp_path / "missing-model"))
    with pytest.raises(CurationError, match="positive"):
        JudgeQualityStep(max_new_tokens=0)


@pytest.mark.slow
def test_smollm2_judges_three_rows(tmp_path: Path) -> None:
    lake = make_lake(
        tmp_path,
        {
            "web": [
                {"text": "The mitochondria produce ATP, the energy currency of the cell."},
                {"text": "buy cheap pills click click click www spam"},
                {"text": "Paris is the capital of France and its largest city."},
            ]
        },
    )
    judge = JudgeQualityStep()
    report = apply(judge, lake)
    assert report.rows_computed == 3
    rows = lake.sql("SELECT quality_judge_v1 AS s, quality_judge_v1_reply AS r FROM records")
    replies = rows.column("r").to_pylist()
    assert all(isinstance(r, str) and r for r in replies)
    scores = rows.column("s").to_pylist()
    assert scores == [parse_score(r) for r in replies]
    assert sum(s is not None for s in scores) == 3 - judge.parse_failures
    assert all(s is None or 1 <= s <= 5 for s in scores)
