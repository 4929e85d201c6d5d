"""Cross-check the heldout and choice suites against lm-evaluation-harness on a small local task.

Not part of the package's runtime: it needs `lm-eval`, which is not a dependency. Install it
where it cannot touch the project's torch/transformers and run with it on the path:

    .venv/bin/python -m pip install --no-deps --target /tmp/lmeval-pkgs lm-eval
    PYTHONPATH=/tmp/lmeval-pkgs .venv/bin/python -m evals.lmeval_crosscheck [MODEL]

Both sides get the same model object (float32, CPU) and the same documents, written to a
temporary folder as JSON and read by lm-eval through task YAMLs (`dataset_path: json`):

- `choice`: lm-eval `multiple_choice` (acc, acc_norm) against `Choice` (correct, correct_norm),
  per question, and the per-option log-likelihoods.
- `heldout`: lm-eval `loglikelihood` of each chat's reply + `<|im_end|>` after the rendered
  prompt, against `Heldout`'s per-row summed loss (rows × mean loss × tokens).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

QUESTIONS = [
    ("The capital of France is", ["London", "Paris", "Berlin"], 1),
    ("The largest planet in the solar system is", ["Jupiter", "Mars", "Venus"], 0),
    ("Water freezes at a temperature of", ["zero degrees Celsius", "fifty degrees"], 0),
    ("The opposite of hot is", ["cold", "warm", "spicy"], 0),
    ("A baby cat is called a", ["puppy", "kitten", "calf"], 1),
    ("The sun rises in the", ["west", "north", "east"], 2),
    ("Two plus two equals", ["four", "five", "twenty-two"], 0),
    ("The color of a clear daytime sky is", ["green", "blue", "red"], 1),
]
CHATS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Say hello.", "Hello! How can I help you today?"),
    ("What is 2 + 2?", "2 + 2 = 4."),
    ("Name a fruit.", "An apple."),
    ("What colour is the sky?", "The sky is blue on a clear day."),
    ("Translate 'merci' to English.", "Thank you."),
    ("Give me a number between 1 and 10.", "7"),
    ("Is water wet?", "Water makes things wet."),
]


def _tasks(folder: Path, tokenizer: Any) -> None:
    choice = [{"question": q, "choices": c, "answer": a} for q, c, a in QUESTIONS]
    (folder / "choice.json").write_text("\n".join(json.dumps(r) for r in choice))
    held = []
    for user, reply in CHATS:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
        )
        held.append({"context": prompt, "target": reply + "<|im_end|>"})
    (folder / "held.json").write_text("\n".join(json.dumps(r) for r in held))
    (folder / "mixlake_choice.yaml").write_text(
        f"task: mixlake_choice\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {folder / 'choice.json'}\ntest_split: test\noutput_type: multiple_choice\n"
        "doc_to_text: '{{question}}'\ndoc_to_choice: '{{choices}}'\ndoc_to_target: answer\n"
        "metric_list:\n  - metric: acc\n  - metric: acc_norm\n"
    )
    (folder / "mixlake_held.yaml").write_text(
        f"task: mixlake_held\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {folder / 'held.json'}\ntest_split: test\noutput_type: loglikelihood\n"
        "doc_to_text: '{{context}}'\ndoc_to_target: '{{target}}'\ntarget_delimiter: ''\n"
        "metric_list:\n  - metric: perplexity\n  - metric: acc\n"
    )


def _lmeval(model: Any, tokenizer: Any, folder: Path) -> dict[str, list[Any]]:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    out = simple_evaluate(
        model=lm,
        tasks=["mixlake_choice", "mixlake_held"],
        task_manager=TaskManager(include_path=str(folder)),
        log_samples=True,
    )
    assert out is not None
    samples = out["samples"]
    choice = sorted(samples["mixlake_choice"], key=lambda s: s["doc_id"])
    held = sorted(samples["mixlake_held"], key=lambda s: s["doc_id"])
    return {
        "acc": [s["acc"] for s in choice],
        "acc_norm": [s["acc_norm"] for s in choice],
        "option_ll": [[float(r[0][0]) for r in s["resps"]] for s in choice],
        "held_ll": [float(s["resps"][0][0][0]) for s in held],
    }


def _ours(model: Any, tokenizer: Any) -> dict[str, Any]:
    from evals.data import EvalExample
    from evals.scoring import (
        encode_continuation,
        loss_text,
        option_items,
        score_encoded,
        score_texts,
    )
    from evals.suites import Choice, EvalOptions, Heldout

    options = EvalOptions()
    examples = [
        EvalExample(id=str(i), prompt=q, choices=tuple(c), answer=a)
        for i, (q, c, a) in enumerate(QUESTIONS)
    ]
    choice = Choice().run(model, tokenizer, examples, options)
    option_ll = []
    for ex in examples:
        assert ex.choices is not None and ex.prompt is not None
        encoded = [
            encode_continuation(tokenizer, c, cont, special, options.max_length)
            for c, cont, special in option_items(tokenizer, ex.prompt, ex.choices)
        ]
        option_ll.append([-s.loss_sum for s in score_encoded(model, tokenizer, encoded)])
    chats = [
        EvalExample(
            id=str(i),
            messages=({"role": "user", "content": u}, {"role": "assistant", "content": r}),
        )
        for i, (u, r) in enumerate(CHATS)
    ]
    scored = score_texts(model, tokenizer, [loss_text(tokenizer, ex) for ex in chats])
    held = Heldout().run(model, tokenizer, chats, options)
    return {
        "held_suite_loss": held.run_level["loss"],
        "acc": choice.per_row["correct"],
        "acc_norm": choice.per_row["correct_norm"],
        "option_ll": option_ll,
        "held_ll": [-s.loss_sum for s in scored],
        "held_tokens": [s.tokens for s in scored],
    }


def crosscheck(model_name: str = "smollm2") -> dict[str, Any]:
    """Run both sides on the same model and documents; returns the agreement figures."""
    import torch

    from training.models import load_for_inference

    torch.manual_seed(0)
    model, tokenizer = load_for_inference(model_name, device="cpu", dtype="float32")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _tasks(folder, tokenizer)
        theirs = _lmeval(model, tokenizer, folder)
    ours = _ours(model, tokenizer)
    flat_ours = [v for row in ours["option_ll"] for v in row]
    flat_theirs = [v for row in theirs["option_ll"] for v in row]
    return {
        "questions": len(QUESTIONS),
        "acc": (sum(ours["acc"]) / len(QUESTIONS), sum(theirs["acc"]) / len(QUESTIONS)),
        "acc_norm": (
            sum(ours["acc_norm"]) / len(QUESTIONS),
            sum(theirs["acc_norm"]) / len(QUESTIONS),
        ),
        "same_predictions": sum(a == b for a, b in zip(ours["acc"], theirs["acc"], strict=True)),
        "same_norm_predictions": sum(
            a == b for a, b in zip(ours["acc_norm"], theirs["acc_norm"], strict=True)
        ),
        "option_ll_max_abs_diff": max(
            abs(a - b) for a, b in zip(flat_ours, flat_theirs, strict=True)
        ),
        "chats": len(CHATS),
        "held_ll_max_abs_diff": max(
            abs(a - b) for a, b in zip(ours["held_ll"], theirs["held_ll"], strict=True)
        ),
        "held_tokens": sum(ours["held_tokens"]),
        "held_suite_loss": ours["held_suite_loss"],
        "held_mean_loss": (
            -sum(ours["held_ll"]) / sum(ours["held_tokens"]),
            -sum(theirs["held_ll"]) / sum(ours["held_tokens"]),
        ),
    }


if __name__ == "__main__":
    print(json.dumps(crosscheck(*sys.argv[1:2]), indent=None))
