"""Read-ahead of one file for a sequential reader (Lustre's llite read-ahead, seen from one file).

ReadAhead tells sequential reads from random ones, keeps RA_AHEAD windows
fetched (or being fetched, on the read-ahead pool handed in by the owner)
ahead of a sequential reader, and holds what it fetched in a bounded
ReadCache in file offsets. Cached data is only kept while the locks it was
read under are: the owner drops it (`drop_locked`) on every revocation and
write, and a fetch that raced with either is not inserted (generations).

State is guarded by the owning FileData's mutex, handed in as a Condition;
every wait has a deadline. The fetching itself (locks, object reads, this
client's unsent bytes) is the owner's, through the ReadSource it passes in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Protocol

from lustrepy.client.datacache import Buf, ReadCache
from lustrepy.client.lov import assemble
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid

log = logging.getLogger(__name__)

MiB = 1024 * 1024
RA_MIN, RA_MAX = 4 * MiB, 32 * MiB   # read-ahead window
RA_PER_OBJECT = 4 * MiB     # a window reads about this much of each object (one Read stream each)
RA_AHEAD = 2                # windows kept fetched (or being fetched) ahead of a sequential reader
RANDOM_BLOCK = 1 << 20      # a random read fetches its aligned block of this size (at most a stripe)


class ReadSource(Protocol):
    """What ReadAhead asks of the file it serves."""

    def write_gen(self) -> int:
        """Counts writes buffered (read with the mutex held)."""

    def fetch_for_cache(self, start: int, stop: int) -> list[tuple[int, Buf]] | None:
        """File bytes [start, stop) read under PR locks; None when this client's unsent bytes lie there."""

    def has_overlay_locked(self, start: int, stop: int) -> bool:
        """This client's unacknowledged bytes lie inside [start, stop) (the mutex is held)."""


