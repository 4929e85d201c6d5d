"""Metric functions: text overlap, numbers parsed from answers, choices, perplexity, bootstrap.

Pure functions over Python values, each checked in the tests against a hand-computed value.
Paired comparisons get a t-interval or a BCa bootstrap (`paired_interval`), with n.
Text overlap uses the maintained implementations (`rouge-score`, `sacrebleu`) rather than our own.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace (SQuAD-style)."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised prediction equals the normalised reference, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of words), in [0, 1]."""
    return float(_rouge().score(reference, prediction)["rougeL"].fmeasure)


def sentence_bleu(prediction: str, reference: str) -> float:
    """Sentence BLEU (sacrebleu, exponential smoothing), in [0, 100]."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(prediction, [reference]).score)


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU over aligned predictions and references (sacrebleu), in [0, 100]."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def sentence_chrf(prediction: str, reference: str) -> float:
    """Sentence chrF (character n-gram F-score, sacrebleu), in [0, 100]."""
    import sacrebleu

    return float(sacrebleu.sentence_chrf(prediction, [reference]).score)


def corpus_chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF over aligned predictions and references (sacrebleu), in [0, 100]."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(list(predictions), [list(references)]).score)


def parse_number(text: str | float | int | None) -> float | None:
    """The number an answer gives, or None.

    `evals.numbers.parse_answer` has the rules and says why there is none: `"$1,234.50"` →
    1234.5, `"2 + 2 = 4"` → 4, `"5 m"` → 5, `"3 billion"` → 3e9, `"Model X-200 costs $50"` →
    50, `"10-20"` → None (a range).
    """
    from evals.numbers import parse_number as parse

    return parse(text)


def mae(predictions: Sequence[float], references: Sequence[float]) -> float:
    """Mean absolute error."""
    p, r = _pair(predictions, references)
    return float(np.mean(np.abs(p - r)))


def rmse(predictions: Sequence[float], references: Sequence[float]) -> float:
    """Root mean squared error."""
    p, r = _pair(predictions, references)
    return float(np.sqrt(np.mean((p - r) ** 2)))


def within_tolerance(
    prediction: float | None, reference: float, *, absolute: float = 0.0, relative: float = 0.05
) -> float:
    """1.0 when |prediction − reference| ≤ max(absolute, relative·|reference|), else 0.0.

    A missing prediction is a miss.
    """
    if prediction is None:
        return 0.0
    return float(abs(prediction - reference) <= max(absolute, relative * abs(reference)))


def hit_rate(
    predictions: Sequence[float | None],
    references: Sequence[float],
    *,
    absolute: float = 0.0,
    relative: float = 0.05,
) -> float:
    """Share of predictions within tolerance of their reference (missing ones are misses)."""
    if not references:
        raise ValueError("hit_rate of no rows")
    hits = [
        within_tolerance(p, r, absolute=absolute, relative=relative)
        for p, r in zip(predictions, references, strict=True)
    ]
    return float(np.mean(hits))


def choice_correct(option_scores: Sequence[float], answer: int) -> float:
    """1.0 when the highest-scoring option (first on ties) is the answer."""
    return float(int(np.argmax(np.asarray(option_scores, dtype=float))) == answer)


def perplexity(mean_loss: float) -> float:
    """Perplexity from a mean token cross-entropy (natural log): exp(loss)."""
    return float(math.exp(min(mean_loss, 700.0)))


def token_weighted_perplexity(losses: Sequence[float], tokens: Sequence[int]) -> float:
    """Corpus perplexity: exp of the token-weighted mean of per-row mean losses."""
    weights = np.asarray(tokens, dtype=float)
    return perplexity(float(np.sum(np.asarray(losses) * weights) / np.sum(weights)))


SMALL_N = 30
"""Below this many paired rows an interval is flagged: normal approximations are rough there."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval, the method that made it, and its n."""

    value: float
    low: float
    high: float
    n: int
    method: str = "percentile bootstrap"
    """`t` (paired t-interval), `BCa bootstrap` or `percentile bootstrap`."""

    def excludes_zero(self) -> bool:
        """Whether the interval lies strictly on one side of zero."""
        return self.low > 0 or self.high < 0

    @property
    def small(self) -> bool:
        """Fewer than `SMALL_N` values: read the interval as a rough guide."""
        return self.n < SMALL_N


def bootstrap_ci(
    values: Sequence[float],
    *,
    statistic: Callable[[np.ndarray], float] = np.mean,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap confidence interval of `statistic` over `values` (seeded).

    Too narrow at small n (it ignores the t distribution's heavier tails): for paired
    comparisons use `paired_interval`.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap of no values")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(resamples, data.size))
    stats = np.apply_along_axis(statistic, 1, data[idx])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return Interval(float(statistic(data)), float(low), float(high), int(data.size))


def paired_interval(
    deltas: Sequence[float],
    *,
    method: str = "t",
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Confidence interval of the mean of paired differences (B − A per row).

    Args:
        deltas: one difference per row both targets were evaluated on.
        method: `t` — mean ± t(n−1)·sd/√n, honest at small n for roughly symmetric
            differences; `bca` — bias-corrected and accelerated bootstrap (scipy), for skewed
            differences at larger n.
        confidence: the coverage asked for.
        resamples: bootstrap resamples (`bca`).
        seed: bootstrap seed (`bca`).

    With one row there is no spread to go on: the interval is (−∞, ∞). Constant differences
    give a zero-width interval.
    """
    from scipy import stats

    data = np.asarray(deltas, dtype=float)
    if data.size == 0:
        raise ValueError("interval of no values")
    mean = float(np.mean(data))
    if data.size == 1:
        return Interval(mean, -math.inf, math.inf, 1, "t" if method == "t" else "BCa bootstrap")
    if method == "t":
        half = float(stats.t.ppf(0.5 + confidence / 2, data.size - 1)) * float(
            np.std(data, ddof=1) / math.sqrt(data.size)
        )
        return Interval(mean, mean - half, mean + half, int(data.size), "t")
    if method != "bca":
        raise ValueError(f"unknown interval method {method!r} (t or bca)")
    if np.all(data == data[0]):
        return Interval(mean, mean, mean, int(data.size), "BCa bootstrap")
    res = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="BCa",
        random_state=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(mean, low, high, int(data.size), "BCa bootstrap")


def _pair(predictions: Sequence[float], references: Sequence[float]) -> tuple[Any, Any]:
    p = np.asarray(predictions, dtype=float)
    r = np.asarray(references, dtype=float)
    if p.shape != r.shape or p.size == 0:
        raise ValueError(f"need equal, non-empty sequences (got {p.size} and {r.size})")
    return p, r
