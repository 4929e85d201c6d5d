"""Answer only requests addressed to this server (the DNS-rebinding guard).

A page on `evil.example` can point its own name at 127.0.0.1 and then read from and post to a
local server as if it were same-origin; the browser still sends `Host: evil.example`. So every
request's `Host` must name the address the server was started on (or a loopback name when it
serves loopback), else it gets a 421 and nothing else (no page, no token). A state-changing
request that carries an `Origin` must come from one of those hosts too (403).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SAFE = ("GET", "HEAD", "OPTIONS")


def split_host(value: str) -> tuple[str, int | None]:
    """`host[:port]` (with `[v6]` brackets) as a lower-case name and a port.

    Example:
        >>> split_host("[::1]:8765"), split_host("LocalHost")
        (('::1', 8765), ('localhost', None))
    """
    got = urlsplit("//" + value.strip())
    try:
        port = got.port
    except ValueError:
        return "", -1
    return (got.hostname or "").lower(), port


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names a server bound to `host` answers to.

    Loopback binds answer to every loopback name; a wildcard bind (`0.0.0.0`, `::`) answers to
    loopback names and the `extra` names only (give the machine's name with `--allowed-host`).
    """
    names = {h.lower().strip("[]") for h in extra if h}
    bind = host.lower().strip("[]")
    if bind in LOOPBACK or bind in ("0.0.0.0", "::"):
        names.update(LOOPBACK)
    if bind not in ("0.0.0.0", "::"):
        names.add(bind)
    return frozenset(names)


class HostCheck:
    """ASGI middleware: 421 unless `Host` is one of `hosts` (and `port`, when set and given)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str], port: int | None = None) -> None:
        self.app = app
        self.hosts = frozenset(hosts)
        self.port = port

    def _ok(self, value: str) -> bool:
        name, port = split_host(value)
        if name not in self.hosts:
            return False
        return port is None or self.port is None or port == self.port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 421 (not this server's Host) or 403 (foreign write)."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self._ok(host):
            await _refuse(send, 421, f"Host {host!r} is not this server's address")
            return
        origin = headers.get("origin")
        if origin and scope.get("method", "GET") not in _SAFE:
            netloc = urlsplit(origin).netloc
            if origin == "null" or not self._ok(netloc):
                await _refuse(send, 403, f"a request from {origin!r} may not change this lake")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, message: str) -> None:
    import orjson

    body = orjson.dumps({"error": message, "status": status})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
