"""What the local servers the tests start share: a free port, a wait, the environment, a stop."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    proc: subprocess.Popen[bytes],
    port: int,
    name: str,
    timeout: float,
    details: Callable[[], str] = lambda: "",
) -> None:
    """Block until `proc` accepts connections on `port`; kill it and raise if it never does.

    Raises:
        RuntimeError: `name did not start`, with `details()` (e.g. the end of its log).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"{name} did not start{details()}") from None
            time.sleep(0.1)


@contextmanager
def environment(names: Iterable[str], values: dict[str, str]) -> Iterator[None]:
    """Clear the variables `names`, set `values`, and put every one back afterwards."""
    names = tuple(names)
    saved = {k: os.environ.get(k) for k in (*names, *values)}
    for k in names:
        os.environ.pop(k, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server, killing it if it has not exited after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
