"""Kernel cache invalidations (and page-cache stores), sent from dedicated threads.

pyfuse3's invalidate_inode/invalidate_entry block on kernel locks that an
in-flight request may hold, so they are never called inside a request
handler or a lock callback: both only queue here, and these threads drain
the queues. Attribute invalidations have a thread of their own: they take no
lock a request holds, so a lock callback may wait, bounded, until those
queued so far reached the kernel (`wait_sent`) before its lock goes back.
Entry and page invalidations (and page stores, in order with them) go
through the other thread; nobody waits for them: an entry invalidation takes
the directory's lock, which a create in flight there holds while it waits,
at the MDS, for another client's lock callback, which may be waiting for ours.
A request handler never waits for either thread. Never raises into its
callers; an inode or entry the kernel no longer knows is simply skipped.
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
        self._attrq: queue.SimpleQueue[InvalInode | InvalEntry | Store | None] = queue.SimpleQueue()
        self._threads = (threading.Thread(target=self._run, args=(self._q, False), name="fuse-notify",
                                          daemon=True),
                         threading.Thread(target=self._run, args=(self._attrq, True), name="fuse-notify-attr",
                                          daemon=True))
        self.sent = 0
        self._cv = threading.Condition()
        self._attrs_queued = 0  # attribute invalidations put so far
        self._attrs_done = 0    # ... and handled, sent or skipped
        self._stopped = False

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        self._q.put(None)
        self._attrq.put(None)
        for t in self._threads:
            t.join(timeout=5)

    def inode(self, ino: int, attr_only: bool = False) -> None:
        if attr_only:
            with self._cv:
                self._attrs_queued += 1
                self._attrq.put(InvalInode(ino, True))
        else:
            self._q.put(InvalInode(ino, False))

    def entry(self, parent: int, name: bytes) -> None:
        self._q.put(InvalEntry(parent, name))

    def store(self, ino: int, offset: int, data: bytes) -> None:
        """Put file data into the kernel's page cache (in queue order with invalidations)."""
        self._q.put(Store(ino, offset, data))

    def wait_sent(self, timeout: float) -> bool:
        """Wait until every attribute invalidation queued before this call was handed to the
        kernel; False when `timeout` passed first. Never call it from a request handler."""
        if threading.current_thread() in self._threads:
            return False
        with self._cv:
            target = self._attrs_queued
            return self._cv.wait_for(lambda: self._attrs_done >= target or self._stopped, timeout)

    def _run(self, q: queue.SimpleQueue, attrs: bool) -> None:
        while True:
            item = q.get()
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
                if attrs:
                    with self._cv:
                        self._attrs_done += 1
                        self._cv.notify_all()
