"""The suite protocol: `Suite` and its options, shared by every suite module.

A suite has a `name`, the per-row metrics it writes back, a check that runs before any model
loads, a per-row `compute` over a loaded model, and an `aggregate` of the run-level metrics
from the per-row values (see `evals.suites`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from curation.generate import greedy_generate
from evals.data import EvalExample
from evals.errors import EvalError
from evals.scoring import Progress

PerRow = dict[str, list[Any]]
"""Metric (and `answer`) → values aligned with the examples; None = not computed."""


@dataclass(frozen=True)
class EvalOptions:
    """Knobs shared by the suites."""

    batch_size: int = 4
    """Rows per forward pass / generate call."""
    max_length: int = 512
    """Tokens kept per row (longer rows are truncated at the end)."""
    max_new_tokens: int = 64
    """Greedy tokens generated per answer (generation, numeric)."""
    relative_tolerance: float = 0.05
    """numeric: a hit is within this fraction of the reference …"""
    absolute_tolerance: float = 0.0
    """… or within this absolute distance, whichever is larger."""
    seed: int = 0
    """Seed of the random baseline and the bootstrap."""
    judge_model: str = "smollm2"
    """judge: the local chat model that grades answers (`smollm2` or a model folder)."""
    rows_per_batch: int = 256
    """Rows of `records` per step batch: each finished batch is checkpointed, so a crash
    loses at most one batch of work."""

    def __post_init__(self) -> None:
        """Refuse sizes that cannot work."""
        if self.batch_size < 1 or self.max_length < 8 or self.max_new_tokens < 1:
            raise EvalError("batch size, max length and max new tokens must be positive")
        if self.rows_per_batch < 1:
            raise EvalError("rows per batch must be positive")


@dataclass
class SuiteOutput:
    """Per-row metrics (aligned with `ids`; None = not computed) and run-level metrics."""

    ids: list[str]
    per_row: dict[str, list[float | None]]
    run_level: dict[str, float]
    predictions: list[str] = field(default_factory=list)


class Suite:
    """Base of the suites.

    `metrics` are the per-row float columns, the first never null for a computed row; a suite
    with `answers` also keeps each greedy answer as a string column `answer`.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    """Bumped when what the suite computes per row changes: a version above 1 is part of its
    columns' provenance, so a rerun never mixes rows of two versions (`--replace` rebuilds)."""
    metrics: ClassVar[tuple[str, ...]]
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    answers: ClassVar[bool] = False
    shaping_options: ClassVar[tuple[str, ...]] = ("max_length",)
    """The `EvalOptions` fields the per-row values depend on (recorded as provenance)."""
    needs_tokenizer: ClassVar[bool] = False
    """Whether `scorable` and `aggregate` need the target's tokenizer (loaded without the
    model)."""

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        """The examples this suite can evaluate (raises EvalError when none can)."""
        return list(examples)

    def check(self, options: EvalOptions) -> None:
        """Check the options before any model loads (e.g. that a judge model exists)."""

    def scorable(
        self, examples: Sequence[EvalExample], tokenizer: Any, options: EvalOptions
    ) -> tuple[list[EvalExample], dict[str, float]]:
        """The examples left after tokenizer-level checks, and counts of those left out."""
        return list(examples), {}

    def compute(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> PerRow:
        """Per-row metrics of a loaded model on `examples`."""
        raise EvalError(f"suite {self.name} cannot run")

    def aggregate(
        self,
        examples: Sequence[EvalExample],
        per_row: PerRow,
        options: EvalOptions,
        tokenizer: Any,
    ) -> dict[str, float]:
        """Run-level metrics from the per-row values of `examples`."""
        raise EvalError(f"suite {self.name} cannot aggregate")

    def run(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> SuiteOutput:
        """Evaluate a loaded model on the selected examples, in memory."""
        kept, excluded = self.scorable(examples, tokenizer, options)
        if progress and len(kept) < len(examples):
            progress(len(examples) - len(kept))
        per_row = self.compute(model, tokenizer, kept, options, progress)
        run = {**self.aggregate(kept, per_row, options, tokenizer), **excluded}
        answers = per_row.pop("answer", [])
        return SuiteOutput([ex.id for ex in kept], per_row, run, [a or "" for a in answers])


def answer(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    options: EvalOptions,
    progress: Progress | None = None,
) -> list[str]:
    """Greedy answers to `prompts` with the suite options (`curation.generate`)."""
    return greedy_generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=options.max_new_tokens,
        batch_size=options.batch_size,
        max_length=options.max_length,
        progress=progress,
    )


def with_references(suite: str, examples: Sequence[EvalExample]) -> list[EvalExample]:
    """The examples with a non-empty reference (raises EvalError when there are none)."""
    kept = [ex for ex in examples if ex.prompt_and_reference()[1] not in (None, "")]
    if not kept:
        raise EvalError(
            f"suite {suite} needs references, and none of the {len(examples)} rows has one "
            "(an assistant turn, a completion, or a meta field such as canonical_solution)"
        )
    return kept


def prompts_and_refs(examples: Sequence[EvalExample]) -> tuple[list[Any], list[str]]:
    """The prompts and references of `examples`, aligned."""
    pairs = [ex.prompt_and_reference() for ex in examples]
    return [p for p, _ in pairs], [str(r) for _, r in pairs]
