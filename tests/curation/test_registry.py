"""The step registry: versioned names, typed parameters, lookups, runs, model-step flags."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import curation.steps
from curation import CurationError, Lake
from curation.engine import is_model_step
from curation.steps import registry
from curation.steps.dedup import METHODS, NearDedup
from curation.steps.dedup_flag import WithDupFlag
from curation.steps.quality import HeuristicQualityStep, HeuristicThresholds
from curation.steps.registry import (
    attribute_help,
    lookup_step,
    register_step,
    registered_steps,
    run_step,
    unregister_step,
)

MODEL_STEPS = {"tokens_v2", "embed_v1", "quality_judge_v1"}
"""The shipped steps that load a model (and so run on Ray actors)."""


class _Length:
    """Characters of `text` times a factor."""

    name = "text_length_v1"
    input_columns: tuple[str, ...] = ("text",)
    model_step = False

    @dataclass(frozen=True)
    class Params:
        """Parameters.

        Attributes:
            factor: Multiplies the length.
            label: A name kept in the provenance
                (continued on a second line).
        """

        factor: int = 1
        label: str | None = None

    def __init__(self, factor: int = 1, label: str | None = None) -> None:
        self.factor, self.label = factor, label

    def params(self) -> dict[str, Any]:
        return {"factor": self.factor, "label": self.label}

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field(self.name, pa.int64())])

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        lengths = [len(t or "") * self.factor for t in batch.column("text").to_pylist()]
        return pa.RecordBatch.from_arrays([pa.array(lengths, pa.int64())], [self.name])


@pytest.fixture
def length_step() -> Iterator[type]:
    registered = register_step("text_length_v1", group="measure", command="length")(_Length)
    yield registered
    unregister_step("text_length_v1")


def test_shipped_steps_are_registered_with_versioned_names() -> None:
    names = [e.name for e in registered_steps()]
    assert names[:3] == ["quality_heuristic_v1", "quality_classifier_v1", "quality_judge_v1"]
    assert {"tokens_v2", "embed_v1", "pii_v1", "decontam_v1", "cluster_v1"} <= set(names)
    assert [e.command for e in registered_steps("dedup")] == list(METHODS)
    assert HeuristicQualityStep.registry_name == "quality_heuristic_v1"  # type: ignore[attr-defined]


def test_every_shipped_parameter_has_a_type_a_default_and_help() -> None:
    for entry in registered_steps():
        for p in entry.parameters():
            assert p.help, f"{entry.name}: parameter {p.name} has no help line"
            assert p.flag.startswith("--") and p.type is not None
    for name in ("quality_heuristic_v1", "dedup_near_v1", "pii_v1", "tokens_v2"):
        entry = lookup_step(name)
        assert isinstance(entry.build(), entry.cls)
    near = lookup_step("dedup_near_v1").build(lookup_step("dedup_near_v1").make_params(shingle=3))
    assert near.shingle == 3 and near.threshold == 0.8
    with pytest.raises(CurationError, match="--threshold"):
        lookup_step("dedup_near_v1").build(lookup_step("dedup_near_v1").make_params(threshold=2))


def test_model_steps_say_so_and_engines_read_the_flag() -> None:
    for entry in registered_steps():
        flag = entry.cls.__dict__.get("model_step")
        inherited = getattr(entry.cls, "model_step", None)
        assert isinstance(flag if flag is not None else inherited, bool), entry.name
        assert is_model_step(entry.cls) == (entry.name in MODEL_STEPS), entry.name
    wrapped = WithDupFlag(NearDedup(), ())
    assert not is_model_step(wrapped)

    class Holder:
        model = object()  # holding a `model` attribute no longer makes a model step

    assert not is_model_step(Holder())


def test_params_help_comes_from_the_attributes_section() -> None:
    helps = attribute_help(_Length.Params)
    assert helps == {
        "factor": "Multiplies the length.",
        "label": "A name kept in the provenance (continued on a second line).",
    }
    assert attribute_help(HeuristicThresholds)["min_words"].startswith("fewer words fail")


def test_lookup_names_the_known_steps_in_one_line(length_step: type) -> None:
    assert lookup_step("text_length_v1").cls is length_step
    assert lookup_step("length", "measure").cls is length_step
    with pytest.raises(CurationError) as e:
        lookup_step("quality_vibes_v2")
    message = str(e.value)
    assert "\n" not in message and "unknown step 'quality_vibes_v2'" in message
    assert "quality_heuristic_v1, quality_classifier_v1, quality_judge_v1" in message
    with pytest.raises(CurationError, match="unknown measure step 'width'; choose one of length"):
        lookup_step("width", "measure")


def test_registration_refuses_bad_names_and_taken_ones(length_step: type) -> None:
    with pytest.raises(CurationError, match="version suffix"):
        register_step("Length")
    other = type("Other", (), {"__module__": __name__})
    with pytest.raises(CurationError, match="taken by text_length_v1"):
        register_step("text_length_v1")(other)
    with pytest.raises(CurationError, match="taken by text_length_v1"):
        register_step("text_width_v1", group="measure", command="length")(other)
    assert register_step("text_length_v1", group="measure", command="length")(_Length) is _Length


def test_run_step_builds_from_params_and_applies(sample_lake: Lake, length_step: type) -> None:
    entry = lookup_step("text_length_v1")
    with pytest.raises(CurationError, match="no parameter width"):
        entry.make_params(width=3)
    report = run_step("text_length_v1", sample_lake, entry.make_params(factor=2))
    rows = sample_lake.sql("SELECT text, text_length_v1 AS n FROM records").to_pylist()
    assert report.rows_computed == len(rows) == 6
    assert all(r["n"] == 2 * len(r["text"] or "") for r in rows)
    assert run_step("text_length_v1", sample_lake, entry.make_params(factor=2)).no_op
    assert entry.params_type is _Length.Params
    assert [f.name for f in dataclasses.fields(_Length.Params)] == ["factor", "label"]


def test_a_new_module_in_the_steps_package_registers_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "toy_discovered.py").write_text(
        "from curation.steps.registry import register_step\n\n\n"
        '@register_step("toy_discovered_v1", group="score")\n'
        "class ToyDiscovered:\n"
        '    """A step no list names."""\n\n'
        '    name = "toy_discovered_v1"\n'
    )
    monkeypatch.setattr(curation.steps, "__path__", [*curation.steps.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.delitem(sys.modules, "curation.steps.toy_discovered", raising=False)
    try:
        names = [e.name for e in registered_steps("score")]
        assert names[-1] == "toy_discovered_v1" and names[0] == "quality_heuristic_v1"
    finally:
        unregister_step("toy_discovered_v1")
        sys.modules.pop("curation.steps.toy_discovered", None)
