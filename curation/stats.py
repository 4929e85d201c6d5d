"""Dataset statistics per source: rows, kinds, characters, messages, length percentiles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curation.lake import Lake, VersionRef
from curation.query import connect


@dataclass(frozen=True)
class SourceStats:
    """Statistics of one group of rows (a source, or everything)."""

    group: str
    rows: int
    text: int
    chat: int
    preference: int
    chars: int
    messages: int
    p50_chars: float
    p90_chars: float
    p99_chars: float
    max_chars: int


def stats(lake: Lake, ref: VersionRef = None, by: str | None = "source") -> list[SourceStats]:
    """Statistics of `records` at a version, grouped by `by` (a column) or overall (None)."""
    con = connect(lake, ref)
    group = f'CAST("{by}" AS VARCHAR)' if by else "'all'"
    rows = con.execute(
        f"""SELECT {group} AS g, count(*), count(*) FILTER (kind = 'text'),
                   count(*) FILTER (kind = 'chat'), count(*) FILTER (kind = 'preference'),
                   coalesce(sum(length(text)), 0), coalesce(sum(len(messages)), 0),
                   quantile_cont(length(text), 0.5), quantile_cont(length(text), 0.9),
                   quantile_cont(length(text), 0.99), max(length(text))
            FROM records GROUP BY g ORDER BY g"""
    ).fetchall()
    out = []
    for r in rows:
        n = [int(x or 0) for x in r[1:7]]
        q = [float(x or 0) for x in r[7:10]]
        out.append(
            SourceStats(
                group=str(r[0]),
                rows=n[0],
                text=n[1],
                chat=n[2],
                preference=n[3],
                chars=n[4],
                messages=n[5],
                p50_chars=q[0],
                p90_chars=q[1],
                p99_chars=q[2],
                max_chars=int(r[10] or 0),
            )
        )
    return out


def plot_lengths(lake: Lake, out: str | Path, ref: VersionRef = None) -> Path:
    """Draw a histogram of text length (characters, log scale) per source into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    con = connect(lake, ref)
    data = con.execute("SELECT source, length(text) FROM records").fetchall()
    by_source: dict[str, list[int]] = {}
    for source, n in data:
        by_source.setdefault(source, []).append(n)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    top = max((max(v) for v in by_source.values()), default=10)
    bins = [float(b) for b in np.logspace(0, np.log10(max(top, 10)), 40)]
    for source, lengths in sorted(by_source.items()):
        ax.hist(lengths, bins=bins, alpha=0.6, label=f"{source} ({len(lengths)})")
    ax.set_xscale("log")
    ax.set_xlabel("text length (characters)")
    ax.set_ylabel("rows")
    ax.set_title(f"records at version {lake.resolve(ref)}")
    if by_source:
        ax.legend()
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
