"""The one exception type of the curation package, and the one way to quote a library error."""

from __future__ import annotations

import re

# Lance appends the Rust source location of an error: ", /home/…/rust/lance/src/io/commit.rs:12:5".
_RUST_LOCATION = re.compile(r",?\s*(?:\S*/)?[\w.-]+\.rs:\d+(?::\d+)?")
_LIBRARY_PREFIXES = ("Invalid user input: ", "LanceError(IO): ", "lance error: ")
MAX_CHARS = 300
"""Longest message `one_line` returns (the rest is cut with `…`)."""


class CurationError(Exception):
    """A user-facing error: the message says what was wrong, where, and what to do.

    The CLI prints it as one line and exits with code 2.
    """


def one_line(exc: BaseException) -> str:
    """A library exception as one short line fit to follow "step X failed: ".

    Takes the first non-empty line of the message, drops the Rust source locations Lance
    appends and the generic prefixes that say nothing to a user, and cuts it at `MAX_CHARS`.
    An exception without a message reads as its type name.

    Example:
        >>> one_line(ValueError("Invalid user input: bad filter, /x/lance/src/scanner.rs:83:3"))
        'bad filter'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = _RUST_LOCATION.sub("", lines[0]).strip()
    for prefix in _LIBRARY_PREFIXES:
        text = text.removeprefix(prefix)
    text = text.strip() or type(exc).__name__
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
