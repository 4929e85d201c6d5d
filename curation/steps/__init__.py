"""Enrichment steps. Each family is a module; each step a small class run by `apply`.

Steps register under versioned names (`curation.steps.registry`): `run_step(name, lake,
params)` runs one by name, and the CLI derives a command per registered step.
"""

from curation.steps.base import ColumnStep, PreparedStep, StepReport, apply
from curation.steps.provenance import column_provenance
from curation.steps.registry import lookup_step, register_step, registered_steps, run_step

__all__ = [
    "ColumnStep",
    "PreparedStep",
    "StepReport",
    "apply",
    "column_provenance",
    "lookup_step",
    "register_step",
    "registered_steps",
    "run_step",
]
