"""The curator's web UI (`mixlake serve`): records, charts, history, mixes, runs and evals.

Read-only by default; tag, rollback and delete-by-batch need `allow_writes=True` and a
confirmation token. Every page has a JSON twin under `/api`.

Example:
    >>> from mixlake.web import create_app                       # doctest: +SKIP
    >>> app = create_app("./lake")                                # doctest: +SKIP
    >>> from fastapi.testclient import TestClient                 # doctest: +SKIP
    >>> TestClient(app).get("/api/records", params={"limit": 3}).json()  # doctest: +SKIP
"""

from mixlake.web.app import WebState, create_app
from mixlake.web.errors import WebError

__all__ = ["WebError", "WebState", "create_app"]
