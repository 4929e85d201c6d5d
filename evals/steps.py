"""A suite as a column step: per-row metrics of one target computed through `apply`.

`SuiteStep` is a `curation.steps.base.ColumnStep` named `eval_<target>_<suite>` whose columns
are `eval_<target>_<suite>_<metric>` (float64, plus `..._answer` for suites that generate).
`apply(step, lake, ids=...)` runs it on the rows an eval covers: batched, checkpointed per
batch and fragment (a crashed eval resumes without recomputing a finished batch), committed as
one version with the eval's journal entry, locally or on Ray actors that each load the model
once (`model_step`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curation.errors import CurationError
from evals.data import EvalExample
from evals.errors import EvalError
from evals.suites import EvalOptions, Suite
from evals.targets import Target

Loader = Callable[[Target], tuple[Any, Any]]
"""Loads `(model, tokenizer)` for a target."""


def column_name(label: str, suite: str, metric: str) -> str:
    """The `records` column of one per-row metric: `eval_<target>_<suite>_<metric>`."""
    return f"eval_{label}_{suite}_{metric}"


def step_name(label: str, suite: str) -> str:
    """The step (provenance) name of a target's suite columns: `eval_<target>_<suite>`."""
    return f"eval_{label}_{suite}"


def step_params(label: str, suite: Suite, options: EvalOptions | None = None) -> dict[str, Any]:
    """The provenance parameters of a target's suite columns.

    Target, suite and metrics, plus the options that shape the per-row values
    (`Suite.shaping_options`, e.g. `max_length`) when they are known: a local or Ray eval
    knows them; results imported from a file do not. Stored with the columns and compared on
    a rerun, so rows are never mixed from evals under different options.
    """
    params: dict[str, Any] = {"target": label, "suite": suite.name, "metrics": list(suite.metrics)}
    if suite.version != 1:  # version 1 predates the key: columns made then stay comparable
        params["suite_version"] = suite.version
    if options is not None:
        params["options"] = {name: getattr(options, name) for name in suite.shaping_options}
    return params


def suite_schema(label: str, suite: Suite) -> pa.Schema:
    """The columns of a target's suite: one float64 per metric, then the answer text."""
    fields = [pa.field(column_name(label, suite.name, m), pa.float64()) for m in suite.metrics]
    if suite.answers:
        fields.append(pa.field(column_name(label, suite.name, "answer"), pa.string()))
    return pa.schema(fields)


class SuiteStep:
    """One suite of one target as a column step.

    Args:
        suite: the suite.
        target: the resolved target (its model loads on first use, once per process).
        examples: the rows to evaluate (looked up by id in each batch).
        options: the suite options.
        loader: loads the model (default `evals.models.load_model`); must be picklable for Ray.
        kept: stored values (`id` + this step's columns) of rows not evaluated now, handed
            back unchanged when `apply` rewrites the columns (`replace`).
    """

    input_columns: tuple[str, ...] = ()
    model_step = True

    def __init__(
        self,
        suite: Suite,
        target: Target,
        examples: Iterable[EvalExample],
        options: EvalOptions,
        loader: Loader | None = None,
        kept: pa.Table | None = None,
    ) -> None:
        self.suite, self.target, self.options = suite, target, options
        self.name = step_name(target.label, suite.name)
        self.examples = {ex.id: ex for ex in examples}
        self.loader = loader
        self.kept = kept
        self.progress: Callable[[int], None] | None = None
        """Told how many rows each batch computed (in this process only: not shipped)."""
        self._model: Any = None
        self._tokenizer: Any = None

    def params(self) -> dict[str, Any]:
        """Target, suite, metrics and the options that shape them (see `step_params`)."""
        return step_params(self.target.label, self.suite, self.options)

    def output_schema(self) -> pa.Schema:
        """The suite's columns (see `suite_schema`)."""
        return suite_schema(self.target.label, self.suite)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The suite's per-row values for the batch's rows (kept rows are handed back)."""
        schema = self.output_schema()
        ids = batch.column("id").to_pylist()
        todo = [i for i in ids if i in self.examples]
        kept = self._kept_rows(ids)
        unknown = [i for i in ids if i not in self.examples and i not in kept]
        if unknown:
            raise CurationError(f"{self.name}: record {unknown[0]} is not one of the eval's rows")
        computed: dict[str, list[Any]] = {}
        if todo:
            model, tokenizer = self.model()
            computed = self.suite.compute(
                model, tokenizer, [self.examples[i] for i in todo], self.options, self.progress
            )
        names = [*self.suite.metrics, *(("answer",) if self.suite.answers else ())]
        at = {i: k for k, i in enumerate(todo)}
        columns = []
        for name, f in zip(names, schema, strict=True):
            values = [
                computed[name][at[i]] if i in at else kept.get(i, {}).get(f.name) for i in ids
            ]
            columns.append(pa.array(values, f.type))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def model(self) -> tuple[Any, Any]:
        """The target's `(model, tokenizer)`, loaded on first use."""
        if self._model is None:
            loader = self.loader
            if loader is None:
                from evals.models import load_model

                loader = load_model
            self._model, self._tokenizer = loader(self.target)
        return self._model, self._tokenizer

    def use(self, model: Any, tokenizer: Any) -> None:
        """Use an already loaded model (the local engine, whose driver loaded it)."""
        self._model, self._tokenizer = model, tokenizer

    def tokenizer(self) -> Any:
        """The target's tokenizer: the loaded model's, else loaded on its own (cheap)."""
        if self._tokenizer is not None:
            return self._tokenizer
        from training.errors import TrainingError
        from training.models import load_tokenizer, resolve_base

        try:
            return load_tokenizer(resolve_base(self.target.base))
        except TrainingError as e:
            raise EvalError(f"eval target {self.target.label}: {e}") from None

    def __getstate__(self) -> dict[str, Any]:
        """Ship without the loaded model: each worker loads its own."""
        return {**self.__dict__, "_model": None, "_tokenizer": None, "progress": None}

    def _kept_rows(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if self.kept is None:
            return {}
        rows = self.kept.filter(pc.is_in(self.kept.column("id"), value_set=pa.array(ids)))
        return {r["id"]: r for r in rows.to_pylist()}
