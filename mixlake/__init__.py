"""The `mixlake` command line: a thin layer over the curation, queries, training and evals packages."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mixlake")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
