"""`quality_heuristic_v1`: Gopher/C4-style rules on the plain `text` of a record.

Each rule either passes or fails with a reason name; the score is the share of rules passed
(1.0 = clean), and `quality_heuristic_v1_reasons` lists the failed rules so reports can say
"dropped for too_short: N". Thresholds are parameters (stored as column provenance).
Chat records are scored on their `text`: the turn contents joined by blank lines.

Rules (reason → what fails it):
- `too_short` / `too_long`: fewer than `min_words` or more than `max_words` words.
- `word_length`: mean word length outside [`min_mean_word_length`, `max_mean_word_length`].
- `symbol_ratio`: (`#` + ellipses) per word above `max_symbol_word_ratio`.
- `bullet_lines`: share of lines starting with a bullet above `max_bullet_lines`.
- `ellipsis_lines`: share of lines ending with an ellipsis above `max_ellipsis_lines`.
- `non_alpha_words`: share of words with at least one letter below `min_alpha_words`.
- `dup_lines`: share of non-empty lines that repeat an earlier line above `max_dup_lines`.
- `top_ngram_repetition`: the most frequent word 2/3/4-gram covers more characters than
  `max_top_2gram` / `max_top_3gram` / `max_top_4gram` of all word characters.
- `no_stop_words`: fewer than `min_stop_words` distinct English stop words.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curation.lake import Lake
from curation.steps.registry import register_step

REASONS = (
    "too_short",
    "too_long",
    "word_length",
    "symbol_ratio",
    "bullet_lines",
    "ellipsis_lines",
    "non_alpha_words",
    "dup_lines",
    "top_ngram_repetition",
    "no_stop_words",
)
STOP_WORDS = frozenset(
    [
        "the",
        "be",
        "to",
        "of",
        "and",
        "that",
        "have",
        "with",
        "a",
        "an",
        "is",
        "are",
        "was",
        "it",
        "in",
        "for",
        "on",
        "you",
        "i",
        "this",
        "not",
    ]
)
BULLETS = ("•", "●", "○", "▪", "■", "◦", "-", "*", "‣", "⁃")
ELLIPSES = ("...", "…")
_WORD = re.compile(r"\S+")
_ALPHA = re.compile(r"[^\W\d_]")
_EDGE_PUNCT = ".,!?;:\"'()[]{}«»“”‘’"


@dataclass(frozen=True)
class HeuristicThresholds:
    """Thresholds of `quality_heuristic_v1` (defaults follow Gopher, relaxed for chat turns).

    Attributes:
        min_words: fewer words fail `too_short` (Gopher uses 50 for web pages; chat is terser).
        max_words: more words fail `too_long`.
        min_mean_word_length: a lower mean word length fails `word_length`.
        max_mean_word_length: a higher mean word length fails `word_length`.
        max_symbol_word_ratio: more `#`/ellipses per word fail `symbol_ratio`.
        max_bullet_lines: a higher share of bullet lines fails `bullet_lines`.
        max_ellipsis_lines: a higher share of lines ending in an ellipsis fails `ellipsis_lines`.
        min_alpha_words: a lower share of words with a letter fails `non_alpha_words`.
        max_dup_lines: a higher share of repeated lines fails `dup_lines`.
        max_top_2gram: top 2-gram character share above this fails `top_ngram_repetition`.
        max_top_3gram: same for 3-grams.
        max_top_4gram: same for 4-grams.
        min_stop_words: fewer distinct stop words fail `no_stop_words`.
    """

    min_words: int = 8
    max_words: int = 100_000
    min_mean_word_length: float = 2.5
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines: float = 0.9
    max_ellipsis_lines: float = 0.3
    min_alpha_words: float = 0.8
    max_dup_lines: float = 0.3
    max_top_2gram: float = 0.2
    max_top_3gram: float = 0.18
    max_top_4gram: float = 0.16
    min_stop_words: int = 2


def failed_rules(text: str, t: HeuristicThresholds) -> list[str]:
    """The reasons (rule names, in `REASONS` order) that `text` fails."""
    words = _WORD.findall(text)
    n = len(words)
    failed: list[str] = []
    if n < t.min_words:
        failed.append("too_short")
    if n > t.max_words:
        failed.append("too_long")
    if n:
        stripped = [w.strip(_EDGE_PUNCT) or w for w in words]
        mean_len = sum(len(w) for w in stripped) / n
        if not t.min_mean_word_length <= mean_len <= t.max_mean_word_length:
            failed.append("word_length")
        symbols = text.count("#") + text.count("...") + text.count("…")
        if symbols / n > t.max_symbol_word_ratio:
            failed.append("symbol_ratio")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines:
        if sum(ln.startswith(BULLETS) for ln in lines) / len(lines) > t.max_bullet_lines:
            failed.append("bullet_lines")
        if sum(ln.endswith(ELLIPSES) for ln in lines) / len(lines) > t.max_ellipsis_lines:
            failed.append("ellipsis_lines")
    if n and sum(bool(_ALPHA.search(w)) for w in words) / n < t.min_alpha_words:
        failed.append("non_alpha_words")
    if len(lines) > 1 and 1 - len(set(lines)) / len(lines) > t.max_dup_lines:
        failed.append("dup_lines")
    lowered = [w.lower().strip(_EDGE_PUNCT) for w in words]
    if _top_ngram_repetitive(lowered, t):
        failed.append("top_ngram_repetition")
    if len(STOP_WORDS.intersection(lowered)) < t.min_stop_words:
        failed.append("no_stop_words")
    return failed


def _top_ngram_repetitive(words: list[str], t: HeuristicThresholds) -> bool:
    total_chars = sum(len(w) for w in words)
    if total_chars == 0:
        return False
    for size, limit in ((2, t.max_top_2gram), (3, t.max_top_3gram), (4, t.max_top_4gram)):
        if len(words) < size * 2:
            continue
        grams = Counter(tuple(words[i : i + size]) for i in range(len(words) - size + 1))
        gram, count = grams.most_common(1)[0]
        if count > 1 and count * sum(len(w) for w in gram) / total_chars > limit:
            return True
    return False


@register_step("quality_heuristic_v1", group="score")
class HeuristicQualityStep:
    """Gopher/C4-style rules: a score in [0, 1] and the rules each row failed.

    Columns `quality_heuristic_v1` (float) and `quality_heuristic_v1_reasons`.

    Args:
        thresholds: the limits each check uses; default `HeuristicThresholds()`.
    """

    name = "quality_heuristic_v1"
    input_columns: tuple[str, ...] = ("text",)
    model_step = False
    Params = HeuristicThresholds

    def __init__(self, thresholds: HeuristicThresholds | None = None) -> None:
        self.thresholds = thresholds or HeuristicThresholds()

    @classmethod
    def from_params(cls, params: HeuristicThresholds) -> HeuristicQualityStep:
        """The step with these thresholds (the registry's constructor)."""
        return cls(params)

    def params(self) -> dict[str, Any]:
        """The thresholds."""
        return asdict(self.thresholds)

    def output_schema(self) -> pa.Schema:
        """The score and the list of failed rules."""
        return pa.schema(
            [
                pa.field(self.name, pa.float32()),
                pa.field(f"{self.name}_reasons", pa.list_(pa.string())),
            ]
        )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Score each text: the share of rules it passes, and the ones it fails."""
        reasons = [failed_rules(t or "", self.thresholds) for t in batch.column("text").to_pylist()]
        scores = [1.0 - len(r) / len(REASONS) for r in reasons]
        return pa.RecordBatch.from_arrays(
            [pa.array(scores, pa.float32()), pa.array(reasons, pa.list_(pa.string()))],
            schema=self.output_schema(),
        )


def reason_counts(lake: Lake, column: str = "quality_heuristic_v1_reasons") -> dict[str, int]:
    """Rows of the latest `records` failing each heuristic rule, most frequent first."""
    ds = lake.records()
    if column not in ds.schema.names:
        return {}
    counts: Counter[str] = Counter()
    for batch in ds.to_batches(columns=[column]):
        flat = pc.list_flatten(batch.column(column))
        counts.update(flat.to_pylist())
    return dict(counts.most_common())
