"""The step registry: versioned step names → step classes, their typed parameters and runs.

A step class registers itself with `@register_step("quality_heuristic_v1", group="score")`
and declares its parameters as a frozen dataclass `Params` (a class attribute). Each field
is one parameter: its type and default are the field's, its help the line under the field's
name in the dataclass's Google-style `Attributes:` section. The class is built from a
`Params` value by `from_params(params)` when it defines one, else by `cls(**fields)`; a class
without `Params` takes no parameters. A step whose work is more than one `apply` (training a
classifier first, building an index after) defines a classmethod `run(lake, params, *, where,
replace, progress)`; the default run is `apply(cls.from_params(params), ...)`.

The CLI derives one command per registered step (`mixlake <group> <command>`, or
`mixlake <command>` without a group) from these declarations, so a new scorer is one file
in `curation/steps/` (every module there is imported, `load_builtin_steps`): a class with a
name, `Params` and the decorator. `register_step` sets the registered name on
the class as `registry_name`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

from curation.errors import CurationError
from curation.lake import Lake
from curation.steps.base import apply

BUILTIN_MODULES = (
    "curation.steps.quality",
    "curation.steps.classifier",
    "curation.steps.judge",
    "curation.steps.tokens",
    "curation.steps.embed",
    "curation.steps.dedup",
    "curation.steps.pii_step",
    "curation.steps.decontam",
    "curation.steps.cluster",
)
"""The order in which the shipped steps are listed; every other module of `curation.steps`
is found and imported too (`load_builtin_steps`), its steps listed after these."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*_v[0-9]+$")
T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class Parameter:
    """One typed parameter of a step, as the CLI shows it.

    Attributes:
        name: the `Params` field name.
        type: its type (e.g. `int`, `str | None`, `tuple[str, ...]`).
        default: its default value.
        help: one line from the `Attributes:` section of `Params`.
        flag: the CLI option (`--` + the name with `-` for `_`, unless the field's metadata
            gives `flag`).
    """

    name: str
    type: Any
    default: Any
    help: str
    flag: str


