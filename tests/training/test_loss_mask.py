"""Which tokens carry loss: assistant replies and their end-of-turn token, nothing else.

Rows that cannot carry loss are left out with a count; packed examples do not see each other.
"""

from __future__ import annotations

from typing import Any

import pytest

from training.data import (
    IGNORE,
    NO_ASSISTANT,
    TRUNCATED_AWAY,
    TokenStream,
    encode,
    eval_examples,
)
from training.packing import PackedCollator, padding_waste, position_ids
from training.testing import texts_of, toy_chat_rows, train_tokenizer

USER_ONLY = {"messages": [{"role": "user", "content": "what color is the sky number 9 ?"}]}


@pytest.fixture(scope="module")
def tok() -> Any:
    return train_tokenizer(texts_of([*toy_chat_rows(8), USER_ONLY]))


def scored(enc: Any, tokenizer: Any) -> str:
    return str(tokenizer.decode([t for t in enc.labels if t != IGNORE]))


def test_a_user_only_chat_carries_no_loss(tok: Any) -> None:
    """It was trained on every token (the system prompt too) under completion-only loss."""
    enc = encode(USER_ONLY, tok, 64, completion_only=True)
    assert enc.loss_tokens == 0 and enc.excluded == NO_ASSISTANT
    # without completion-only loss every token is trained, as asked
    assert encode(USER_ONLY, tok, 64, completion_only=False).excluded is None


def test_reply_and_end_token_carry_loss_header_does_not(tok: Any) -> None:
    row = toy_chat_rows(1)[0]
    enc = encode(row, tok, 64)
    assert scored(enc, tok) == "the apple is red . </s>"
    first = {"messages": [{"role": "assistant", "content": "the sky is blue ."}]}
    assert scored(encode(first, tok, 64), tok) == "the sky is blue . </s>"


class Source:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.info = type("Info", (), {"seed": 0})()

    def ids(self, split: str) -> list[str]:
        return [f"r{i}" for i in range(len(self.rows))]

    def positions(self, split: str) -> list[int]:
        return list(range(len(self.rows)))

    def fetch(self, split: str, idx: list[int]) -> list[dict[str, Any]]:
        return [self.rows[i] for i in idx]


def test_truncated_rows_are_counted_and_rows_without_loss_left_out(tok: Any) -> None:
    rows = [*toy_chat_rows(3), USER_ONLY]
    # each chat is 21 tokens, its reply starts at token 15: 18 keep 3 reply tokens, 15 none
    stream = TokenStream(Source(rows), "train", tok, 18, False, True, total_items=6)
    report = stream.report()
    assert report.rows == 4 and report.truncated == 3
    assert report.excluded == {NO_ASSISTANT: 1} and report.trained == 3
    items = list(stream)
    seen = [m.record_id for i in items for m in i.members]
    assert seen[:3] == ["r0", "r1", "r2"] and sorted(seen[3:]) == ["r0", "r1", "r2"]
    short = TokenStream(Source(rows), "train", tok, 15, False, True, total_items=2)
    assert short.report().excluded == {NO_ASSISTANT: 1, TRUNCATED_AWAY: 3}
    assert short.report().as_metrics()["rows_trained"] == 0
    # the trainer's eval split leaves them out too (they were scored on every token)
    evals = eval_examples(Source(rows), "val", tok, 18, True)
    assert len(evals) == 3 and all(len(e["seq_lengths"]) == 1 for e in evals)


def test_position_ids_restart_per_example_and_padding_is_its_own_block() -> None:
    assert position_ids([3, 2], 7) == [0, 1, 2, 0, 1, 0, 1]
    batch = PackedCollator(pad_token_id=1)(
        [
            {"input_ids": [5, 6, 7], "labels": [5, 6, 7], "seq_lengths": [2, 1]},
            {"input_ids": [8], "labels": [8], "seq_lengths": [1]},
        ]
    )
    assert batch["position_ids"].tolist() == [[0, 1, 0], [0, 0, 1]]
    assert batch["labels"].tolist() == [[5, 6, 7], [8, IGNORE, IGNORE]]
    assert "attention_mask" not in batch
    assert padding_waste([[3], [1]], 2) == pytest.approx(1 / 3)
    assert padding_waste([[2, 1], [1]], 1) == 0.0


def test_a_packed_example_scores_as_it_does_alone(tok: Any, tmp_path: Any) -> None:
    """With an all-ones mask the second example attended to the first one (its loss dropped)."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.packing import no_kv_cache
    from training.testing import make_tiny_llama

    folder = make_tiny_llama(tmp_path / "m", [], tokenizer=tok)
    model = no_kv_cache(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)).eval()
    a = encode(toy_chat_rows(2)[0], tok, 64)
    b = encode(USER_ONLY, tok, 64, completion_only=False)

    def member_losses(
        items: list[dict[str, Any]], spans: list[tuple[int, int, int]]
    ) -> list[float]:
        batch = PackedCollator(int(tok.pad_token_id))(items)
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        logp = torch.log_softmax(logits[:, :-1].float(), -1)
        target = batch["labels"][:, 1:]
        out = []
        for row, lo, hi in spans:
            t = target[row, lo:hi]
            keep = t != IGNORE
            picked = logp[row, lo:hi][keep].gather(-1, t[keep][:, None])
            out.append(-float(picked.mean()))
        return out

    na = len(a.input_ids)
    alone = member_losses(
        [
            {"input_ids": a.input_ids, "labels": a.labels, "seq_lengths": [na]},
            {"input_ids": b.input_ids, "labels": b.labels, "seq_lengths": [len(b.input_ids)]},
        ],
        [(0, 0, na - 1), (1, 0, len(b.input_ids) - 1)],
    )
    packed_labels = [*a.labels, IGNORE, *b.labels[1:]]
    packed = {
        "input_ids": a.input_ids + b.input_ids,
        "labels": packed_labels,
        "seq_lengths": [na, len(b.input_ids)],
    }
    together = member_losses([packed], [(0, 0, na - 1), (0, na, len(packed_labels) - 1)])
    assert together == pytest.approx(alone, abs=1e-5)
    leaky = dict(packed, seq_lengths=[len(packed_labels)])  # one block: the old all-ones mask
    assert member_losses([leaky], [(0, na, len(packed_labels) - 1)])[0] != pytest.approx(
        alone[1], abs=1e-5
    )


@pytest.mark.slow
def test_labels_match_trl_but_for_the_template_newline(tmp_path: Any) -> None:
    """The completion mask of trl 1.16 for SmolLM2's template, through `SFTTrainer`."""
    import datasets
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    from curation.models import load_tokenizer

    smol = load_tokenizer("smollm2")
    user = {"role": "user", "content": "What is 2+2?"}
    reply = {"role": "assistant", "content": "It is 4."}
    config = LlamaConfig(
        vocab_size=len(smol),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    trainer = SFTTrainer(
        model=LlamaForCausalLM(config),
        args=SFTConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, max_length=128),
        train_dataset=datasets.Dataset.from_list([{"prompt": [user], "completion": [reply]}]),
        processing_class=smol,
    )
    theirs = trainer.train_dataset[0]
    ours = encode({"messages": [user, reply]}, smol, 128)
    assert ours.input_ids == theirs["input_ids"]
    their_loss = [
        t for t, lab in zip(theirs["input_ids"], theirs["labels"], strict=True) if lab != IGNORE
    ]
    our_loss = [t for t in ours.labels if t != IGNORE]
    assert smol.decode(their_loss) == "It is 4.<|im_end|>\n"
    assert our_loss == their_loss[:-1] and smol.decode(our_loss) == "It is 4.<|im_end|>"
