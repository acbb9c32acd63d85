"""Kernel cache invalidations (and page-cache stores), sent from one dedicated thread.

pyfuse3's invalidate_inode/invalidate_entry block on kernel locks that an
in-flight request may hold, so they are never called inside a request
handler or a lock callback: both only queue here, and this thread drains the
queue. A lock callback may wait, bounded, until what it queued reached the
kernel (`wait_sent`) before its lock goes back; a request handler never
waits for this thread. Never raises into its callers; an inode or entry the
kernel no longer knows is simply skipped.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
from dataclasses import dataclass

import pyfuse3

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InvalInode:
    ino: int
    attr_only: bool


@dataclass(frozen=True, slots=True)
class Store:
    ino: int
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class InvalEntry:
    parent: int
    name: bytes


class Notifier:
    def __init__(self) -> None:
        self._q: queue.SimpleQueue[InvalInode | InvalEntry | Store | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fuse-notify", daemon=True)
        self.sent = 0
        self._cv = threading.Condition()
        self._queued = 0        # items put so far (the stop marker not counted)
        self._done = 0          # items handled so far, sent or skipped
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        self._q.put(None)
        self._thread.join(timeout=5)

    def inode(self, ino: int, attr_only: bool = False) -> None:
        self._put(InvalInode(ino, attr_only))

    def entry(self, parent: int, name: bytes) -> None:
        self._put(InvalEntry(parent, name))

    def store(self, ino: int, offset: int, data: bytes) -> None:
        """Put file data into the kernel's page cache (in queue order with invalidations)."""
        self._put(Store(ino, offset, data))

    def _put(self, item: InvalInode | InvalEntry | Store) -> None:
        with self._cv:
            self._queued += 1
            self._q.put(item)

    def wait_sent(self, timeout: float) -> bool:
        """Wait until everything queued before this call was handed to the kernel; False when
        `timeout` passed first (an invalidation can wait on a kernel lock an in-flight request
        holds, and that request may wait for the very lock being given back: callers bound
        the wait). Never call it from a request handler."""
        if threading.current_thread() is self._thread:
            return False
        with self._cv:
            target = self._queued
            return self._cv.wait_for(lambda: self._done >= target or self._stopped, timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                if isinstance(item, InvalInode):
                    pyfuse3.invalidate_inode(item.ino, item.attr_only)
                elif isinstance(item, Store):
                    pyfuse3.notify_store(item.ino, item.offset, item.data)
                else:
                    pyfuse3.invalidate_entry(item.parent, item.name)
                self.sent += 1
            except OSError as e:
                if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                    log.debug("invalidation %s failed: %s", item, e)
            except Exception:  # pyfuse3 may raise its own errors after unmount; never let the thread die
                log.debug("invalidation %s failed", item, exc_info=True)
            finally:
                with self._cv:
                    self._done += 1
                    self._cv.notify_all()
