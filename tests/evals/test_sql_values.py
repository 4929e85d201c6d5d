"""Values reach SQL quoted by `curation.sqltext`, so a quote in a name is data, not syntax."""

from __future__ import annotations

from pathlib import Path

from curation.testing import make_lake
from evals.data import eval_set_examples


def test_an_eval_set_named_with_a_quote_is_read(tmp_path: Path) -> None:
    """It was refused as a bad name (hand-quoted SQL could not hold it)."""
    lake = make_lake(tmp_path, {"it's": [{"prompt": "p", "completion": "c"}], "x": [{"text": "t"}]})
    examples, info = eval_set_examples(lake, "it's")
    assert len(examples) == 1 and info["mix"] == "eval-set:it's"
