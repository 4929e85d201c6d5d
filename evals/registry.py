"""The eval suites by name: one registry, so adding a suite is one module plus one line here.

It sits above `evals.suites` (the suite types) and `evals.judge` (a suite built on them), so
neither imports the other back.
"""

from __future__ import annotations

from evals.errors import EvalError
from evals.judge import Judge
from evals.suites import Generation, Heldout, Suite
from evals.suites_scored import Choice, Numeric

SUITES: dict[str, Suite] = {
    s.name: s for s in (Heldout(), Generation(), Numeric(), Choice(), Judge())
}


def get_suite(name: str) -> Suite:
    """The suite called `name`.

    Raises:
        EvalError: no such suite (the message lists the known ones).
    """
    if name not in SUITES:
        raise EvalError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]
