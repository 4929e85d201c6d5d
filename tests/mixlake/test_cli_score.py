"""`mixlake tokens`, `mixlake score` and `mixlake label` end to end through `mixlake.cli.main`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from curation import Lake
from curation.models import load_tokenizer
from curation.steps import apply, column_provenance
from curation.steps.registry import lookup_step, register_step, run_step, unregister_step
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


@pytest.fixture
def toy_scorer() -> Iterator[type]:
    """A scorer defined here, registered for the test only: one class is all a scorer is."""

    @register_step("quality_toy_v1", group="score")
    class ToyScorer:
        """Share of vowels among the letters of `text`, plus a bonus."""

        name = "quality_toy_v1"
        input_columns: tuple[str, ...] = ("text",)
        model_step = False

        @dataclass(frozen=True)
        class Params:
            """Parameters of the toy scorer.

            Attributes:
                bonus: Added to every score.
                letters_only: Count letters only (else every character).
            """

            bonus: float = 0.0
            letters_only: bool = True

        def __init__(self, bonus: float = 0.0, letters_only: bool = True) -> None:
            self.bonus, self.letters_only = bonus, letters_only

        def params(self) -> dict[str, Any]:
            return {"bonus": self.bonus, "letters_only": self.letters_only}

        def output_schema(self) -> pa.Schema:
            return pa.schema([pa.field(self.name, pa.float32())])

        def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
            scores = [toy_score(t or "", self.bonus) for t in batch.column("text").to_pylist()]
            return pa.RecordBatch.from_arrays(
                [pa.array(scores, pa.float32())], schema=self.output_schema()
            )

    yield ToyScorer
    unregister_step("quality_toy_v1")


def toy_score(text: str, bonus: float) -> float:
    letters = [c for c in text.lower() if c.isalpha()]
    return sum(c in "aeiou" for c in letters) / max(1, len(letters)) + bonus


def test_a_registered_scorer_is_a_command_with_its_typed_options(
    cli: Cli, toy_scorer: type
) -> None:
    cli.capsys.readouterr()
    assert main(["score", "--help"]) == 0
    listed = cli.capsys.readouterr().out
    assert "quality_toy_v1" in listed and "quality_judge_v1" in listed
    code, out, _ = cli("score", "quality_toy_v1", "--help")
    assert code == 0 and "--bonus" in out and "Added to every score" in out and "--where" in out
    code, _, err = cli("score", "quality_toy_v1", "--bonus", "lots")
    assert code == 2 and "Invalid value for '--bonus'" in err

    out = cli.ok("score", "quality_toy_v1", "--bonus", "0.5", "--where", "kind = 'text'")
    rows = cli.lake.sql(
        "SELECT kind, text, quality_toy_v1 AS s FROM records ORDER BY id"
    ).to_pylist()
    texts = [r for r in rows if r["kind"] == "text"]
    assert texts and f"rows computed: {len(texts)}" in out and "quality_toy_v1" in out
    for r in rows:
        expected = toy_score(r["text"], 0.5) if r["kind"] == "text" else None
        assert r["s"] == (pytest.approx(expected, abs=1e-6) if expected is not None else None)
    field = cli.lake.records().schema.field("quality_toy_v1")
    assert column_provenance(field)["params"] == {"bonus": 0.5, "letters_only": True}

    code, _, err = cli("score", "quality_toy_v1", "--bonus", "0.25")
    assert code == 2 and "--replace" in err
    params = lookup_step("quality_toy_v1").make_params(bonus=0.25)
    report = run_step("quality_toy_v1", cli.lake, params, replace=True)
    assert report.rows_computed == len(rows) and report.version == cli.lake.latest_version()


def test_an_unregistered_step_is_gone_from_the_cli(cli: Cli, toy_scorer: type) -> None:
    assert cli("score", "quality_toy_v1", "--help")[0] == 0
    unregister_step("quality_toy_v1")
    cli.capsys.readouterr()
    code = main(["score", "quality_toy_v1", "--lake", cli.lake.uri])
    out, err = cli.capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "unknown score step 'quality_toy_v1'" in err and "quality_judge_v1" in err
