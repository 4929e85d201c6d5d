"""Options shared by every command group."""

from __future__ import annotations

from typing import Annotated

import typer

from curation import Lake
from curation.lake import VersionRef, default_lake_uri
from curation.sqltext import single_expression

LakeOpt = Annotated[
    str | None,
    typer.Option(
        "--lake",
        envvar="MIXLAKE_LAKE",
        help="Lake location (default ./lake; MIXLAKE_LAKE overrides).",
        show_default=False,
    ),
]
VersionOpt = Annotated[
    int | None, typer.Option("--version", "-v", help="A records version number.")
]
TagOpt = Annotated[str | None, typer.Option("--tag", "-t", help="A records tag.")]


def open_lake(uri: str | None) -> Lake:
    """Open the lake at `uri` or the default location."""
    return Lake(uri or default_lake_uri())


def version_ref(version: int | None, tag: str | None) -> VersionRef:
    """Combine --version and --tag into one reference (latest when neither is given)."""
    from curation import CurationError

    if version is not None and tag is not None:
        raise CurationError("give --version or --tag, not both")
    return tag if tag is not None else version


def checked_where(predicate: str | None) -> str | None:
    """A `--where` value as given, once it is known to be one SQL expression.

    Checked while the arguments are parsed, so `--where "1=1; DROP TABLE x"` stops the
    command (exit 2) before it opens the lake.

    Raises:
        CurationError: the predicate is empty, does not parse, or holds several statements.
    """
    return None if predicate is None else single_expression(predicate)


WhereOpt = Annotated[
    str | None,
    typer.Option(
        "--where", help="SQL predicate: only these rows take part.", callback=checked_where
    ),
]
ReplaceOpt = Annotated[
    bool, typer.Option("--replace", help="Recompute when the columns exist with other params.")
]
