"""Charts drawn server-side with matplotlib as PNG bytes: lengths, scores, sources, loss curves."""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from curation import Lake
from curation.lake import VersionRef
from mixlake.web.errors import WebError
from mixlake.web.records import check_column, column_values, numeric_columns, resolve

KINDS = ("length", "score", "source")
_LOCK = threading.Lock()
_COLORS = ["#3b6ea5", "#d9822b", "#4f9d69", "#b04a5a", "#7a5ea8", "#5a8f9e", "#a08a3c"]


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _figure(title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(5.6, 3.4))
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


def _by_source(values: list[tuple[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for source, v in values:
        if v is not None and v == v:
            out.setdefault(source, []).append(float(v))
    return out


def chart(
    lake: Lake, kind: str, ref: VersionRef = None, where: str = "", column: str = ""
) -> bytes:
    """One chart of the rows a predicate selects at a version, as PNG bytes.

    Args:
        lake: the lake.
        kind: `length` (n_tokens when present, else characters), `score` (a numeric column,
            default the first one) or `source` (rows per source).
        ref: version or tag.
        where: read-only SQL predicate.
        column: the numeric column for `score`.

    Raises:
        WebError: an unknown kind, a bad predicate or column.
    """
    if kind not in KINDS:
        raise WebError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    version = resolve(lake, ref)
    names = lake.records(version).schema.names
    with _LOCK:
        if kind == "source":
            return _sources(lake, version, where)
        if kind == "length":
            expr, label = (
                ('"n_tokens"', "tokens")
                if "n_tokens" in names
                else (
                    "length(text)",
                    "characters",
                )
            )
            return _histogram(lake, version, where, expr, f"length ({label})", log=True)
        numeric = [c for c in numeric_columns(lake.records(version).schema) if c != "n_tokens"]
        col = column or (numeric[0] if numeric else "")
        if not col:
            return _empty("no score columns yet (run an enrichment step)")
        return _histogram(lake, version, where, check_column(lake, version, col), col, log=False)


def _empty(message: str) -> bytes:
    fig, ax = _figure(message)
    ax.set_axis_off()
    return _png(fig)


def _histogram(lake: Lake, version: int, where: str, expr: str, label: str, log: bool) -> bytes:
    table = column_values(lake, version, where, f"CAST({expr} AS DOUBLE)")
    groups = _by_source(
        list(zip(table.column("source").to_pylist(), table.column("v").to_pylist(), strict=True))
    )
    n = sum(len(v) for v in groups.values())
    fig, ax = _figure(f"{label} · {n} rows · version {version}")
    if not n:
        ax.text(0.5, 0.5, "no rows match", ha="center", va="center", transform=ax.transAxes)
        return _png(fig)
    every = np.concatenate([np.asarray(v) for v in groups.values()])
    lo, hi = float(every.min()), float(every.max())
    if log and lo >= 1 and hi > 10 * lo:
        bins = np.logspace(np.log10(lo), np.log10(hi), 30)
        ax.set_xscale("log")
    else:
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
    for i, (source, vals) in enumerate(sorted(groups.items())):
        ax.hist(vals, bins=bins, alpha=0.65, label=f"{source} ({len(vals)})", color=_COLORS[i % 7])
    ax.set_xlabel(label)
    ax.set_ylabel("rows")
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def _sources(lake: Lake, version: int, where: str) -> bytes:
    table = column_values(lake, version, where, "1")
    counts: dict[str, int] = {}
    for s in table.column("source").to_pylist():
        counts[s] = counts.get(s, 0) + 1
    fig, ax = _figure(f"rows per source · version {version}")
    if not counts:
        ax.text(0.5, 0.5, "no rows match", ha="center", va="center", transform=ax.transAxes)
        return _png(fig)
    names = sorted(counts, key=lambda s: -counts[s])[:20]
    ax.barh(names[::-1], [counts[s] for s in names[::-1]], color=_COLORS[0])
    for y, s in enumerate(names[::-1]):
        ax.text(counts[s], y, f" {counts[s]}", va="center", fontsize=8)
    ax.set_xlabel("rows")
    return _png(fig)


def loss_curve(history: list[dict[str, Any]], title: str) -> bytes:
    """Training and eval loss against step, from a run's `metrics.history`."""
    with _LOCK:
        fig, ax = _figure(title)
        for key, color in (("loss", _COLORS[0]), ("eval_loss", _COLORS[1])):
            points = [(h["step"], h[key]) for h in history if key in h and "step" in h]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", markersize=3, label=key, color=color)
        if not history:
            ax.text(0.5, 0.5, "no loss history", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.set_xlabel("step")
            ax.set_ylabel("loss")
            ax.legend(fontsize=8, frameon=False)
        return _png(fig)
