"""`evaluate` end to end on a tiny random Llama: suites, mixes, runs, and early errors."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest

from curation import Lake
from curation.steps import column_provenance
from evals import EvalError, EvalOptions, evaluate
from evals.models import load_model
from evals.targets import Target
from queries import materialize_mix, parse_spec
from training.runs import Run, save_run

MIX_SPEC = """
name: chat-eval
records: latest
seed: 3
total_rows: 6
components:
  - name: all
    sql: source = 'chat'
    weight: 1.0
splits: {train: 0.5, test: 0.5}
format: {template: chat}
"""


def _never(target: Target) -> tuple[Any, Any]:
    raise AssertionError(f"a model was loaded for {target.label}")


def _column(lake: Lake, name: str) -> dict[str, Any]:
    table = lake.records().to_table(columns=["id", name])
    return dict(zip(table["id"].to_pylist(), table[name].to_pylist(), strict=True))


def test_heldout_loss_is_the_mean_over_assistant_tokens(eval_lake: Lake, tiny_llama: Path) -> None:
    import torch

    result = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="chat")
    assert result.target == "base_tiny_llama" and result.rows == 6
    assert result.columns == (
        "eval_base_tiny_llama_heldout_loss",
        "eval_base_tiny_llama_heldout_perplexity",
    )
    losses = _column(eval_lake, result.columns[0])
    # Recompute one row by hand with transformers' own loss and a label mask.
    model, tok = load_model(Target("x", str(tiny_llama)))
    row = eval_lake.sql(
        "SELECT id, messages FROM records WHERE source = 'chat' LIMIT 1"
    ).to_pylist()[0]
    prompt = tok.apply_chat_template(
        row["messages"][:1], tokenize=False, add_generation_prompt=True
    )
    full = tok.apply_chat_template(row["messages"], tokenize=False)
    ids = tok(full, add_special_tokens=False, return_tensors="pt")["input_ids"]
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    labels = ids.clone()
    labels[0, :n_prompt] = -100
    with torch.no_grad():
        expected = model(input_ids=ids, labels=labels).loss.item()
    assert losses[row["id"]] == pytest.approx(expected, rel=1e-4)
    ppl = _column(eval_lake, result.columns[1])[row["id"]]
    assert ppl == pytest.approx(math.exp(expected), rel=1e-4)
    assert result.run_level["tokens"] == 6 * 5  # "fine thanks number i </s>" per row
    # rows of other sources were not evaluated: null, not zero
    others = eval_lake.sql(f"SELECT {result.columns[0]} AS v FROM records WHERE source <> 'chat'")
    assert others["v"].null_count == others.num_rows


def test_generation_numeric_and_choice_suites(eval_lake: Lake, tiny_llama: Path) -> None:
    gen = evaluate(eval_lake, str(tiny_llama), "generation", eval_set="qa")
    assert gen.rows == 3 and len(gen.predictions) == 3
    assert set(gen.run_level) >= {"exact_match", "rouge_l", "bleu", "chrf"}
    assert all(0 <= v <= 100 for v in gen.per_row["chrf"] if v is not None)
    num = evaluate(eval_lake, str(tiny_llama), "numeric", eval_set="prices")
    # references $10..$40: the mean predictor (25) is off by 15, 5, 5, 15 — but MAE (model and
    # baselines alike) is over the rows whose answer parsed, the same rows for all of them
    refs = {10.0 * (i + 1) for i in range(4)}
    answered = [p for p in num.per_row["prediction"] if p is not None]
    assert num.run_level["mae_rows"] == len(answered)
    assert num.run_level["parse_failures"] == 4 - len(answered)
    if answered:
        errors = [e for e in num.per_row["abs_error"] if e is not None]
        assert num.run_level["mae"] == pytest.approx(sum(errors) / len(errors))
        assert "baseline_mean_mae" in num.run_level
    assert num.run_level["rows"] == 4 and len(refs) == 4
    assert set(num.per_row["hit"]) <= {0.0, 1.0}
    choice = evaluate(eval_lake, str(tiny_llama), "choice", eval_set="quiz")
    assert choice.run_level["baseline_chance"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert set(choice.per_row["correct"]) <= {0.0, 1.0}
    names = eval_lake.records().schema.names
    assert "eval_base_tiny_llama_choice_correct" in names
    assert "eval_base_tiny_llama_numeric_abs_error" in names


def test_a_meta_reference_is_the_scored_completion(eval_lake: Lake, tiny_llama: Path) -> None:
    # human-eval shape: prompt in `text`, reference in meta `canonical_solution`
    held = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="code")
    assert held.run_level["tokens"] == 4  # "return a + b": only the solution is scored
    gen = evaluate(eval_lake, str(tiny_llama), "generation", eval_set="code")
    assert gen.rows == 1 and gen.per_row["exact_match"] in ([0.0], [1.0])


def test_mix_split_and_run_target(eval_lake: Lake, tiny_llama: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    mix = materialize_mix(eval_lake, parse_spec(MIX_SPEC))
    test_ids = set(mix.rows("test")["id"].to_pylist())
    adapter = tmp_path / "run" / "adapter"
    lora = LoraConfig(
        r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama), lora).save_pretrained(adapter)
    now = dt.datetime.now(dt.UTC)
    save_run(
        eval_lake,
        Run(
            "r0a1b2c3d",
            "chat-eval",
            mix.version,
            mix.checksum,
            mix.records_version,
            f"base_model: {tiny_llama}\nload_in_4bit: false\n",
            None,
            "finished",
            {},
            {},
            str(adapter),
            now,
            now,
        ),
    )
    base = evaluate(eval_lake, str(tiny_llama), "heldout", mix="chat-eval")
    tuned = evaluate(eval_lake, "r0a1b2c3d", "heldout")  # the run's own mix by default
    assert tuned.target == "r0a1b2c3d" and tuned.mix == "chat-eval"
    assert tuned.mix_checksum == mix.checksum and set(tuned.ids) == test_ids
    assert set(base.ids) == test_ids
    # the adapter changes the model: per-row losses differ from the base model's
    assert tuned.per_row["loss"] != base.per_row["loss"]
    written = _column(eval_lake, "eval_r0a1b2c3d_heldout_loss")
    assert {i for i, v in written.items() if v is not None} == test_ids
    evals = eval_lake.sql("SELECT DISTINCT run_id, mix, split FROM evals ORDER BY run_id")
    assert evals.to_pylist() == [
        {"run_id": "base_tiny_llama", "mix": "chat-eval", "split": "test"},
        {"run_id": "r0a1b2c3d", "mix": "chat-eval", "split": "test"},
    ]


def test_evaluating_twice_adds_no_columns_and_no_version(eval_lake: Lake, tiny_llama: Path) -> None:
    first = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="chat", limit=2)
    n_cols = len(eval_lake.records().schema.names)
    version = eval_lake.latest_version()
    # nothing left to compute: the model is not even loaded, and the aggregates are the same
    again = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="chat", limit=2, loader=_never)
    assert again.version is None and first.version == version
    assert again.run_level == first.run_level and again.ids == first.ids
    assert len(eval_lake.records().schema.names) == n_cols
    assert eval_lake.latest_version() == version
    values = _column(eval_lake, first.columns[0])
    assert sum(v is not None for v in values.values()) == 2  # --limit 2: the rest stay null


def test_progress_counts_the_rows_evaluated_not_the_table(
    eval_lake: Lake, tiny_llama: Path
) -> None:
    seen: list[tuple[int, int]] = []
    evaluate(
        eval_lake,
        str(tiny_llama),
        "heldout",
        eval_set="chat",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen and seen[-1] == (6, 6) and eval_lake.records().count_rows() > 6
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_replace_recomputes_the_rows_evaluated_and_keeps_the_others(
    eval_lake: Lake, tiny_llama: Path
) -> None:
    first = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="chat", limit=3)
    before = _column(eval_lake, first.columns[0])
    again = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="chat", limit=2, replace=True)
    assert again.version == first.version + 1 and again.rows == 2  # type: ignore[operator]
    after = _column(eval_lake, first.columns[0])
    evaluated = {i: v for i, v in before.items() if v is not None}
    assert len(evaluated) == 3
    # the third row kept its value; the two recomputed ones agree with the first eval
    assert {i: after[i] for i in evaluated} == pytest.approx(evaluated, rel=1e-4)
    assert sum(v is not None for v in after.values()) == 3
    assert [e.operation for e in eval_lake.log()].count("eval") == 2
    # other options shape other values: refused, then --replace keeps only rows made so
    with pytest.raises(EvalError, match=r"made with options \{'max_length': 512\}, this eval"):
        evaluate(
            eval_lake,
            str(tiny_llama),
            "heldout",
            eval_set="chat",
            limit=2,
            options=EvalOptions(max_length=64),
        )
    short = evaluate(
        eval_lake,
        str(tiny_llama),
        "heldout",
        eval_set="chat",
        limit=2,
        options=EvalOptions(max_length=64),
        replace=True,
    )
    values = _column(eval_lake, short.columns[0])
    assert sum(v is not None for v in values.values()) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "smollm2", "suite": "vibes", "eval_set": "qa"}, "unknown suite 'vibes'"),
        ({"target": "rdeadbeef", "suite": "heldout"}, "no run 'rdeadbeef' in the runs table"),
        ({"target": "gpt-9", "suite": "heldout", "eval_set": "qa"}, "unknown eval target"),
        ({"target": "smollm2", "suite": "generation", "eval_set": "plain"}, "needs references"),
        ({"target": "smollm2", "suite": "numeric", "eval_set": "qa"}, "parses as a number"),
        ({"target": "smollm2", "suite": "choice", "eval_set": "qa"}, "options and an answer"),
        ({"target": "smollm2", "suite": "heldout", "eval_set": "nope"}, "no eval set 'nope'"),
        ({"target": "smollm2", "suite": "heldout"}, "--mix NAME or --eval-set"),
        ({"target": "smollm2", "suite": "heldout", "mix": "nope"}, "no mix 'nope'"),
    ],
)
def test_bad_requests_fail_before_any_model_loads(
    eval_lake: Lake, kwargs: dict[str, Any], message: str
) -> None:
    version = eval_lake.latest_version()
    with pytest.raises(EvalError, match=message):
        evaluate(eval_lake, loader=_never, **kwargs)
    assert eval_lake.latest_version() == version


def test_judge_suite_grades_answers_with_a_local_judge(eval_lake: Lake, tiny_llama: Path) -> None:
    from evals import EvalOptions
    from evals.judge import judge_prompt

    options = EvalOptions(judge_model=str(tiny_llama), max_new_tokens=4)
    result = evaluate(eval_lake, str(tiny_llama), "judge", eval_set="qa", options=options)
    assert result.rows == 3 and result.columns[0] == "eval_base_tiny_llama_judge_parsed"
    for parsed, score in zip(result.per_row["parsed"], result.per_row["score"], strict=True):
        assert (parsed == 1.0 and score in {1.0, 2.0, 3.0, 4.0, 5.0}) or (parsed, score) == (
            0.0,
            None,
        )
    prompt = judge_prompt([{"role": "user", "content": "2+2?"}], "4", "four")
    assert "Question:\n2+2?" in prompt and "Reference answer:\nfour" in prompt
    with pytest.raises(EvalError, match="suite judge: model '/nope'"):
        evaluate(
            eval_lake,
            "smollm2",
            "judge",
            eval_set="qa",
            options=EvalOptions(judge_model="/nope"),
            loader=_never,
        )


def test_a_registered_eval_set_is_found_by_its_name(eval_lake: Lake, tiny_llama: Path) -> None:
    from curation.steps.decontam import register_eval_set

    register_eval_set(eval_lake, "qa", name="trivia", n=3)
    result = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="trivia")
    assert result.rows == 3 and result.mix == "eval-set:trivia"
    with pytest.raises(EvalError, match="registered eval sets: trivia"):
        evaluate(eval_lake, "smollm2", "heldout", eval_set="nope", loader=_never)


def test_a_new_version_of_a_suite_never_mixes_its_rows_with_the_old(
    eval_lake: Lake, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evals.registry import get_suite

    first = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="chat", limit=2)
    monkeypatch.setattr(type(get_suite("heldout")), "version", 2)
    with pytest.raises(EvalError, match=r"made by version 1 of suite heldout, this is version 2"):
        evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="chat", limit=3)
    again = evaluate(eval_lake, str(tiny_llama), "heldout", eval_set="chat", limit=3, replace=True)
    assert again.version == first.version + 1  # type: ignore[operator]
    made = column_provenance(eval_lake.records().schema.field(first.columns[0]))
    assert made["params"]["suite_version"] == 2
