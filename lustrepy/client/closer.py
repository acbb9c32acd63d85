"""MDS closes sent in the background, in order, off the FUSE request path.

A release() needs no answer the application could see (the kernel ignores
its errors), so the client answers it at once and a thread sends the close.
Unmount and fsync wait for the queue to drain. Never raises into callers.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)


class Closer:
    def __init__(self) -> None:
        self._q: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="mds-close", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._q.put((fn, args))

    def drain(self) -> None:
        """Block until every close submitted so far was sent."""
        self._q.join()

    def stop(self) -> None:
        self.drain()
        self._q.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                fn, args = item
                try:
                    fn(*args)
                except Exception as e:  # a close that failed is logged; the MDS closes it at eviction
                    log.warning("close failed: %s", e)
            finally:
                self._q.task_done()
