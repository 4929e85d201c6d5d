"""Metric functions against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evals import metrics as m


def test_exact_match_normalises_case_punctuation_and_articles() -> None:
    assert m.exact_match("The Paris.", "paris") == 1.0
    assert m.exact_match("  an   apple ", "Apple!") == 1.0
    assert m.exact_match("Paris, France", "Paris") == 0.0


def test_rouge_l_is_lcs_f_measure() -> None:
    # LCS("the cat sat on the mat", "the cat is on the mat") = "the cat on the mat" = 5 words
    # P = R = 5/6 → F = 5/6
    assert m.rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # LCS 2 of prediction 2 words, reference 4 words: P = 1, R = 1/2, F = 2/3
    assert m.rouge_l("cat mat", "the cat the mat") == pytest.approx(2 / 3)


def test_sentence_bleu_by_hand() -> None:
    # n-gram precisions 5/6, 3/5, 1/4 and 0/3 (smoothed to 1/(2·3)); brevity penalty 1.
    expected = 100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    got = m.sentence_bleu("the cat sat on the mat", "the cat is on the mat")
    assert got == pytest.approx(expected, rel=1e-6)
    assert m.sentence_bleu("same words here ok", "same words here ok") == pytest.approx(100.0)
    assert m.corpus_bleu(["a b c d"], ["a b c d"]) == pytest.approx(100.0)


def test_chrf_identity_and_disjoint() -> None:
    assert m.sentence_chrf("hello world", "hello world") == pytest.approx(100.0)
    assert m.sentence_chrf("xyz", "abc") == pytest.approx(0.0)
    assert 0 < m.corpus_chrf(["hello there"], ["hello world"]) < 100


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$1,234.50", 1234.5),
        ("about 42", 42.0),
        ("It costs -3.5e2 dollars", -350.0),
        ("roughly 2.5k units", 2500.0),
        ("−7", -7.0),
        ("£ 12", 12.0),
        (".5", 0.5),
        ("12 monkeys and 3 cats", 12.0),
        ("1,2", 1.0),
        (17, 17.0),
        ("no number here", None),
        (None, None),
        # an identifier is not a negative number; the price is the answer
        ("Model X-200 costs $50", 50.0),
        # the answer after '=', not the first operand
        ("2 + 2 = 4", 4.0),
        ("x = -3", -3.0),
        # a lower-case m is a unit (metres), not a million
        ("5 m", 5.0),
        ("5m", 5.0),
        ("$3M", 3e6),
        ("3 billion", 3e9),
        ("three billion people", 3e9),
        ("twenty-one", 21.0),
        ("minus five", -5.0),
        ("-5 degrees", -5.0),
        # ranges give no single number
        ("10-20 units", None),
        ("between 10 and 20", None),
        ("A4 paper", None),
    ],
)
def test_parse_number(text: object, value: float | None) -> None:
    assert m.parse_number(text) == value  # type: ignore[arg-type]


def test_parse_answer_says_why_and_keeps_the_unit() -> None:
    from evals.numbers import parse_answer

    assert parse_answer("5 m").unit == "m" and parse_answer("5 m").value == 5.0
    assert parse_answer("50%").unit == "%"
    assert parse_answer("10 to 20").failure == "range"
    assert parse_answer("nothing").failure == "no_number"
    assert parse_answer(float("nan")).failure == "not_finite"


def test_mae_rmse_hit_rate_by_hand() -> None:
    preds, refs = [1.0, 2.0, 6.0], [1.0, 4.0, 3.0]
    # errors 0, 2, 3 → MAE 5/3, RMSE sqrt(13/3)
    assert m.mae(preds, refs) == pytest.approx(5 / 3)
    assert m.rmse(preds, refs) == pytest.approx(math.sqrt(13 / 3))
    # tolerance max(0.5, 10% of ref): hits at 1 (exact); 2 vs 4 misses; 6 vs 3 misses
    assert m.hit_rate([*preds, None], [*refs, 5.0], absolute=0.5, relative=0.1) == 0.25
    assert m.within_tolerance(104.0, 100.0, relative=0.05) == 1.0
    assert m.within_tolerance(106.0, 100.0, relative=0.05) == 0.0
    with pytest.raises(ValueError, match="non-empty sequences"):
        m.mae([], [])


def test_choice_and_perplexity() -> None:
    assert m.choice_correct([-3.0, -1.0, -2.0], 1) == 1.0
    assert m.choice_correct([-3.0, -1.0, -2.0], 0) == 0.0
    assert m.perplexity(math.log(7.0)) == pytest.approx(7.0)
    # token-weighted: (1·ln2 + 3·ln8)/4 = ln(2·8^3)/4 → ppl = (2·512)^(1/4)
    got = m.token_weighted_perplexity([math.log(2), math.log(8)], [1, 3])
    assert got == pytest.approx((2 * 512) ** 0.25)


def test_bootstrap_ci_is_seeded_and_brackets_the_mean() -> None:
    values = np.arange(100, dtype=float)
    a = m.bootstrap_ci(values, seed=3)
    b = m.bootstrap_ci(values, seed=3)
    assert a == b
    assert a.value == pytest.approx(49.5)
    assert a.low < 49.5 < a.high
    # standard error of the mean ≈ 29.0/10 → 95% half-width ≈ 5.7
    assert 4.0 < (a.high - a.low) / 2 < 7.5
    constant = m.bootstrap_ci([2.0] * 10)
    assert (constant.low, constant.high) == (2.0, 2.0)
    assert m.bootstrap_ci([1.0, 2.0, 3.0, 4.0]).excludes_zero()
