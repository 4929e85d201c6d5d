"""The one exception type of the curation package."""


class CurationError(Exception):
    """A user-facing error: the message says what was wrong, where, and what to do.

    The CLI prints it as one line and exits with code 2.
    """
