"""Run a generator one step ahead in a worker thread, so two stages of a pipeline overlap.

Ingest has two stages that each spend most of their time outside the GIL: parsing,
normalising and hashing blocks (Arrow compute, OpenSSL) and encoding and writing them (Lance,
in Rust). `ahead` lets the first work on the next block while the second writes this one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def ahead(items: Iterator[T], depth: int = 1, name: str = "mixlake-ahead") -> Iterator[T]:
    """Yield what `items` yields, computing up to `depth` items ahead in a thread.

    An exception in the worker (KeyboardInterrupt from a progress callback included) is
    raised here, in order, after the items before it. If the consumer stops early (an
    exception of its own, or `close()`), the worker stops after the item in hand.
    """
    out: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as e:  # handed to the consumer, which re-raises it
            put((_DONE, e))
            return
        put((_DONE, None))

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item, error = out.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
