"""Evals: suites and metrics, written back to the lake as columns and rows.

Typical use:

    >>> result = evaluate(lake, "smollm2", "heldout", mix="chitchat-curated")  # doctest: +SKIP
    >>> result.run_level["perplexity"]                                          # doctest: +SKIP
"""

from evals.errors import EvalError
from evals.evaluate import EvalResult, evaluate, write_back
from evals.registry import SUITES, get_suite
from evals.suites import EvalOptions
from evals.targets import Target, resolve_target
from evals.writeback import column_name, read_evals

__all__ = [
    "SUITES",
    "EvalError",
    "EvalOptions",
    "EvalResult",
    "Target",
    "column_name",
    "evaluate",
    "get_suite",
    "read_evals",
    "resolve_target",
    "write_back",
]
