"""Eval suites, each a small class.

A suite has a `name`, the per-row metrics it writes back, a check that runs before any model
loads, a per-row `compute` over a loaded model, and an `aggregate` of the run-level metrics
from the per-row values.

`evals.steps.SuiteStep` runs `compute` as a column step through `curation.steps.base.apply`
(batched, resumable, one commit); `aggregate` then reads the values back, so a resumed eval
reports the same numbers as an uninterrupted one. `run` does both in memory (an exported
mix evaluated without a lake).

- `heldout`: per-row mean token loss (assistant replies of chats, completions of prompts, every
  token of plain text) and perplexity; overall token-weighted loss and perplexity. Chats
  without an assistant turn, and rows whose scored tokens truncation cut, have nothing to
  score and are left out with a count.
- `generation`: greedy answers scored against references: exact match, ROUGE-L, BLEU, chrF.
- `numeric` and `choice`: see `evals.suites_scored`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evals import metrics
from evals.data import EvalExample
from evals.errors import EvalError
from evals.scoring import Progress, has_reply, loss_text, score_texts, scored_tokens
from evals.suite_base import (
    EvalOptions,
    PerRow,
    Suite,
    SuiteOutput,
    answer,
    prompts_and_refs,
    with_references,
)
from evals.suites_scored import Choice, Numeric


class Heldout(Suite):
    """Loss and perplexity on held-out rows."""

    name = "heldout"
    metrics = ("loss", "perplexity")
    lower_is_better = frozenset({"loss", "perplexity"})
    needs_tokenizer = True

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        """Every example; raises when no chat has an assistant turn to score."""
        if examples and not any(has_reply(ex) for ex in examples):
            raise EvalError(
                f"suite heldout: none of the {len(examples)} rows has an assistant turn to score "
                "(chats of user turns only)"
            )
        return list(examples)

    def scorable(
        self, examples: Sequence[EvalExample], tokenizer: Any, options: EvalOptions
    ) -> tuple[list[EvalExample], dict[str, float]]:
        """Rows with an assistant turn whose scored tokens survive truncation."""
        replies = [ex for ex in examples if has_reply(ex)]
        kept = [ex for ex in replies if scored_tokens(tokenizer, ex, options.max_length)]
        if not kept:
            raise EvalError(
                "heldout: no row kept a scored token after truncation; raise --max-length"
            )
        return kept, {
            "rows_excluded_no_assistant": float(len(examples) - len(replies)),
            "rows_excluded_truncated": float(len(replies) - len(kept)),
        }

    def compute(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> PerRow:
        """Mean token loss over each row's scored tokens, and its perplexity."""
        items = [loss_text(tokenizer, ex) for ex in examples]
        scored = score_texts(
            model,
            tokenizer,
            items,
            batch_size=options.batch_size,
            max_length=options.max_length,
            progress=progress,
        )
        losses = [s.mean_loss for s in scored]
        return {
            "loss": losses,
            "perplexity": [None if v is None else metrics.perplexity(v) for v in losses],
        }

    def aggregate(
        self,
        examples: Sequence[EvalExample],
        per_row: PerRow,
        options: EvalOptions,
        tokenizer: Any,
    ) -> dict[str, float]:
        """Token-weighted loss and perplexity (token counts from the tokenizer)."""
        tokens = [scored_tokens(tokenizer, ex, options.max_length) for ex in examples]
        losses = [float(v) for v in per_row["loss"]]
        return {
            "loss": float(np.dot(losses, tokens) / np.sum(tokens)),
            "perplexity": metrics.token_weighted_perplexity(losses, tokens),
            "mean_row_loss": float(np.mean(losses)),
            "rows": float(len(losses)),
            "tokens": float(np.sum(tokens)),
        }


class Generation(Suite):
    """Greedy answers scored against references."""

    name = "generation"
    metrics = ("exact_match", "rouge_l", "bleu", "chrf")
    answers = True
    shaping_options = ("max_length", "max_new_tokens")

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        """The examples with a reference."""
        return with_references(self.name, examples)

    def compute(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> PerRow:
        """Greedy answers and their sentence-level scores."""
        prompts, refs = prompts_and_refs(examples)
        preds = answer(model, tokenizer, prompts, options, progress)
        pairs = list(zip(preds, refs, strict=True))
        return {
            "exact_match": [metrics.exact_match(p, r) for p, r in pairs],
            "rouge_l": [metrics.rouge_l(p, r) for p, r in pairs],
            "bleu": [metrics.sentence_bleu(p, r) for p, r in pairs],
            "chrf": [metrics.sentence_chrf(p, r) for p, r in pairs],
            "answer": preds,
        }

    def aggregate(
        self,
        examples: Sequence[EvalExample],
        per_row: PerRow,
        options: EvalOptions,
        tokenizer: Any,
    ) -> dict[str, float]:
        """Mean exact match and ROUGE-L; corpus BLEU and chrF over the rows with answers."""
        _, refs = prompts_and_refs(examples)
        answered = [(a, r) for a, r in zip(per_row["answer"], refs, strict=True) if a is not None]
        run = {
            "exact_match": float(np.mean(per_row["exact_match"])),
            "rouge_l": float(np.mean(per_row["rouge_l"])),
            "rows": float(len(refs)),
        }
        if answered:  # rows imported from a results file carry no answer text
            run["bleu"] = metrics.corpus_bleu([a for a, _ in answered], [r for _, r in answered])
            run["chrf"] = metrics.corpus_chrf([a for a, _ in answered], [r for _, r in answered])
        if len(answered) < len(refs):
            run["rows_without_answer"] = float(len(refs) - len(answered))
        return run


__all__ = [
    "Choice",
    "EvalOptions",
    "Generation",
    "Heldout",
    "Numeric",
    "PerRow",
    "Suite",
    "SuiteOutput",
    "answer",
    "prompts_and_refs",
    "with_references",
]