class ReadAhead:
    """Sequential-read detection, the read-ahead window and its cache for one file. Thread-safe."""

    def __init__(self, fid: Fid, cv: threading.Condition, source: ReadSource, pool: Executor, *,
                 timeout: float, count: Callable[..., None]) -> None:
        self.fid = fid
        self._cv = cv
        self._source = source
        self._pool = pool
        self._timeout = timeout
        self._count = count
        self.cache_gen = 0
        self._next = 0                  # where a sequential reader reads next
        self._end = 0                   # read-ahead fetched or asked for up to here
        self.size = 0                   # the file size the last read saw
        self._prefetching: list[tuple[int, int]] = []
        self.stripe_size = 1
        self.window = 1
        self.cache = ReadCache(0)

    def set_layout(self, stripe_size: int, count: int) -> None:
        """Size the window for a layout of `count` objects of `stripe_size` units (before any read)."""
        ra = min(max(max(stripe_size, RA_PER_OBJECT) * count, RA_MIN), RA_MAX)
        self.stripe_size = stripe_size
        self.window = ra - ra % stripe_size if ra > stripe_size else stripe_size
        self.cache = ReadCache(RA_AHEAD * self.window + self.window)

    def align_up(self, off: int) -> int:
        ss = self.stripe_size
        return -(-off // ss) * ss

    def note_read_locked(self, offset: int, end: int) -> bool:
        """A read of [offset, end) arrives; True when it is sequential (the mutex is held).

        The kernel's read-ahead sends several reads at once and they may arrive out of
        order: a read landing within a window of where the last one ended is sequential."""
        seq = abs(offset - self._next) <= self.window
        self._next = max(end, self._next) if seq else end
        if not seq:
            self._end = 0
        return seq

    def plan(self, offset: int, end: int, seq: bool, store: bool) -> tuple[int, int, bool]:
        """What a read of [offset, end) missing the cache fetches: (start, end, whole block).

        A short sequential read fetches up to the next window. A random read, when the kernel's page
        cache can take bytes (`store`), fetches its whole block in one RPC: what was not asked for goes
        there, so the next reads in the block cost no request at all."""
        if seq and end - offset < self.window:
            return offset, self.align_up(offset + self.window), False
        if not seq and store and end - offset < RANDOM_BLOCK:
            blk = min(RANDOM_BLOCK, self.stripe_size)
            start = offset - offset % blk
            if end <= start + blk:
                return start, start + blk, True
        return offset, end, False

    def get_locked(self, offset: int, end: int) -> bytes | None:
        return self.cache.get(offset, end) if self.cache.nbytes else None

    def keep_locked(self, parts: list[tuple[int, Buf]], start: int, stop: int, end: int, *, block: bool,
                    fresh: bool, store: Callable[[Fid, int, bytes], None] | None) -> None:
        """A read asked for bytes up to `end` fetched [start, stop) (the mutex is held): a whole block
        goes to the kernel's page cache through `store`, bytes beyond `end` to the read cache; nothing
        when the fetch is not `fresh` (a write or a revocation since)."""
        if block:
            if fresh and store is not None:
                # Queued under the mutex: a revocation bumps the generation under it first
                # and queues its invalidation after, so this can never land after that.
                store(self.fid, start, assemble(parts, start, stop, []))
                self._count("stored_bytes", stop - start)
        elif stop > end and fresh:
            self.fill_locked(parts, stop)
            self._count("readahead_bytes", stop - end)

    def fill_locked(self, parts: list[tuple[int, Buf]], end: int) -> None:
        """A read fetched up to `end` beyond what it was asked for: keep it (the mutex is held)."""
        for off, buf in parts:
            self.cache.insert(off, buf)
        self._end = end

    def drop_locked(self) -> None:
        """Forget read-ahead data; reads under way will not insert theirs (the mutex is held)."""
        self.cache_gen += 1
        self.cache.clear()
        self._end = 0

    def wrote_locked(self, offset: int, end: int) -> None:
        """This client buffered bytes [offset, end) (the mutex is held)."""
        if self.cache.nbytes:
            self.cache.drop(offset, end)

    def read_ahead(self, pos: int) -> None:
        """A sequential reader is at `pos`: keep RA_AHEAD windows fetched or being fetched ahead of it."""
        todo: list[tuple[int, int]] = []
        with self._cv:
            window = self.window
            while self._end - pos < RA_AHEAD * window:
                start = max(self._end, pos)
                if start >= self.size:
                    break
                stop = min(self.align_up(start + window), self.size)
                self._end = stop
                self._prefetching.append((start, stop))
                todo.append((start, stop))
        for start, stop in todo:
            try:
                self._pool.submit(self._prefetch, start, stop)
            except RuntimeError:        # shutting down
                with self._cv:
                    self._prefetching.remove((start, stop))
                    self._cv.notify_all()

    def _prefetch(self, start: int, stop: int) -> None:
        try:
            with self._cv:
                gens = (self.cache_gen, self._source.write_gen())
            parts = self._source.fetch_for_cache(start, stop)
            if parts is None:
                return          # our own unsent bytes are there: nothing to cache
            with self._cv:
                if gens == (self.cache_gen, self._source.write_gen()) and \
                        not self._source.has_overlay_locked(start, stop):
                    for off, buf in parts:
                        self.cache.insert(off, buf)
                    self._count("readahead_bytes", stop - start)
        except LpError as e:
            log.debug("%s: read-ahead of [%d, %d) failed: %s", self.fid, start, stop, e)
        except Exception:
            log.exception("%s: read-ahead of [%d, %d) failed", self.fid, start, stop)
        finally:
            with self._cv:
                self._prefetching.remove((start, stop))
                self._cv.notify_all()

    def wait_prefetch(self, offset: int) -> bool:
        """Wait for a read-ahead under way that covers `offset`; True if there was one."""
        deadline = time.monotonic() + self._timeout
        waited = False
        with self._cv:
            while any(a <= offset < b for a, b in self._prefetching):
                waited = True
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
        return waited
