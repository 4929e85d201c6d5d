"""Options shared by every command group, and the options derived from a step's parameters."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Annotated, Any, get_args, get_origin

import typer

from curation import Lake
from curation.lake import VersionRef, default_lake_uri
from curation.sqltext import single_expression
from curation.steps.registry import Parameter

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

EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        envvar="MIXLAKE_ENGINE",
        help="Where the step runs: local (this process) or ray (a Ray cluster).",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        envvar="RAY_ADDRESS",
        help="Ray cluster address with --engine ray (default: RAY_ADDRESS, else a local Ray).",
        show_default=False,
    ),
]
GpusOpt = Annotated[
    float,
    typer.Option("--gpus-per-worker", help="GPUs per model-step actor with --engine ray."),
]


@contextlib.contextmanager
def on_engine(engine: str, ray_address: str | None, gpus_per_worker: float) -> Iterator[None]:
    """Run the block's steps on the engine that --engine/--ray-address/--gpus-per-worker name."""
    from curation.engine import use_engine
    from curation.ray_engine import make_engine

    with use_engine(make_engine(engine, ray_address, gpus_per_worker)):
        yield


# ------------------------------------------------------- options derived from a step
COMMON_STEP_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("where", None, WhereOpt),
    ("replace", False, ReplaceOpt),
    ("lake", None, LakeOpt),
    ("engine", "local", EngineOpt),
    ("ray_address", None, RayAddressOpt),
    ("gpus_per_worker", 0, GpusOpt),
)
"""The options every step command takes, once: (parameter, default, annotation)."""
PARAM_PREFIX = "param_"
"""Python names of a step's own options (its `Params` fields) carry this prefix, so a field
may be called like a common option without clashing."""


def step_signature(parameters: list[Parameter]) -> inspect.Signature:
    """A command signature: the step's typed parameters, then the common step options.

    Each parameter becomes `--<flag>` with its type, default and help; a `tuple[str, ...]`
    field is a repeatable option.
    """
    params = []
    for p in parameters:
        cli_type, default = _cli_type(p.type), p.default
        if cli_type is not p.type:
            default = None
        option = typer.Option(p.flag, help=p.help, show_default=default is not None)
        params.append(
            inspect.Parameter(
                PARAM_PREFIX + p.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[cli_type, option],
            )
        )
    for name, default, annotation in COMMON_STEP_OPTIONS:
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return inspect.Signature(params, return_annotation=None)


def step_values(parameters: list[Parameter], given: dict[str, Any]) -> dict[str, Any]:
    """The `Params` field values from a command's keyword arguments (see `step_signature`)."""
    values = {}
    for p in parameters:
        value = given[PARAM_PREFIX + p.name]
        if _cli_type(p.type) is not p.type:
            value = tuple(value or ())
        values[p.name] = value
    return values


def _cli_type(annotation: Any) -> Any:
    """The type click parses for a field type: a `tuple[X, ...]` is a repeated `--flag X`."""
    if get_origin(annotation) is tuple:
        args = get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return list[args[0]] | None  # type: ignore[valid-type]
    return annotation
