"""Token counts: the real SmolLM2 tokenizer on a tiny table, plus rerun/replace/where/resume."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curation import CurationError, Lake
from curation.models import load_tokenizer
from curation.steps import apply, column_provenance
from curation.steps.tokens import TokenCountStep

COLUMNS = "n_tokens, n_prompt_tokens, n_completion_tokens"


def _by_kind(lake: Lake) -> dict[str, dict]:
    rows = lake.sql(f"SELECT id, kind, text, messages, {COLUMNS} FROM records").to_pylist()
    return {r["id"]: r for r in rows}


@pytest.mark.slow
def test_counts_match_the_smollm2_tokenizer(sample_lake: Lake) -> None:
    report = apply(TokenCountStep(), sample_lake)
    assert report.rows_computed == 6 and report.version == sample_lake.latest_version()
    tok = load_tokenizer("smollm2")
    for row in _by_kind(sample_lake).values():
        if row["kind"] == "text":
            assert row["n_tokens"] == len(tok(row["text"])["input_ids"])
            assert row["n_prompt_tokens"] is None and row["n_completion_tokens"] is None
            continue
        turns = row["messages"]
        full = tok.apply_chat_template(turns, tokenize=False)
        reply = turns[-1]["content"] + "<|im_end|>"
        prompt = full[: full.rindex(reply)]
        n_full = len(tok(full, add_special_tokens=False)["input_ids"])
        n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
        n_reply = len(tok(reply, add_special_tokens=False)["input_ids"])
        assert row["n_tokens"] == n_full
        assert row["n_prompt_tokens"] == n_prompt
        # the reply and its end-of-turn token; the template's newline after it is not loss
        assert row["n_completion_tokens"] == n_reply == n_full - n_prompt - 1 > 0
    field = sample_lake.records().schema.field("n_tokens")
    assert column_provenance(field)["params"] == {
        "template": "chat_template",
        "tokenizer": "smollm2",
    }

    again = apply(TokenCountStep(), sample_lake)
    assert again.no_op and again.rows_computed == 0


@pytest.fixture
def char_tokenizer(tmp_path: Path) -> Path:
    """A tiny local whitespace tokenizer without a chat template (no model download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]")
    folder = tmp_path / "ws-tokenizer"
    fast.save_pretrained(folder)
    return folder


def test_local_tokenizer_without_template_counts_words(
    sample_lake: Lake, char_tokenizer: Path
) -> None:
    apply(TokenCountStep(str(char_tokenizer)), sample_lake)
    rows = {r["kind"]: r for r in _by_kind(sample_lake).values()}
    text = rows["text"]
    assert text["n_tokens"] == len(text["text"].replace(".", " .").split())
    pref = rows["preference"]  # "Say something kind." / "You are doing great."
    assert (pref["n_prompt_tokens"], pref["n_completion_tokens"]) == (4, 5)
    params = column_provenance(sample_lake.records().schema.field("n_tokens"))["params"]
    assert params == {"template": "joined_contents", "tokenizer": str(char_tokenizer.resolve())}


def test_other_tokenizer_refuses_without_replace(sample_lake: Lake, char_tokenizer: Path) -> None:
    apply(TokenCountStep(str(char_tokenizer)), sample_lake)
    other = char_tokenizer.parent / "other"
    char_tokenizer.rename(other)
    before = sample_lake.latest_version()
    with pytest.raises(CurationError, match="--replace"):
        apply(TokenCountStep(str(other)), sample_lake)
    assert sample_lake.latest_version() == before
    report = apply(TokenCountStep(str(other)), sample_lake, replace=True)
    assert report.rows_computed == 6
    field = sample_lake.records().schema.field("n_tokens")
    assert column_provenance(field)["params"]["tokenizer"] == str(other.resolve())


def test_where_then_fill_the_rest(sample_lake: Lake, char_tokenizer: Path) -> None:
    step = TokenCountStep(str(char_tokenizer))
    first = apply(step, sample_lake, where="kind = 'chat'")
    assert first.rows_computed == 4
    counted = sample_lake.sql("SELECT count(n_tokens) AS n FROM records").to_pylist()[0]["n"]
    assert counted == 4
    second = apply(step, sample_lake)
    assert second.rows_computed == 2
    assert sample_lake.sql("SELECT count(n_tokens) AS n FROM records").to_pylist()[0]["n"] == 6


class _CrashOnSecondBatch(TokenCountStep):
    calls = 0

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        type(self).calls += 1
        if type(self).calls == 2:
            raise RuntimeError("killed mid-step")
        return super().__call__(batch)


def test_interrupted_step_resumes_with_one_version(sample_lake: Lake, char_tokenizer: Path) -> None:
    before = sample_lake.latest_version()
    with pytest.raises(CurationError, match="killed mid-step"):
        apply(_CrashOnSecondBatch(str(char_tokenizer)), sample_lake, batch_size=2)
    assert sample_lake.latest_version() == before
    assert "n_tokens" not in sample_lake.records().schema.names
    report = apply(TokenCountStep(str(char_tokenizer)), sample_lake, batch_size=2)
    assert report.resumed and report.rows_computed == 4  # the first batch came from the checkpoint
    assert sample_lake.latest_version() == before + 1
    assert sample_lake.sql("SELECT count(n_tokens) AS n FROM records").to_pylist()[0]["n"] == 6


def test_missing_tokenizer_folder_is_a_clear_error(sample_lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(CurationError, match="no such local folder"):
        apply(TokenCountStep(str(tmp_path / "missing")), sample_lake)


SHAPES = [
    {"messages": [{"role": "user", "content": "Just one question, no answer"}]},
    {"messages": [{"role": "assistant", "content": "I speak first."}]},
    {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
        ]
    },
]


@pytest.mark.slow
def test_every_chat_shape_gets_non_negative_counts(tmp_path: Path) -> None:
    """User-only rows were written as n_completion_tokens = -4 (the generation prompt)."""
    from curation.testing import make_lake

    lake = make_lake(tmp_path, {"shapes": SHAPES})
    apply(TokenCountStep(), lake)
    tok = load_tokenizer("smollm2")
    rows = {r["messages"][0]["content"]: r for r in _by_kind(lake).values()}
    only_user = rows["Just one question, no answer"]
    assert only_user["n_completion_tokens"] == 0
    assert only_user["n_prompt_tokens"] == only_user["n_tokens"] > 0
    first = rows["I speak first."]
    n_reply = len(tok("I speak first.<|im_end|>", add_special_tokens=False)["input_ids"])
    assert first["n_completion_tokens"] == n_reply
    # the template's default system prompt and the assistant header are the prompt
    assert first["n_prompt_tokens"] == first["n_tokens"] - n_reply - 1 > 10
    middle = rows["Hi"]
    assert middle["n_completion_tokens"] == len(tok("Hello.<|im_end|>")["input_ids"])
    for r in rows.values():
        assert 0 <= r["n_completion_tokens"] <= r["n_tokens"] - r["n_prompt_tokens"]
