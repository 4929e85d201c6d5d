"""The one exception type of the queries package."""


class QueryError(Exception):
    """A user-facing mix error: names the spec file, the component and the reason."""
