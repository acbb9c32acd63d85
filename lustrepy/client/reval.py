"""Holding a file open between the kernel's second look at a name and its open.

When an open or a getattr of an inode answers ESTALE (a rename replaced the
file, and the MDS or this client destroyed it), the Linux VFS walks the path
again with LOOKUP_REVAL, once: FUSE looks every name up afresh, then opens (or
stats) what the last lookup found. If the file that lookup found is replaced
and destroyed too before the open arrives, the application gets ESTALE. To
close that window, a lookup made by a thread that was just answered ESTALE
holds the regular file it finds open (a "hold": an ordinary read-only open by
llite); that thread's open of that inode, or a short deadline, lets it go. A
hold belongs to the thread that made it: another reader opening and closing the
same inode meanwhile must not release it (the file could then be destroyed
before the retrying thread's open arrives). An
open file is only orphaned by a rename, never destroyed, so the second open
finds it, as a local file system would.

Bookkeeping only: which threads are expected to look again, and which holds
are outstanding with their deadlines. Never does I/O; llite opens and releases
the holds. Used from the FUSE thread only (trio), so it takes no lock.
"""

from __future__ import annotations

import time
from typing import Callable

RETRY_WINDOW = 2.0      # seconds after an ESTALE in which a thread's lookups are its retry
HOLD_FOR = 2.0          # seconds a hold waits for the open it was made for
MAX_HOLDS = 64          # holds outstanding at once (more are not made)


class RetryHolds:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._retrying: dict[int, float] = {}           # thread id -> until when
        self._holds: dict[tuple[int, int], tuple[int, float]] = {}  # (thread, inode) -> (handle, until)

    def stale_answered(self, tid: int) -> None:
        """Thread `tid` was just answered ESTALE: the kernel will look its path up again."""
        if tid:
            self._retrying[tid] = self._clock() + RETRY_WINDOW

    def retrying(self, tid: int) -> bool:
        """Is thread `tid` walking a path again after an ESTALE (and is there room for a hold)?"""
        until = self._retrying.get(tid)
        if until is None:
            return False
        if until < self._clock():
            del self._retrying[tid]
            return False
        return len(self._holds) < MAX_HOLDS

    def held(self, tid: int, ino: int, fh: int) -> int | None:
        """File handle `fh` now holds `ino` open for thread `tid`; the handle of that thread's
        older hold of it, to release."""
        old = self._holds.get((tid, ino))
        self._holds[(tid, ino)] = (fh, self._clock() + HOLD_FOR)
        return old[0] if old is not None else None

    def take(self, tid: int, ino: int) -> int | None:
        """Thread `tid`'s open this hold was made for came (or failed): its handle, to release."""
        hold = self._holds.pop((tid, ino), None)
        return hold[0] if hold is not None else None

    def expired(self) -> list[int]:
        """File handles of holds whose open never came, to release; forgets threads past their window."""
        now = self._clock()
        for tid in [t for t, until in self._retrying.items() if until < now]:
            del self._retrying[tid]
        gone = [key for key, (_, until) in self._holds.items() if until < now]
        return [self._holds.pop(key)[0] for key in gone]

    def statistics(self) -> dict[str, int]:
        return {"retrying_threads": len(self._retrying), "holds": len(self._holds)}
