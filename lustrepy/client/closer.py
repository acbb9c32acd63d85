"""MDS closes sent in the background, in order, off the FUSE request path.

A release() needs no answer the application could see (the kernel ignores
its errors), so the client answers it at once and a thread sends the close.
The thread gathers closes for up to GATHER_S after the first one before it
sends them together, and closes queued while one RPC is on its way go in the
next: one RPC and one MDS transaction for many closes (a loop of creates
closes a file every millisecond or so). Whoever drains the queue (a lock
callback, fsync, unmount, a truncate) cuts the gathering short. A writer's
close carries the size the MDS keeps for the file, so a close that fails for
transport trouble (the MDS down or restarting, the network cut) is kept and
sent again, with backoff, until it lands; a close the MDS refuses with a
POSIX error is logged and dropped. fsync and unmount
wait for the queue to drain, within a bound; unmount logs what it could not
send. Never raises into callers.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections import deque
from typing import Callable

from lustrepy.common.errors import LpError

log = logging.getLogger(__name__)

MAX_BATCH = 256
GATHER_S = 0.003        # seconds the thread waits for more closes after the first before it sends
RETRY_FIRST = 0.5       # seconds before the first retry of a failed close
RETRY_MAX = 10.0        # the backoff between retries grows to this
Item = tuple[int, "int | None"]          # (MDS open handle, size a writer knows, None, or mdc.SIZE_LOST)
_KEEP = (errno.ENOTCONN, errno.ETIMEDOUT, errno.ECANCELED, errno.EIO, errno.EAGAIN, errno.ESHUTDOWN)


class Closer:
    def __init__(self, send: Callable[[list[Item]], None], gather: float = GATHER_S) -> None:
        self._send = send
        self._gather_s = gather
        self._cv = threading.Condition()
        self._queue: deque[Item] = deque()
        self._batch: list[Item] = []        # taken by the thread and not yet sent
        self._hurry = 0                     # drain() callers waiting: send without gathering
        self._stopping = False
        self._wake = threading.Event()      # cuts a retry's backoff short (stop)
        self.retries = 0
        self._thread = threading.Thread(target=self._run, name="mds-close", daemon=True)
        self._thread.start()

    def submit(self, handle: int, size: int | None = None) -> None:
        with self._cv:
            self._queue.append((handle, size))
            if len(self._queue) == 1 or len(self._queue) >= MAX_BATCH:     # the thread gathers the rest
                self._cv.notify_all()

    def busy(self) -> bool:
        """Closes submitted and not sent yet."""
        with self._cv:
            return bool(self._queue or self._batch)

    def pending(self) -> list[Item]:
        """Closes not sent yet (queued, or being sent or retried)."""
        with self._cv:
            return list(self._queue) + list(self._batch)

    def drain(self, timeout: float | None = None) -> bool:
        """Block until every close submitted so far was sent (or `timeout` passed): True if it was."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            self._hurry += 1
            self._cv.notify_all()
            try:
                while self._queue or self._batch:
                    left = None if end is None else end - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cv.wait(left)
                return True
            finally:
                self._hurry -= 1

    def stop(self, timeout: float = 30.0) -> list[Item]:
        """Send what is queued (retrying within `timeout`) and end the thread; returns, and logs,
        the closes that could not be sent."""
        self.drain(timeout)
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._wake.set()
        self._thread.join(timeout=10)
        left = self.pending()
        if left:
            log.error("%d MDS closes could not be sent (handles %s): the MDS takes those files' sizes "
                      "from their objects", len(left), ", ".join(str(h) for h, _ in left[:20]))
        return left

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if self._stopping:          # stop() gave the queue its time: the rest stays unsent
                    return
                self._gather()
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                self._batch = batch
            sent = self._send_until_done(batch)
            with self._cv:
                self._batch = []
                self._cv.notify_all()
                if not sent:                # stopping: what is left goes back for pending()
                    self._queue.extendleft(reversed(batch))
                    return

    def _gather(self) -> None:
        """Under _cv: let more closes join the first for up to GATHER_S, unless someone drains."""
        end = time.monotonic() + self._gather_s
        while not self._hurry and not self._stopping and len(self._queue) < MAX_BATCH:
            left = end - time.monotonic()
            if left <= 0:
                return
            self._cv.wait(left)

    def _send_until_done(self, batch: list[Item]) -> bool:
        """Send one batch, again and again while the MDS cannot be reached; False when stopping first."""
        backoff = RETRY_FIRST
        while True:
            try:
                self._send(batch)
                return True
            except LpError as e:
                if e.errno not in _KEEP:
                    log.warning("closing %d handles refused: %s", len(batch), e.message)
                    return True
                log.warning("closing %d handles failed (sent again in %.1fs): %s", len(batch), backoff, e.message)
            except Exception:  # anything else must not end the thread: kept and sent again
                log.exception("closing %d handles failed", len(batch))
            self.retries += 1
            with self._cv:
                if self._stopping:
                    return False
            self._wake.wait(backoff)
            backoff = min(backoff * 2, RETRY_MAX)
