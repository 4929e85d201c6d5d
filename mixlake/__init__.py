"""The `mixlake` command line: a thin layer over the curation, queries, training and evals packages."""

from typing import Any


def __getattr__(name: str) -> Any:
    # `__version__` is looked up lazily: importing importlib.metadata costs the console script
    # ~0.1 s before its Ctrl-C handler is in place (see mixlake.launcher).
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("mixlake")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(name)
