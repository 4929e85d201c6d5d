"""What every request of the web app needs: the lake, whether writes are on, the confirmer.

Its own module, below the routers and the app, so neither imports the other back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from curation import Lake
from mixlake.web.errors import WebError
from mixlake.web.history import Confirmer


@dataclass
class WebState:
    """What every request needs: the lake location, whether writes are on, the confirmer."""

    lake_uri: str
    allow_writes: bool = False
    confirmer: Confirmer = field(default_factory=Confirmer)

    def lake(self) -> Lake:
        """Open the lake (cheap: reads the latest manifest)."""
        return Lake(self.lake_uri)

    def require_writes(self, action: str) -> None:
        """Raise a 403 unless the server was started with `--allow-writes`."""
        if not self.allow_writes:
            raise WebError(
                f"{action}: the UI is read-only; restart with `mixlake serve --allow-writes`", 403
            )


def state(request: Request) -> WebState:
    """The `WebState` of the app serving `request`."""
    got: Any = request.app.state.web
    return got