@dataclass(frozen=True)
class StepEntry:
    """A registered step.

    Attributes:
        name: the versioned registry name (`quality_heuristic_v1`, `dedup_near_v1`).
        cls: the step class.
        group: the CLI group it appears under (`score`, `dedup`), or None for a top command.
        command: the CLI command name inside its group (default: `name`).
        help: one line for the command's help (default: the class docstring's first line).
    """

    name: str
    cls: type
    group: str | None
    command: str
    help: str

    @property
    def params_type(self) -> type | None:
        """The step's `Params` dataclass, or None when it takes no parameters."""
        params = getattr(self.cls, "Params", None)
        return params if isinstance(params, type) and dataclasses.is_dataclass(params) else None

    def parameters(self) -> list[Parameter]:
        """The step's typed parameters, in `Params` field order."""
        params = self.params_type
        if params is None:
            return []
        hints = get_type_hints(params)
        helps = attribute_help(params)
        out = []
        for f in dataclasses.fields(params):
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
            out.append(Parameter(f.name, hints[f.name], default, helps.get(f.name, ""), flag))
        return out

    def make_params(self, **values: Any) -> Any:
        """A `Params` value from keyword values (missing ones take their defaults).

        Raises:
            CurationError: a value names no parameter of the step.
        """
        params = self.params_type
        if params is None:
            if values:
                raise CurationError(f"step {self.name} takes no parameters; got {sorted(values)}")
            return None
        known = {f.name for f in dataclasses.fields(params)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CurationError(
                f"step {self.name} has no parameter {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(known)) or 'none'}"
            )
        return params(**values)

    def build(self, params: Any = None) -> Any:
        """The step object for `params` (None: the defaults)."""
        if params is None:
            params = self.make_params()
        from_params = getattr(self.cls, "from_params", None)
        if from_params is not None:
            return from_params(params)
        if params is None:
            return self.cls()
        return self.cls(**{f.name: getattr(params, f.name) for f in dataclasses.fields(params)})

    def run(
        self,
        lake: Lake,
        params: Any = None,
        *,
        where: str | None = None,
        replace: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        """Run the step on `lake`: its own `run` classmethod, else one `apply` of `build`."""
        if params is None:
            params = self.make_params()
        custom = getattr(self.cls, "run", None)
        if custom is not None:
            return custom(lake, params, where=where, replace=replace, progress=progress)
        return self.apply(self.build(params), lake, where=where, replace=replace, progress=progress)

    def apply(
        self,
        step: Any,
        lake: Lake,
        *,
        where: str | None = None,
        replace: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        """The default run of a built step: one `apply`, in batches of its `batch_size`."""
        return apply(
            step,
            lake,
            where=where,
            replace=replace,
            batch_size=int(getattr(step, "batch_size", 1024)),
            progress=progress,
        )


_STEPS: dict[str, StepEntry] = {}


def register_step(
    name: str, *, group: str | None = None, command: str | None = None, help: str | None = None
) -> Callable[[T], T]:
    """Class decorator: register a step class under a versioned name.

    Args:
        name: versioned name, lowercase with a `_v<N>` suffix (`quality_heuristic_v1`).
        group: the CLI group the step's command goes in (`score`, `dedup`); None: a top
            command.
        command: the command's name (default: `name`).
        help: the command's one-line help (default: the class docstring's first line).

    Raises:
        CurationError: a malformed name, or a name or command already taken by another class.
    """
    if not _NAME.match(name):
        raise CurationError(
            f"step name {name!r} must be lowercase words with a version suffix, e.g. "
            "quality_heuristic_v1"
        )

    def decorate(cls: T) -> T:
        entry = StepEntry(
            name, cls, group, command or name, help or _first_line(cls.__doc__) or name
        )
        for other in _STEPS.values():
            if other.name == name or (other.group, other.command) == (group, entry.command):
                if _same_class(other.cls, cls):
                    break
                raise CurationError(
                    f"step {name!r} ({cls.__module__}.{cls.__qualname__}): "
                    f"{' '.join(filter(None, (group, entry.command)))} is taken by "
                    f"{other.name} ({other.cls.__module__}.{other.cls.__qualname__})"
                )
        _STEPS.pop(next((n for n, e in _STEPS.items() if _same_class(e.cls, cls)), ""), None)
        _STEPS[name] = entry
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return decorate


def unregister_step(name: str) -> None:
    """Remove a registered step (plugins and tests); an unknown name is ignored."""
    _STEPS.pop(name, None)


def registered_steps(group: str | None = None, *, any_group: bool = True) -> list[StepEntry]:
    """Every registered step (shipped ones first, in `BUILTIN_MODULES` order).

    Args:
        group: only the steps of this CLI group.
        any_group: with `group=None`, every step (True) or only top commands (False).
    """
    load_builtin_steps()
    order = {m: i for i, m in enumerate(BUILTIN_MODULES)}
    entries = sorted(
        enumerate(_STEPS.values()),
        key=lambda p: (order.get(p[1].cls.__module__, len(order)), p[0]),
    )
    return [e for _, e in entries if (group is None and any_group) or e.group == group]


def lookup_step(name: str, group: str | None = None) -> StepEntry:
    """The registered step called `name` (in `group`: by registry name or command name).

    Raises:
        CurationError: no such step; the message lists the known names.
    """
    entries = registered_steps(group, any_group=group is None)
    for e in entries:
        if e.name == name or (group is not None and e.command == name):
            return e
    what = f"{group} step" if group else "step"
    known = ", ".join(e.command if group else e.name for e in entries) or "none"
    raise CurationError(f"unknown {what} {name!r}; choose one of {known}")


def run_step(
    name: str,
    lake: Lake,
    params: Any = None,
    *,
    where: str | None = None,
    replace: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Run the registered step `name` on `lake` (the Python twin of its CLI command).

    Args:
        name: the versioned registry name.
        lake: the lake.
        params: a value of the step's `Params` (None: the defaults).
        where: only rows matching this SQL predicate.
        replace: recompute when the columns exist with other parameters.
        progress: callback (rows done, rows total).

    Returns:
        The step's report (a `StepReport`, or the richer report of a custom `run`).

    Raises:
        CurationError: unknown step, or whatever the step raises.
    """
    entry = lookup_step(name)
    return entry.run(lake, params, where=where, replace=replace, progress=progress)


def load_builtin_steps() -> None:
    """Import every module of `curation.steps` so the classes in them are registered.

    Discovery, not a list: a new step module in `curation/steps/` registers itself.
    """
    global _loaded
    if _loaded:
        return
    # The package is loaded already (this module is imported through it); it is looked up,
    # not imported, because `curation.steps` imports this module (no import cycle).
    package = __name__.rpartition(".")[0]
    found = sorted(m.name for m in pkgutil.iter_modules(sys.modules[package].__path__))
    for module in (*BUILTIN_MODULES, *(f"{package}.{name}" for name in found)):
        importlib.import_module(module)
    _loaded = True


_loaded = False


def attribute_help(cls: type) -> dict[str, str]:
    """Field → help text from a class docstring's Google-style `Attributes:` section."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    inside, current = False, None
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break  # the next section
        match = re.match(r"^ {4}(\w+)(?: \([^)]*\))?: (.*)$", line)
        if match:
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current and line.strip():
            out[current] += " " + line.strip()
    return out


def _first_line(doc: str | None) -> str:
    return (inspect.cleandoc(doc).splitlines() or [""])[0] if doc else ""


def _same_class(a: type, b: type) -> bool:
    """Whether `b` is `a` redefined (a module reloaded), not another class."""
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)
