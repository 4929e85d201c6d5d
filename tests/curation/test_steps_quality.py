"""quality_heuristic_v1: each rule on hand-made texts, then the step on a tiny lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import CurationError, Lake
from curation.steps import apply, column_provenance
from curation.steps.quality import (
    REASONS,
    HeuristicQualityStep,
    HeuristicThresholds,
    failed_rules,
    reason_counts,
)
from curation.testing import make_lake

T = HeuristicThresholds()
CLEAN = (
    "The river was calm in the morning, and the fishermen pushed their boats out "
    "into the water while the sun came up over the hills."
)


def test_clean_prose_passes_every_rule() -> None:
    assert failed_rules(CLEAN, T) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hi there", "too_short"),
        (CLEAN + " " + " ".join(["word"] * 50), "too_long"),
        ("the a of and to in it is the a of and to in it is", "word_length"),
        (
            "The internationalisation considerations notwithstanding, extraordinarily "
            "incomprehensible characterisations overwhelmed the administrators",
            "word_length",
        ),
        ("# the title\n# of the page\n# and the rest #### ## ### # # # of it", "symbol_ratio"),
        (
            "- the first item\n- the second item\n- the third of them\n- and the last",
            "bullet_lines",
        ),
        (
            "The story begins and then...\nwe were waiting for the end of it...\n"
            "and the night was long and dark...",
            "ellipsis_lines",
        ),
        ("the price is 10 20 30 40 50 60 70 80 90 100 and that is all of it", "non_alpha_words"),
        (
            "the cat sat on the mat\nthe cat sat on the mat\nthe cat sat on the mat\n"
            "and then it was over for the dog",
            "dup_lines",
        ),
        (
            "buy now buy now buy now buy now buy now buy now the best of the deals with it",
            "top_ngram_repetition",
        ),
        (
            "Quick brown foxes jump over lazy dogs near riverbanks during summer evenings",
            "no_stop_words",
        ),
    ],
)
def test_each_rule_fires_on_its_text(text: str, reason: str) -> None:
    thresholds = HeuristicThresholds(max_words=40) if reason == "too_long" else T
    assert reason in failed_rules(text, thresholds)


def test_reasons_are_listed_in_rule_order() -> None:
    reasons = failed_rules("!!! ??? ###", T)
    assert reasons == [r for r in REASONS if r in reasons]
    assert {"too_short", "non_alpha_words", "no_stop_words"} <= set(reasons)


def test_thresholds_are_params() -> None:
    assert "too_short" not in failed_rules("the cat and the dog", HeuristicThresholds(min_words=3))
    assert "too_short" in failed_rules("the cat and the dog", HeuristicThresholds(min_words=6))


ROWS = [
    {"text": CLEAN},
    {"text": "hi"},
    {"text": "buy now buy now buy now buy now buy now buy now buy now buy now buy now"},
    {
        "messages": [
            {"role": "user", "content": "Can you tell me how the water cycle works?"},
            {"role": "assistant", "content": "Water evaporates, forms clouds and falls as rain."},
        ]
    },
]


@pytest.fixture
def quality_lake(tmp_path: Path) -> Lake:
    return make_lake(tmp_path, {"web": ROWS})


def test_step_scores_rows_and_counts_reasons(quality_lake: Lake) -> None:
    report = apply(HeuristicQualityStep(), quality_lake)
    assert report.rows_computed == 4
    rows = quality_lake.sql(
        "SELECT text, quality_heuristic_v1 AS s, quality_heuristic_v1_reasons AS r FROM records"
    ).to_pylist()
    by_text = {r["text"]: r for r in rows}
    assert by_text[CLEAN]["s"] == 1.0 and by_text[CLEAN]["r"] == []
    assert "too_short" in by_text["hi"]["r"]
    assert by_text["hi"]["s"] == pytest.approx(1 - len(by_text["hi"]["r"]) / len(REASONS))
    chat = next(r for r in rows if r["text"].startswith("Can you"))
    assert chat["r"] == [] and chat["s"] == 1.0
    assert all(0.0 <= r["s"] <= 1.0 for r in rows)
    counts = reason_counts(quality_lake)
    assert counts["too_short"] == 1 and counts["top_ngram_repetition"] == 1
    params = column_provenance(quality_lake.records().schema.field("quality_heuristic_v1"))
    assert params["params"]["min_words"] == T.min_words


def test_rerun_is_noop_and_new_thresholds_need_replace(quality_lake: Lake) -> None:
    apply(HeuristicQualityStep(), quality_lake)
    version = quality_lake.latest_version()
    assert apply(HeuristicQualityStep(), quality_lake).no_op
    stricter = HeuristicQualityStep(HeuristicThresholds(min_words=30))
    with pytest.raises(CurationError, match="--replace"):
        apply(stricter, quality_lake)
    assert quality_lake.latest_version() == version
    apply(stricter, quality_lake, replace=True)
    assert reason_counts(quality_lake)["too_short"] == 4
    old = quality_lake.sql(
        "SELECT count(*) AS n FROM records WHERE list_contains(quality_heuristic_v1_reasons, "
        "'too_short')",
        ref=version,
    ).to_pylist()[0]["n"]
    assert old == 1  # the old column is still reachable through history


class _CrashOnSecondBatch(HeuristicQualityStep):
    calls = 0

    def __call__(self, batch):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        if type(self).calls == 2:
            raise RuntimeError("killed mid-step")
        return super().__call__(batch)


def test_interrupted_scoring_resumes_as_one_version(quality_lake: Lake) -> None:
    before = quality_lake.latest_version()
    with pytest.raises(CurationError, match="killed mid-step"):
        apply(_CrashOnSecondBatch(), quality_lake, batch_size=2)
    assert quality_lake.latest_version() == before
    assert "quality_heuristic_v1" not in quality_lake.records().schema.names
    report = apply(HeuristicQualityStep(), quality_lake, batch_size=2)
    assert report.resumed and report.rows_computed == 2  # the first batch came from the checkpoint
    assert quality_lake.latest_version() == before + 1
    scored = quality_lake.sql("SELECT count(quality_heuristic_v1) AS n FROM records")
    assert scored.to_pylist()[0]["n"] == 4
