"""Errors of the web UI and how every package's exception becomes a clear 4xx."""

from __future__ import annotations

import re

from curation import CurationError

_NOT_FOUND = re.compile(r"\b(no|has no) (version|tag|mix|run|row|record|such|table|split)\b")


class WebError(Exception):
    """A request the UI cannot serve, with the HTTP status to answer it with.

    Attributes:
        status: 400 (bad parameter), 403 (writes disabled), 404 (unknown thing), 409.
        message: one line saying what was wrong and how to fix it.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def package_errors() -> tuple[type[Exception], ...]:
    """The exception types of curation, queries, training and evals (those importable now)."""
    out: list[type[Exception]] = [CurationError]
    try:
        from queries.errors import QueryError

        out.append(QueryError)
    except ImportError:
        pass
    try:
        from training.errors import TrainingError

        out.append(TrainingError)
    except ImportError:
        pass
    try:
        from evals.errors import EvalError

        out.append(EvalError)
    except ImportError:
        pass
    return tuple(out)


def status_of(error: Exception) -> int:
    """HTTP status for an exception: WebError's own, 404 for "no such …", else 400."""
    if isinstance(error, WebError):
        return error.status
    return 404 if _NOT_FOUND.search(str(error)) else 400


def message_of(error: Exception) -> str:
    """The one-line message of an exception."""
    text = error.message if isinstance(error, WebError) else str(error)
    return (text.strip().splitlines() or [type(error).__name__])[0][:500]
