"""A throwaway lake and a deterministic hash-based embedder for tests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from curation.lake import Lake


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Write rows as JSON lines and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def make_lake(tmp_path: Path, sources: dict[str, Sequence[Any]] | None = None) -> Lake:
    """Create a lake under `tmp_path` and ingest `{source: rows}` (one version per source)."""
    lake = Lake.create(tmp_path / "lake")
    for source, rows in (sources or {}).items():
        lake.ingest([write_jsonl(tmp_path / f"{source}.jsonl", rows)], source=source)
    return lake


class FakeEmbedder:
    """Deterministic unit vectors from word hashes, with the real embedder's interface.

    Similar texts share words, so share directions. Same interface as the real embedder:
    `encode(texts) -> float32 [n, dim]`.

    Args:
        dim: length of each vector.
    """

    def __init__(self, dim: int = 32) -> None:
        self.dim = dim
        self.name = f"fake-hash-{dim}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as L2-normalised bags of hashed words."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        norms: npt.NDArray[np.float32] = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms
