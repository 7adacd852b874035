"""Run an iterator ahead in a background thread: decode the next frames while the current ones are analysed.

PyAV decodes and converts frames with the GIL released, so on a machine with two or more cores a
decoding thread overlaps with face detection and the CNNs (which release it too). Nothing else is
shared: the consumer sees the same items, in the same order, and the same exceptions at the same
place as without prefetching.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")
_END = object()
_POLL_S = 0.1


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Yield the items of ``items``, produced up to ``depth`` items ahead by a daemon thread.

    An exception raised by ``items`` is re-raised in the consumer after the items produced before
    it. When the consumer stops early (``break``, an exception, ``close()``), the thread stops at its
    next item and closes ``items`` (so a decoder's file is closed) before this generator returns.
    Memory: at most ``depth + 1`` items are held besides the consumer's.

    Raises:
        ValueError: ``depth < 1``.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        error = None
        try:
            for item in it:
                if not put((item, None)):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            error = e
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        put((_END, error))

    worker = threading.Thread(target=produce, name="emocontext-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = box.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        worker.join()
