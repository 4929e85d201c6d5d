"""Run benchmark areas and rebuild docs/benchmarks.md.

Each area is a module `bench.bench_<area>` with `run() -> str` returning a Markdown section.
A section is saved as docs/bench/<area>.md, and docs/benchmarks.md is the header plus every
saved section, so running one area keeps the others' last results.

Usage: python -m bench.run [AREA …]   (no argument: every area)
"""

from __future__ import annotations

import importlib
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ROOT / "docs" / "bench"
AREAS = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def rebuild() -> Path:
    """Write docs/benchmarks.md from the saved sections."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    parts = [
        "# Benchmarks\n",
        "Produced by `make bench` (`python -m bench.run [AREA…]`); each section states the "
        "command, the machine and the comparison it makes. Numbers are from one run, not "
        f"averaged across machines. Last rebuilt at commit `{commit or '?'}`.\n",
    ]
    parts += [p.read_text() for p in sorted(SECTIONS.glob("*.md"))]
    out = ROOT / "docs" / "benchmarks.md"
    out.write_text("\n".join(parts))
    return out


def main(argv: list[str]) -> int:
    """Run the named areas (default all) and rebuild the page."""
    areas = argv or AREAS
    unknown = [a for a in areas if a not in AREAS]
    if unknown:
        print(f"unknown area(s) {unknown}; known: {AREAS}", file=sys.stderr)
        return 2
    SECTIONS.mkdir(parents=True, exist_ok=True)
    for area in areas:
        print(f"== bench {area}", flush=True)
        section = importlib.import_module(f"bench.bench_{area}").run()
        header = f"\n_Machine: {machine()}. Command: `python -m bench.run {area}`._\n\n"
        first, _, rest = section.partition("\n")
        (SECTIONS / f"{area}.md").write_text(first + "\n" + header + rest.lstrip("\n") + "\n")
    print(f"wrote {rebuild()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
