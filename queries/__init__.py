"""Mixes: YAML + SQL specs over a pinned `records` version, materialized as row references.

Typical use:

    >>> spec = load_spec("queries/mixes/chitchat-curated.yaml")   # doctest: +SKIP
    >>> plan = check_mix(lake, spec)                              # doctest: +SKIP
    >>> mix = materialize_mix(lake, spec)                         # doctest: +SKIP
    >>> for example in open_mix(lake, "chitchat-curated").examples("train"):  # doctest: +SKIP
    ...     ...
"""

from queries.diff import ComponentDiff, MixDiff, diff_mixes
from queries.errors import QueryError
from queries.export import export_mix, read_manifest
from queries.export_formats import ExportFormat, format_names, get_format, register_format
from queries.manifest import MixManifest
from queries.materialize import MaterializedMix, MixInfo, list_mixes, materialize_mix, open_mix
from queries.plan import ComponentPlan, MixPlan, check_mix
from queries.render import render
from queries.spec import ComponentSpec, FormatSpec, MixSpec, load_spec, parse_spec

__all__ = [
    "ComponentDiff",
    "ComponentPlan",
    "ComponentSpec",
    "ExportFormat",
    "FormatSpec",
    "MaterializedMix",
    "MixDiff",
    "MixInfo",
    "MixManifest",
    "MixPlan",
    "MixSpec",
    "QueryError",
    "check_mix",
    "diff_mixes",
    "export_mix",
    "format_names",
    "get_format",
    "list_mixes",
    "load_spec",
    "materialize_mix",
    "open_mix",
    "parse_spec",
    "read_manifest",
    "register_format",
    "render",
]
