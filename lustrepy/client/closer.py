"""MDS closes sent in the background, in order, off the FUSE request path.

A release() needs no answer the application could see (the kernel ignores
its errors), so the client answers it at once and a thread sends the close.
Closes queued while one is on its way go together in the next RPC (one MDS
transaction). Unmount and fsync wait for the queue to drain. Never raises
into callers.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

log = logging.getLogger(__name__)

MAX_BATCH = 256
Item = tuple[int, "int | None"]          # (MDS open handle, size a writer knows, or None)


class Closer:
    def __init__(self, send: Callable[[list[Item]], None]) -> None:
        self._send = send
        self._q: queue.Queue[Item | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="mds-close", daemon=True)
        self._thread.start()

    def submit(self, handle: int, size: int | None = None) -> None:
        self._q.put((handle, size))

    def drain(self) -> None:
        """Block until every close submitted so far was sent."""
        self._q.join()

    def stop(self) -> None:
        self.drain()
        self._q.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._q.get()
            batch: list[Item] = [] if first is None else [first]
            stop = first is None
            while not stop and len(batch) < MAX_BATCH:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            try:
                if batch:
                    self._send(batch)
            except Exception as e:  # a close that failed is logged; the MDS closes it at eviction
                log.warning("closing %d handles failed: %s", len(batch), e)
            finally:
                for _ in range(len(batch) + (1 if stop else 0)):
                    self._q.task_done()
            if stop:
                return
