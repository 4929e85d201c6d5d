"""Eval suites: each a small class with a `name`, the per-row metrics it writes back, a check
that runs before any model loads, and `run` over a loaded model.

- `heldout`: per-row mean token loss (assistant replies of chats, completions of prompts, every
  token of plain text) and perplexity; overall token-weighted loss and perplexity. Chats
  without an assistant turn have nothing to score and are left out with a count.
- `generation`: greedy answers scored against references: exact match, ROUGE-L, BLEU, chrF.
- `numeric`: numbers parsed from greedy answers (`evals.numbers`): hit within tolerance,
  absolute error; MAE and RMSE of the model and of the mean-predictor and random baselines over
  the same rows (those whose answer parsed), hit rates over all rows (an unparsed answer is a
  miss), and how many answers did not parse, by reason.
- `choice`: multiple-choice accuracy by the log-likelihood of each option as a continuation of
  the prompt (lm-evaluation-harness's `acc`), and by log-likelihood per character of the
  option (its `acc_norm`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from evals import metrics
from evals.data import EvalExample
from evals.errors import EvalError
from evals.numbers import parse_answer
from evals.scoring import (
    Progress,
    encode_continuation,
    generate,
    has_reply,
    loss_text,
    option_items,
    score_encoded,
    score_texts,
)


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

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_length < 8 or self.max_new_tokens < 1:
            raise EvalError("batch size, max length and max new tokens must be positive")


@dataclass
class SuiteOutput:
    """Per-row metrics (aligned with `ids`; None = not computed) and run-level metrics."""

    ids: list[str]
    per_row: dict[str, list[float | None]]
    run_level: dict[str, float]
    predictions: list[str] = field(default_factory=list)


class Suite:
    """Base of the suites. `metrics` are the per-row columns; the first is never null."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    lower_is_better: ClassVar[frozenset[str]] = frozenset()

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        """The examples this suite can score; raises EvalError (before any model loads) when
        none can."""
        return list(examples)

    def check(self, options: EvalOptions) -> None:
        """Check the options before any model loads (e.g. that a judge model exists)."""

    def run(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> SuiteOutput:
        """Evaluate a loaded model on the selected examples."""
        raise EvalError(f"suite {self.name} cannot run")


class Heldout(Suite):
    """Loss and perplexity on held-out rows."""

    name = "heldout"
    metrics = ("loss", "perplexity")
    lower_is_better = frozenset({"loss", "perplexity"})

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        if examples and not any(has_reply(ex) for ex in examples):
            raise EvalError(
                f"suite heldout: none of the {len(examples)} rows has an assistant turn to score "
                "(chats of user turns only)"
            )
        return list(examples)

    def run(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> SuiteOutput:
        scorable = [ex for ex in examples if has_reply(ex)]
        if progress and len(scorable) < len(examples):
            progress(len(examples) - len(scorable))
        items = [loss_text(tokenizer, ex) for ex in scorable]
        scored = score_texts(
            model,
            tokenizer,
            items,
            batch_size=options.batch_size,
            max_length=options.max_length,
            progress=progress,
        )
        kept = [(ex.id, s) for ex, s in zip(scorable, scored, strict=True) if s.tokens]
        if not kept:
            raise EvalError(
                "heldout: no row kept a scored token after truncation; raise --max-length"
            )
        losses = [s.loss_sum / s.tokens for _, s in kept]
        tokens = [s.tokens for _, s in kept]
        run = {
            "loss": float(np.sum([s.loss_sum for _, s in kept]) / np.sum(tokens)),
            "perplexity": metrics.token_weighted_perplexity(losses, tokens),
            "mean_row_loss": float(np.mean(losses)),
            "rows": float(len(kept)),
            "tokens": float(np.sum(tokens)),
            # rows left out: nothing to score, or truncation cut every scored token
            "rows_excluded_no_assistant": float(len(examples) - len(scorable)),
            "rows_excluded_truncated": float(len(scorable) - len(kept)),
        }
        return SuiteOutput(
            ids=[i for i, _ in kept],
            per_row={
                "loss": [*losses],
                "perplexity": [metrics.perplexity(v) for v in losses],
            },
            run_level=run,
        )


class Generation(Suite):
    """Greedy answers scored against references."""

    name = "generation"
    metrics = ("exact_match", "rouge_l", "bleu", "chrf")

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        return with_references(self.name, examples)

    def run(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> SuiteOutput:
        prompts, refs = prompts_and_refs(examples)
        preds = generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=options.max_new_tokens,
            batch_size=options.batch_size,
            max_length=options.max_length,
            progress=progress,
        )
        pairs = list(zip(preds, refs, strict=True))
        em = [metrics.exact_match(p, r) for p, r in pairs]
        rouge = [metrics.rouge_l(p, r) for p, r in pairs]
        per_row: dict[str, list[float | None]] = {
            "exact_match": list(em),
            "rouge_l": list(rouge),
            "bleu": [metrics.sentence_bleu(p, r) for p, r in pairs],
            "chrf": [metrics.sentence_chrf(p, r) for p, r in pairs],
        }
        run = {
            "exact_match": float(np.mean(em)),
            "rouge_l": float(np.mean(rouge)),
            "bleu": metrics.corpus_bleu(preds, refs),
            "chrf": metrics.corpus_chrf(preds, refs),
            "rows": float(len(preds)),
        }
        return SuiteOutput([ex.id for ex in examples], per_row, run, preds)


class Numeric(Suite):
    """Numbers parsed from greedy answers, against the trivial baselines."""

    name = "numeric"
    metrics = ("hit", "abs_error", "prediction")
    lower_is_better = frozenset({"abs_error"})

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        with_refs = with_references(self.name, examples)
        numeric = [
            ex for ex in with_refs if metrics.parse_number(ex.prompt_and_reference()[1]) is not None
        ]
        if not numeric:
            raise EvalError(
                f"suite numeric: none of the {len(with_refs)} references parses as a number"
            )
        return numeric

    def run(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> SuiteOutput:
        prompts, ref_texts = prompts_and_refs(examples)
        refs = [float(metrics.parse_number(r) or 0.0) for r in ref_texts]
        answers = generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=options.max_new_tokens,
            batch_size=options.batch_size,
            max_length=options.max_length,
            progress=progress,
        )
        parsed_answers = [parse_answer(a) for a in answers]
        preds = [p.value for p in parsed_answers]
        tol = {"absolute": options.absolute_tolerance, "relative": options.relative_tolerance}
        hits = [metrics.within_tolerance(p, r, **tol) for p, r in zip(preds, refs, strict=True)]
        errors = [None if p is None else abs(p - r) for p, r in zip(preds, refs, strict=True)]
        refs_mean = float(np.mean(refs))
        mean_pred: list[float | None] = [refs_mean] * len(refs)
        rng = np.random.default_rng(options.seed)
        random_pred = [float(v) for v in rng.uniform(min(refs), max(refs), size=len(refs))]
        failures = Counter(p.failure for p in parsed_answers if p.value is None)
        run = {
            "hit_rate": float(np.mean(hits)),
            "parsed_rate": (len(refs) - sum(failures.values())) / len(refs),
            "parse_failures": float(sum(failures.values())),
            **{f"parse_failures_{why}": float(n) for why, n in sorted(failures.items())},
            "baseline_mean_hit_rate": metrics.hit_rate(mean_pred, refs, **tol),
            "baseline_random_hit_rate": metrics.hit_rate(list(random_pred), refs, **tol),
            "rows": float(len(refs)),
        }
        # error metrics of the model and of every baseline over the same rows: those answered
        kept = [i for i, p in enumerate(preds) if p is not None]
        run["mae_rows"] = float(len(kept))
        if kept:
            ref_kept = [refs[i] for i in kept]
            for name, values in (
                ("", [preds[i] or 0.0 for i in kept]),
                ("baseline_mean_", [refs_mean] * len(kept)),
                ("baseline_random_", [random_pred[i] for i in kept]),
            ):
                run[f"{name}mae"] = metrics.mae(values, ref_kept)
                run[f"{name}rmse"] = metrics.rmse(values, ref_kept)
        per_row: dict[str, list[float | None]] = {
            "hit": list(hits),
            "abs_error": errors,
            "prediction": list(preds),
        }
        return SuiteOutput([ex.id for ex in examples], per_row, run, answers)


class Choice(Suite):
    """Multiple-choice accuracy by option log-likelihood (raw and per character)."""

    name = "choice"
    metrics = ("correct", "correct_norm")

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        usable = [ex for ex in examples if ex.choices and ex.answer is not None]
        if not usable:
            raise EvalError(
                f"suite choice needs rows with options and an answer (meta `choices` or "
                f"`options`, and `answer`); none of the {len(examples)} rows has them"
            )
        return usable

    def run(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> SuiteOutput:
        correct: list[float] = []
        correct_norm: list[float] = []
        chance = []
        for ex in examples:
            prompt, _ = ex.prompt_and_reference()
            if ex.choices is None or ex.answer is None:
                raise EvalError(f"suite choice: row {ex.id} has no options or answer")
            encoded = [
                encode_continuation(tokenizer, context, cont, special, options.max_length)
                for context, cont, special in option_items(tokenizer, prompt, ex.choices)
            ]
            scored = score_encoded(model, tokenizer, encoded, batch_size=options.batch_size)
            loglik = [-s.loss_sum for s in scored]
            chars = [max(len(c), 1) for c in ex.choices]
            correct.append(metrics.choice_correct(loglik, ex.answer))
            correct_norm.append(
                metrics.choice_correct(
                    [ll / n for ll, n in zip(loglik, chars, strict=True)], ex.answer
                )
            )
            chance.append(1.0 / len(ex.choices))
            if progress:
                progress(1)
        run = {
            "accuracy": float(np.mean(correct)),
            "accuracy_norm": float(np.mean(correct_norm)),
            "baseline_chance": float(np.mean(chance)),
            "rows": float(len(correct)),
        }
        per_row: dict[str, list[float | None]] = {
            "correct": list(correct),
            "correct_norm": list(correct_norm),
        }
        return SuiteOutput([ex.id for ex in examples], per_row, run)


def with_references(suite: str, examples: Sequence[EvalExample]) -> list[EvalExample]:
    kept = [ex for ex in examples if ex.prompt_and_reference()[1] not in (None, "")]
    if not kept:
        raise EvalError(
            f"suite {suite} needs references, and none of the {len(examples)} rows has one "
            "(an assistant turn, a completion, or a meta field such as canonical_solution)"
        )
    return kept


def prompts_and_refs(examples: Sequence[EvalExample]) -> tuple[list[Any], list[str]]:
    pairs = [ex.prompt_and_reference() for ex in examples]
    return [p for p, _ in pairs], [str(r) for _, r in pairs]
