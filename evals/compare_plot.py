"""The picture of a comparison: per-row delta histogram and the breakdown by group."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from evals.compare import Comparison


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """Draw the per-row delta histogram and the breakdown by group into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = comparison
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.hist(c.deltas, bins=30, color="#4477aa")
    left.axvline(0, color="black", linewidth=0.8)
    left.set_title(f"{c.suite}/{c.metric}: {c.b} − {c.a} per row (n={len(c.deltas)})")
    left.set_xlabel("delta" + (" (negative = B better)" if c.lower_is_better else ""))
    labels = [f"{g.by}={g.group}" for g in c.breakdown]
    y = np.arange(len(labels))
    right.barh(y - 0.2, [g.a for g in c.breakdown], height=0.4, label=c.a)
    right.barh(y + 0.2, [g.b for g in c.breakdown], height=0.4, label=c.b)
    right.set_yticks(y, labels, fontsize=8)
    right.invert_yaxis()
    right.set_title(f"mean {c.metric} by group")
    right.legend()
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
