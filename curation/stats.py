"""Dataset statistics per source: rows, kinds, characters, messages, length percentiles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from curation.lake import Lake, VersionRef
from curation.query import connect

if TYPE_CHECKING:
    import pyarrow as pa


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


@dataclass(frozen=True)
class TokenStats:
    """Token totals of one source (rows with `n_tokens`)."""

    source: str
    rows: int
    tokens: int
    mean: float
    p50: float
    p90: float


@dataclass(frozen=True)
class ScoreStats:
    """The distribution of one numeric `quality_*` column."""

    column: str
    rows: int
    mean: float
    p10: float
    p50: float
    p90: float
    low: float
    high: float


@dataclass(frozen=True)
class RateStats:
    """How many checked rows a mark flags (`is_dup`, PII, contamination, …)."""

    name: str
    checked: int
    flagged: int

    @property
    def rate(self) -> float:
        """Flagged share of checked rows (0 when none checked)."""
        return self.flagged / self.checked if self.checked else 0.0


@dataclass(frozen=True)
class EnrichmentStats:
    """What the enrichment columns say about `records` at a version (empty parts when absent)."""

    version: int
    tokens: tuple[TokenStats, ...]
    scores: tuple[ScoreStats, ...]
    rates: tuple[RateStats, ...]
    reasons: tuple[tuple[str, str, int], ...]
    """(column, reason, rows) from `quality_*_reasons` list columns, most frequent first."""


_RATES = (
    ("duplicate (any method)", "is_dup", "is_dup"),
    ("duplicate (exact)", "is_dup_exact", "is_dup_exact"),
    ("duplicate (near)", "is_dup_near", "is_dup_near"),
    ("duplicate (semantic)", "is_dup_semantic", "is_dup_semantic"),
    ("has PII", "pii_count", "pii_count > 0"),
    ("contaminated", "contaminated", "contaminated"),
)


def _numeric(field_type: pa.DataType) -> bool:
    import pyarrow as pa

    numeric: bool = pa.types.is_integer(field_type) or pa.types.is_floating(field_type)
    return numeric


def enrichment_stats(lake: Lake, ref: VersionRef = None) -> EnrichmentStats:
    """Token totals, score distributions and flag rates of one `records` version.

    Token totals per source, `quality_*` score distributions, quality-failure reasons, and
    dup / PII / contamination rates, for whichever of those columns exist.
    """
    import pyarrow as pa

    version = lake.resolve(ref)
    schema = lake.records(version).schema
    names = set(schema.names)
    con = connect(lake, version)
    tokens: list[TokenStats] = []
    if "n_tokens" in names:
        for r in con.execute(
            """SELECT source, count(n_tokens), coalesce(sum(n_tokens), 0), avg(n_tokens),
                      quantile_cont(n_tokens, 0.5), quantile_cont(n_tokens, 0.9)
               FROM records WHERE n_tokens IS NOT NULL GROUP BY source ORDER BY source"""
        ).fetchall():
            tokens.append(
                TokenStats(str(r[0]), int(r[1]), int(r[2]), *(float(x or 0) for x in r[3:]))
            )
    scores: list[ScoreStats] = []
    reasons: list[tuple[str, str, int]] = []
    for field in schema:
        if not field.name.startswith("quality_"):
            continue
        col = f'"{field.name}"'
        if _numeric(field.type):
            score_row = con.execute(
                f"""SELECT count({col}), avg({col}), quantile_cont({col}, 0.1),
                           quantile_cont({col}, 0.5), quantile_cont({col}, 0.9), min({col}),
                           max({col}) FROM records WHERE {col} IS NOT NULL"""
            ).fetchone()
            if score_row and score_row[0]:
                values = (float(x) for x in score_row[1:])
                scores.append(ScoreStats(field.name, int(score_row[0]), *values))
        elif pa.types.is_list(field.type) and field.name.endswith("_reasons"):
            for reason, n in con.execute(
                f"""SELECT reason, count(*) AS n FROM (SELECT unnest({col}) AS reason FROM records)
                    GROUP BY reason ORDER BY n DESC, reason"""
            ).fetchall():
                reasons.append((field.name, str(reason), int(n)))
    rates = []
    for label, column, flagged in _RATES:
        if column in names:
            rate_row = con.execute(
                f"SELECT count({column}), count(*) FILTER ({flagged}) FROM records"
            ).fetchone()
            if rate_row:
                rates.append(RateStats(label, int(rate_row[0]), int(rate_row[1])))
    return EnrichmentStats(version, tuple(tokens), tuple(scores), tuple(rates), tuple(reasons))


def plot_all(lake: Lake, folder: str | Path, ref: VersionRef = None) -> list[Path]:
    """Write one PNG per chart into `folder`: text lengths, tokens, each score, and rates.

    Returns:
        The paths written (charts whose columns do not exist are skipped).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    version = lake.resolve(ref)
    paths = [plot_lengths(lake, out / "lengths.png", version)]
    names = set(lake.records(version).schema.names)
    con = connect(lake, version)

    def histogram(column: str, title: str, path: Path, log: bool = False) -> None:
        rows = con.execute(
            f'SELECT source, "{column}" FROM records WHERE "{column}" IS NOT NULL'
        ).fetchall()
        by_source: dict[str, list[float]] = {}
        for source, value in rows:
            by_source.setdefault(source, []).append(float(value))
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for source, values in sorted(by_source.items()):
            ax.hist(values, bins=40, alpha=0.6, label=f"{source} ({len(values)})", log=log)
        ax.set_xlabel(column)
        ax.set_ylabel("rows")
        ax.set_title(f"{title} · records v{version}")
        if by_source:
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    if "n_tokens" in names:
        histogram("n_tokens", "tokens per row", out / "tokens.png")
    stats_ = enrichment_stats(lake, version)
    for score in stats_.scores:
        histogram(score.column, f"{score.column} distribution", out / f"{score.column}.png")
    if stats_.rates:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        labels = [r.name for r in stats_.rates]
        values = [100 * r.rate for r in stats_.rates]
        bars = ax.barh(labels, values, color="tab:red")
        for bar, r in zip(bars, stats_.rates, strict=True):
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {r.flagged}/{r.checked}",
                va="center",
            )
        ax.set_xlabel("% of checked rows")
        ax.set_title(f"marks · records v{version}")
        ax.invert_yaxis()
        fig.tight_layout()
        path = out / "rates.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
