"""Suite scoring, with stub models whose answers are known.

Choice scoring by context/continuation log-likelihood, numeric MAE over the same rows, and
heldout's handling of chats without a reply.
"""

from __future__ import annotations

from typing import Any

import pytest

from evals import suite_base, suites
from evals.data import EvalExample
from evals.errors import EvalError
from evals.scoring import encode_continuation, option_items
from evals.suites import Choice, EvalOptions, Heldout, Numeric


@pytest.fixture(scope="module")
def smol_tok() -> Any:
    from curation.models import load_tokenizer

    return load_tokenizer("smollm2")


class Prefers:
    """A stub causal LM: every position predicts `token` with logit 10, the rest 0."""

    def __init__(self, token: int, vocab: int) -> None:
        self.token, self.vocab = token, vocab

    def __call__(self, input_ids: Any, attention_mask: Any = None) -> Any:
        import torch

        logits = torch.zeros((*input_ids.shape, self.vocab))
        logits[..., self.token] = 10.0
        return type("Out", (), {"logits": logits})()


def test_text_options_score_the_separating_space_with_the_option(smol_tok: Any) -> None:
    """Spans started after the space; byte-level BPE puts it in the token: 0 tokens scored."""
    items = option_items(smol_tok, "The capital of France is", ["London", "Paris"])
    assert [(c, cont) for c, cont, _ in items] == [
        ("The capital of France is", " London"),
        ("The capital of France is", " Paris"),
    ]
    for context, continuation, special in items:
        ids, keep = encode_continuation(smol_tok, context, continuation, special, 512)
        scored = [t for t, k in zip(ids, keep, strict=True) if k]
        assert smol_tok.decode(scored) == continuation and len(scored) >= 1
    # a prompt's trailing space moves into the continuation, as lm-evaluation-harness does
    assert option_items(smol_tok, "Answer: ", ["B"])[0][:2] == ("Answer:", " B")


def test_chat_options_are_the_start_of_the_reply(smol_tok: Any) -> None:
    chat = [{"role": "user", "content": "Capital of France?"}]
    context, continuation, special = option_items(smol_tok, chat, ["Paris"])[0]
    assert context.endswith("<|im_start|>assistant\n") and continuation == "Paris"
    ids, keep = encode_continuation(smol_tok, context, continuation, special, 512)
    assert smol_tok.decode([t for t, k in zip(ids, keep, strict=True) if k]) == "Paris"


def test_choice_picks_the_likelier_option_not_option_zero(smol_tok: Any) -> None:
    paris = smol_tok(" Paris", add_special_tokens=False)["input_ids"]
    assert len(paris) == 1
    model = Prefers(paris[0], len(smol_tok))
    ex = EvalExample(
        id="q", prompt="The capital of France is", choices=("London", "Paris"), answer=1
    )
    out = Choice().run(model, smol_tok, [ex], EvalOptions())
    assert out.per_row["correct"] == [1.0] and out.run_level["accuracy"] == 1.0
    assert out.per_row["correct_norm"] == [1.0]


def test_length_normalised_choice_divides_by_option_characters(smol_tok: Any) -> None:
    # every " Paris" token costs the same c ≈ 1.17 nats: raw log-likelihood prefers the short
    # option (−c > −3c), per character the long one (−c/5 < −3c/17)
    paris = smol_tok(" Paris", add_special_tokens=False)["input_ids"]
    assert smol_tok(" Paris Paris Paris", add_special_tokens=False)["input_ids"] == paris * 3
    ex = EvalExample(id="q", prompt="x", choices=("Paris", "Paris Paris Paris"), answer=1)
    out = Choice().run(Prefers(paris[0], len(smol_tok)), smol_tok, [ex], EvalOptions())
    assert out.per_row["correct"] == [0.0] and out.per_row["correct_norm"] == [1.0]
    assert set(out.run_level) >= {"accuracy", "accuracy_norm", "baseline_chance"}


def test_numeric_mae_of_model_and_baselines_over_the_same_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = ["It costs $50", "no idea", "10-20", "2 + 2 = 35"]
    monkeypatch.setattr(suite_base, "greedy_generate", lambda *a, **k: list(answers))
    refs = ["50", "20", "30", "35"]
    examples = [EvalExample(id=f"n{i}", prompt="q", completion=r) for i, r in enumerate(refs)]
    out = Numeric().run(None, None, examples, EvalOptions(seed=1))
    run = out.run_level
    assert out.per_row["prediction"] == [50.0, None, None, 35.0]
    assert run["mae_rows"] == 2 and run["mae"] == 0.0
    # mean of all references 33.75; on the answered rows it is off by 16.25 and 1.25
    assert run["baseline_mean_mae"] == pytest.approx((16.25 + 1.25) / 2)
    assert run["parse_failures"] == 2
    assert run["parse_failures_no_number"] == 1 and run["parse_failures_range"] == 1
    assert run["hit_rate"] == 0.5 and run["rows"] == 4


def test_heldout_leaves_out_chats_without_a_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    from evals.scoring import Scored

    seen: list[Any] = []

    def fake_score(model: Any, tok: Any, items: Any, **kw: Any) -> list[Scored]:
        seen.extend(items)
        return [Scored(2.0, 4) for _ in items]

    monkeypatch.setattr(suites, "score_texts", fake_score)
    monkeypatch.setattr(suites, "loss_text", lambda tok, ex: (ex.id, [(0, 1)], False))
    monkeypatch.setattr(suites, "scored_tokens", lambda tok, ex, n: 4)
    user_only = EvalExample(id="u", messages=({"role": "user", "content": "hi"},))
    chat = EvalExample(
        id="c",
        messages=({"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}),
    )
    out = Heldout().run(None, None, [user_only, chat], EvalOptions())
    assert out.ids == ["c"] and [s[0] for s in seen] == ["c"]
    assert out.run_level["rows_excluded_no_assistant"] == 1
    with pytest.raises(EvalError, match=r"no.*assistant turn"):
        Heldout().select([user_only])
