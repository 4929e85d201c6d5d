"""The one exception type of the evals package."""


class EvalError(Exception):
    """A user-facing eval error: names the suite, run or eval set, and the reason."""
