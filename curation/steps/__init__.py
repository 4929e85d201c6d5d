"""Enrichment steps. Each family is a module; each step a small class run by `apply`."""

from curation.steps.base import ColumnStep, PreparedStep, StepReport, apply
from curation.steps.provenance import column_provenance

__all__ = ["ColumnStep", "PreparedStep", "StepReport", "apply", "column_provenance"]
