"""`mixlake tokens`, `mixlake score` and `mixlake label` end to end through `mixlake.cli.main`."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation import Lake
from curation.models import load_tokenizer
from curation.steps import apply
from curation.testing import make_lake
from mixlake.cli import main
from tests.curation.test_steps_classifier import BAD, GOOD, FakeEmbedStep


class Cli:
    """Runs `mixlake` against one lake and returns (exit code, stdout, stderr)."""

    def __init__(self, lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
        self.lake = lake
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([*args, "--lake", self.lake.uri])
        out, err = self.capsys.readouterr()
        return code, " ".join(out.split()), " ".join(err.split())

    def ok(self, *args: str) -> str:
        """Stdout and stderr (where the summary goes) of a successful run, whitespace-folded."""
        code, out, err = self(*args)
        assert code == 0, err
        return f"{out} {err}"


@pytest.fixture
def cli(sample_lake: Lake, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(sample_lake, capsys)


@pytest.mark.slow
def test_tokens_with_the_shipped_tokenizer(cli: Cli) -> None:
    out = cli.ok("tokens")
    assert "rows computed: 6" in out and "tokenizer: smollm2" in out
    total = cli.lake.sql("SELECT sum(n_tokens)::BIGINT AS t FROM records").to_pylist()[0]["t"]
    assert f"total tokens: {total:,}" in out
    assert "already there" in cli.ok("tokens")
    code, _, err = cli("tokens", "--tokenizer", "/no/such/tokenizer")
    assert code == 2 and "no such local folder" in err


def test_heuristic_score_summary_counts_reasons(cli: Cli) -> None:
    out = cli.ok("score", "quality_heuristic_v1")
    assert "rows computed: 6" in out
    short = cli.lake.sql(
        "SELECT count(*) AS n FROM records WHERE len(regexp_split_to_array(trim(text), '\\s+')) < 8"
    ).to_pylist()[0]["n"]
    assert short == 4 and "dropped for too_short: 4" in out
    version = cli.lake.latest_version()
    assert "no new version" in cli.ok("score", "quality_heuristic_v1")
    assert cli.lake.latest_version() == version


def test_unknown_scorer_and_bad_where_are_one_line_errors(cli: Cli) -> None:
    code, _, err = cli("score", "quality_vibes_v2")
    assert code == 2 and "quality_heuristic_v1, quality_classifier_v1, quality_judge_v1" in err
    code, _, err = cli("score", "quality_heuristic_v1", "--where", "no_such_column > 1")
    assert code == 2 and "bad --where predicate" in err
    assert "quality_heuristic_v1" not in cli.lake.records().schema.names


def test_label_and_classifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"text": GOOD.format(i=i)} for i in range(20)]
    rows += [{"text": BAD.format(i=i)} for i in range(20)]
    lake = make_lake(tmp_path, {"web": rows})
    cli = Cli(lake, capsys)
    code, _, err = cli("score", "quality_classifier_v1")
    assert code == 2 and "mixlake embed" in err
    apply(FakeEmbedStep(), lake)

    out = cli.ok(
        "label", "--sql", "SELECT id FROM records WHERE text LIKE 'a clear%'", "--value", "good"
    )
    assert "rows: 20" in out and "good: 20" in out
    code, _, err = cli("score", "quality_classifier_v1")
    assert code == 2 and "both classes" in err
    first_bad = lake.sql("SELECT id FROM records WHERE text LIKE 'buy%' ORDER BY id").column("id")
    csv = tmp_path / "labels.csv"
    csv.write_text("id,label\n" + "".join(f"{i},bad\n" for i in first_bad.to_pylist()[:12]))
    out = cli.ok("label", "--csv", str(csv))
    assert "bad: 12" in out and "labelled in all: 32" in out

    out = cli.ok("score", "quality_classifier_v1")
    assert "rows computed: 40" in out and "held-out accuracy: 1.000 on 8 rows" in out
    code, _, err = cli("label", "--sql", "SELECT id FROM records", "--value", "meh")
    assert code == 2 and "--value: label 'meh'" in err
    code, _, err = cli("label")
    assert code == 2 and "exactly one of --csv" in err


@pytest.fixture
def tiny_chat_model(tmp_path: Path) -> Path:
    """A random 1-layer Llama with the SmolLM2 tokenizer: exercises `--model PATH` in seconds."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer("smollm2")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
    )
    folder = tmp_path / "tiny-chat"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_judge_with_a_local_model_and_where(cli: Cli, tiny_chat_model: Path) -> None:
    out = cli.ok(
        "score", "quality_judge_v1", "--model", str(tiny_chat_model), "--where", "kind = 'chat'"
    )
    assert "rows computed: 4" in out and "parse failures:" in out
    replies = cli.lake.sql(
        "SELECT count(quality_judge_v1_reply) AS n FROM records WHERE kind = 'chat'"
    ).to_pylist()[0]["n"]
    assert replies == 4
    code, _, err = cli("score", "quality_judge_v1", "--model", str(tiny_chat_model.parent / "x"))
    assert code == 2 and "no such local folder" in err
