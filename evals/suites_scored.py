"""The `numeric` and `choice` suites (see `evals.suite_base` for the protocol).

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
from typing import Any

import numpy as np

from evals import metrics
from evals.data import EvalExample
from evals.errors import EvalError
from evals.numbers import parse_answer
from evals.scoring import Progress, encode_continuation, option_items, score_encoded
from evals.suite_base import (
    EvalOptions,
    PerRow,
    Suite,
    answer,
    prompts_and_refs,
    with_references,
)


class Numeric(Suite):
    """Numbers parsed from greedy answers, against the trivial baselines."""

    name = "numeric"
    metrics = ("hit", "abs_error", "prediction")
    lower_is_better = frozenset({"abs_error"})
    answers = True
    shaping_options = ("max_length", "max_new_tokens", "relative_tolerance", "absolute_tolerance")

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        """The examples whose reference parses as a number."""
        with_refs = with_references(self.name, examples)
        numeric = [
            ex for ex in with_refs if metrics.parse_number(ex.prompt_and_reference()[1]) is not None
        ]
        if not numeric:
            raise EvalError(
                f"suite numeric: none of the {len(with_refs)} references parses as a number"
            )
        return numeric

    def compute(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> PerRow:
        """Greedy answers, the number each holds, its hit and absolute error."""
        prompts, ref_texts = prompts_and_refs(examples)
        refs = _refs(ref_texts)
        answers = answer(model, tokenizer, prompts, options, progress)
        preds = [parse_answer(a).value for a in answers]
        pairs = list(zip(preds, refs, strict=True))
        return {
            "hit": [metrics.within_tolerance(p, r, **_tol(options)) for p, r in pairs],
            "abs_error": [None if p is None else abs(p - r) for p, r in pairs],
            "prediction": preds,
            "answer": answers,
        }

    def aggregate(
        self,
        examples: Sequence[EvalExample],
        per_row: PerRow,
        options: EvalOptions,
        tokenizer: Any,
    ) -> dict[str, float]:
        """Hit rates, parse failures by reason, and errors of model and baselines."""
        refs = _refs(prompts_and_refs(examples)[1])
        preds = [None if p is None else float(p) for p in per_row["prediction"]]
        tol = _tol(options)
        refs_mean = float(np.mean(refs))
        rng = np.random.default_rng(options.seed)
        random_pred = [float(v) for v in rng.uniform(min(refs), max(refs), size=len(refs))]
        failures = Counter(
            parse_answer(a).failure if a is not None else "unknown"
            for a, p in zip(per_row["answer"], preds, strict=True)
            if p is None
        )
        run = {
            "hit_rate": float(np.mean(per_row["hit"])),
            "parsed_rate": (len(refs) - sum(failures.values())) / len(refs),
            "parse_failures": float(sum(failures.values())),
            **{f"parse_failures_{why}": float(n) for why, n in sorted(failures.items())},
            "baseline_mean_hit_rate": metrics.hit_rate([refs_mean] * len(refs), refs, **tol),
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
        return run


class Choice(Suite):
    """Multiple-choice accuracy by option log-likelihood (raw and per character)."""

    name = "choice"
    metrics = ("correct", "correct_norm")

    def select(self, examples: Sequence[EvalExample]) -> list[EvalExample]:
        """The examples with options and an answer."""
        usable = [ex for ex in examples if ex.choices and ex.answer is not None]
        if not usable:
            raise EvalError(
                f"suite choice needs rows with options and an answer (meta `choices` or "
                f"`options`, and `answer`); none of the {len(examples)} rows has them"
            )
        return usable

    def compute(
        self,
        model: Any,
        tokenizer: Any,
        examples: Sequence[EvalExample],
        options: EvalOptions,
        progress: Progress | None = None,
    ) -> PerRow:
        """Whether the likeliest option (raw, and per character) is the answer."""
        correct: list[Any] = []
        correct_norm: list[Any] = []
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
            per_char = [ll / n for ll, n in zip(loglik, chars, strict=True)]
            correct.append(metrics.choice_correct(loglik, ex.answer))
            correct_norm.append(metrics.choice_correct(per_char, ex.answer))
            if progress:
                progress(1)
        return {"correct": correct, "correct_norm": correct_norm}

    def aggregate(
        self,
        examples: Sequence[EvalExample],
        per_row: PerRow,
        options: EvalOptions,
        tokenizer: Any,
    ) -> dict[str, float]:
        """Accuracy, length-normalised accuracy and the chance baseline."""
        return {
            "accuracy": float(np.mean(per_row["correct"])),
            "accuracy_norm": float(np.mean(per_row["correct_norm"])),
            "baseline_chance": float(np.mean([1.0 / len(ex.choices or (0,)) for ex in examples])),
            "rows": float(len(examples)),
        }


def _refs(texts: Sequence[str]) -> list[float]:
    return [float(metrics.parse_number(r) or 0.0) for r in texts]


def _tol(options: EvalOptions) -> dict[str, float]:
    return {"absolute": options.absolute_tolerance, "relative": options.relative_tolerance}
