"""`mixlake serve`: the curator's web UI over a lake."""

from __future__ import annotations

from typing import Annotated

import typer

from mixlake.options import LakeOpt, open_lake
from mixlake.output import console, summary


def serve(
    lake: LakeOpt = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes", help="Enable tag, rollback, delete-by-batch, labels (confirmed)."
        ),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Another name this server answers to (repeatable); any other Host gets 421.",
        ),
    ] = None,
) -> None:
    """Serve the web UI: records, charts, history, mixes, runs, evals (read-only by default)."""
    import uvicorn

    from mixlake.web import create_app

    the_lake = open_lake(lake)
    extra = list(allowed_host or [])
    if host in ("0.0.0.0", "::"):
        import socket

        extra += [socket.gethostname(), socket.getfqdn()]
    app = create_app(
        the_lake.uri, allow_writes=allow_writes, host=host, port=port, extra_hosts=extra
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning: binding {host}: anyone who can reach it can read the lake")
    console.print(f"mixlake UI on http://{host}:{port}  (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
    summary(
        "server stopped",
        {"lake": the_lake.uri, "url": f"http://{host}:{port}", "writes": allow_writes},
    )


def register(app: typer.Typer) -> None:
    """Add `serve` to the CLI."""
    app.command()(serve)
