"""One file's dirty data and its write-back to the OSTs (Lustre's osc cache, seen from one file).

Writes are buffered by reference in a SegmentMap per object, always under
a PW lock this client holds. Write-back starts in the background once an
object's dirty data fills a stream (or its share of `max_dirty`) or the
file's passes half of `max_dirty`; it streams each object's data to its
OST with several Write streams in flight (on the write pool handed in by
the owner), never two for overlapping bytes of one object at once, older
data first. Writers wait while dirty + in-flight data would pass
`max_dirty` (`throttle`).

Write-back errors (Linux's errseq rule, made stricter: an error once reported
is reported again until the data is written):
- A stream that fails with ENOSPC or EDQUOT (a full OST) or for want of its
  server (ENOTCONN, ETIMEDOUT, ECANCELED) puts its data back as dirty, under
  anything written since. Every later flush, fsync and close sends it again
  and reports the error while it still fails; once a flush writes it (or a
  truncate or a newer write over the same bytes replaces it) they succeed
  again. Background write-back does not resend it on its own; a writer whose
  dirty limit is full of such data gets the error from write().
- A stream whose capabilities the OST refuses (EKEYEXPIRED: the MDS restarted
  or rotated keys its OSS has not heard of yet; EINPROGRESS: the OSS has no
  keys yet) fetches new ones and tries again within the timeout, then is kept
  dirty as above.
- Any other failure (EIO, ...) drops the stream's data, which cannot be
  written where it belongs; its error is reported by every flush, fsync and
  close until the last open of the file on this client has ended, or a
  truncate cuts off every byte dropped.

A mirrored file's stream that fails is first offered to `on_failed`: when it
gives the object's mirror up (marked stale at the MDS), the stream's data
and the mirror's dirty data are dropped without an error, since the other
mirrors hold the bytes (`discard_locked`).

State is guarded by the owning FileData's mutex, handed in as a Condition;
every wait has a deadline. Dirty data no lock covers (locks lost to a
reconnect) is locked again through the file's ExtentLocks before it is
sent. Knows objects and their bytes; file offsets only as lov hands them
(`overlay_locked`).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from lustrepy.client.datacache import Buf, Segment, SegmentMap, split_streams
from lustrepy.client.extcache import EOF, ExtentLocks, Held, ObjectLocks
from lustrepy.client.lov import CAPA_AGAIN, Piece, retry_reconnecting
from lustrepy.client.osc import MSG_MAX, MSG_MIN
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.records import Lvb
from lustrepy.ldlm.modes import LockMode

if TYPE_CHECKING:
    from lustrepy.client.osc import Osc

log = logging.getLogger(__name__)

MiB = 1024 * 1024
STREAM_MAX = 8 * MiB        # one Write stream carries about this much, so big flushes run several per OST
_RETRYABLE = (errno.ENOTCONN, errno.ETIMEDOUT, errno.ECANCELED)
# a stream failing so keeps its data dirty (EKEYEXPIRED, EINPROGRESS: capabilities still refused after
# the stream's own tries, as after an MDS restart before its OSSes have its new keys)
_KEEP = (*_RETRYABLE, *CAPA_AGAIN, errno.ENOSPC, errno.EDQUOT)


class Flight:
    """Dirty runs of one object on their way to the OST in one Write stream."""

    __slots__ = ("done", "end", "map", "nbytes", "segs", "start")

    def __init__(self, segs: list[Segment]) -> None:
        self.segs = segs
        self.map = SegmentMap()
        for s in segs:
            self.map.put(s.start, s.data)
        self.start, self.end = segs[0].start, segs[-1].end
        self.nbytes = self.map.nbytes
        self.done = threading.Event()


class ObjectCache(ObjectLocks):
    """One object of a file: its locks, dirty data and streams in flight; guarded by the file's mutex."""

    __slots__ = ("dirty", "dropped", "failed", "flights")

    def __init__(self, index: int, osc: Osc, oid: int) -> None:
        super().__init__(index, osc, oid)
        self.dirty = SegmentMap()
        self.flights: list[Flight] = []
        self.failed = False                 # dirty data came back from a failed stream: only flushes resend it
        self.dropped: int | None = None     # where the lowest data dropped after a failed stream began

    def uncovered(self, seg: Segment) -> bool:
        return not self.covered(seg.start, seg.end)

    def pending_end(self) -> int:
        """Where this client's unacknowledged data for the object ends."""
        end = self.dirty.max_end
        for f in self.flights:
            end = max(end, f.end)
        return end

    def local_size(self) -> int:
        return max(self.known or 0, self.pending_end())

    def trusted(self) -> bool:
        """The object's size cannot change behind our back: a lock to EOF starts at or below it."""
        return self.known is not None and self.held_to_eof_from(self.local_size())


class WriteBack:
    """Dirty data, write-back, throttling and write-back errors of one file. Thread-safe."""

    def __init__(self, fid: Fid, cv: threading.Condition, locks: ExtentLocks, pool: Executor, *,
                 max_dirty: int, timeout: float, count: Callable[..., None]) -> None:
        self.fid = fid
        self._cv = cv
        self._locks = locks
        self._pool = pool
        self._timeout = timeout
        self._count = count
        self.max_dirty = max(max_dirty, MSG_MAX)
        self._kick = max(self.max_dirty // 2, MSG_MIN)
        self._stripe_kick = self._kick
        self.dirty_bytes = 0
        self.inflight_bytes = 0
        self.error: LpError | None = None      # failure of a stream whose data is kept dirty, until a flush writes it
        self.lost: LpError | None = None       # failure of a stream whose data was dropped, until the last close
        self._fail_gen = 0                     # counts failed streams
        # a failed stream's object and error -> True when its mirror was given up (called unlocked)
        self.on_failed: Callable[[ObjectCache, LpError], bool] | None = None

    def set_stripes(self, count: int) -> None:
        """The file now has `count` objects: an object's dirty data starts streaming once it fills a
        stream, or half its share of max_dirty."""
        self._stripe_kick = min(max(self.max_dirty // (2 * max(count, 1)), MSG_MIN), STREAM_MAX)

    def clean_locked(self) -> bool:
        """No dirty or in-flight data and no write-back error to report (the mutex is held)."""
        return not self.dirty_bytes and not self.inflight_bytes and self.error is None and self.lost is None

    def room_locked(self, n: int) -> bool:
        """n more bytes may be buffered without waiting (the mutex is held)."""
        total = self.dirty_bytes + self.inflight_bytes
        return self.error is None and not (total and total + n > self.max_dirty)

    def buffer_locked(self, stripes: list[ObjectCache], pieces: dict[int, list[tuple[int, bytes | memoryview]]]
                      ) -> list[ObjectCache]:
        """Put (object offset, data) pieces into the dirty maps of `stripes` by index (locks held by the
        caller, the mutex too); returns the stripes to write back now."""
        kick: list[ObjectCache] = []
        for si, ps in pieces.items():
            st = stripes[si]
            before = st.dirty.nbytes
            for off, data in ps:
                st.dirty.put(off, data)
            self.dirty_bytes += st.dirty.nbytes - before
            if st.dirty.nbytes >= self._stripe_kick:
                kick.append(st)
        if self.dirty_bytes >= self._kick:
            return stripes
        return kick

    def cut_locked(self, stripes: list[ObjectCache], sizes: list[int]) -> None:
        """A truncate: drop dirty data past each object's new size, and what was dropped after a failed
        stream when the truncate cuts it off (the mutex is held)."""
        for st, osz in zip(stripes, sizes, strict=True):
            before = st.dirty.nbytes
            st.dirty.drop(osz, EOF + 1)
            self.dirty_bytes += st.dirty.nbytes - before
            if st.dropped is not None and osz <= st.dropped:
                st.dropped = None       # what was lost is cut off: the file no longer holds it
        if all(st.dropped is None for st in stripes):
            self.lost = None

    def discard_locked(self, gone: Iterable[ObjectCache], kept: Iterable[ObjectCache]) -> None:
        """The objects `gone` are given up (their mirror is stale): drop their dirty data and the
        errors only they had; `kept` are the file's other objects (the mutex is held)."""
        for st in gone:
            self.dirty_bytes -= st.dirty.nbytes
            st.dirty = SegmentMap()
            st.failed = False
            st.dropped = None
        kept = list(kept)
        if not any(st.failed for st in kept):
            self.error = None
        if not any(st.dropped is not None for st in kept):
            self.lost = None
        self._cv.notify_all()

    def forget_lost_locked(self, stripes: list[ObjectCache]) -> None:
        """The last open ended, and its close reported what was dropped (the mutex is held)."""
        self.lost = None
        for st in stripes:
            st.dropped = None

    def overlay_locked(self, stripes: list[ObjectCache], pieces: Iterable[Piece]) -> list[tuple[int, Buf]]:
        """Our unacknowledged bytes inside `pieces` (a file range cut by lov.split_range), in file
        offsets, oldest first (the mutex is held)."""
        if not any(st.dirty or st.flights for st in stripes):
            return []
        out: list[tuple[int, Buf]] = []
        for p in pieces:
            st = stripes[p.stripe]
            if not (st.dirty or st.flights):
                continue
            a, b = p.object_offset, p.object_offset + p.length
            for m in [f.map for f in st.flights] + [st.dirty]:
                for s in m.pieces(a, b):
                    out.append((p.file_offset + s.start - a, s.data))
        return out

    def throttle(self, stripes: list[ObjectCache], n: int) -> None:
        """Wait while dirty + in-flight data would pass max_dirty; raise the write-back error when
        what failed meanwhile (kept dirty) leaves no room."""
        deadline = time.monotonic() + 3 * self._timeout
        with self._cv:
            gen = self._fail_gen
        while True:
            with self._cv:
                total = self.dirty_bytes + self.inflight_bytes
                if total == 0 or total + n <= self.max_dirty:
                    return
                if self._fail_gen != gen and self.error is not None and not self.inflight_bytes:
                    raise self.error
                if self.inflight_bytes:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise LpError(errno.ETIMEDOUT, f"write-back of {self.fid} does not drain")
                    self._cv.wait(min(left, 1.0))
                    continue
            if not self.flush(stripes, wait=False, acquire=True, resend=True):
                return      # nothing could be sent; let the caller buffer

    def flush_wait(self, stripes: list[ObjectCache]) -> None:
        """Write back all dirty data of the file (`stripes` is all of them); raise the error of
        failed data still kept. A round in which nothing fails clears it: what had failed was
        dirty when the round began, so it has been written now, or dropped by a truncate or
        replaced by newer bytes that were."""
        with self._cv:
            gen = self._fail_gen
        self.flush(stripes, wait=True, acquire=True)
        with self._cv:
            if self._fail_gen == gen:
                self.error = None
            err = self.error
        if err is not None:
            raise err

    def flush(self, stripes: list[ObjectCache], *, wait: bool, acquire: bool, resend: bool | None = None) -> int:
        """Start Write streams for the dirty data of `stripes` that our locks cover; returns how many.

        With acquire, dirty data no lock covers (locks lost to a reconnect) is locked first.
        With wait, returns once every stream of these stripes (also older ones) is done.
        Data that came back from a failed stream is sent again only with resend (default: wait).
        Failures are recorded for flush to report, never raised here, except a failure to lock
        with acquire.
        """
        if resend is None:
            resend = wait
        held: Held = []
        started: list[tuple[ObjectCache, Flight, list[Flight]]] = []
        try:
            if acquire:
                with self._cv:
                    bare = [(st, st.dirty.min_start, st.dirty.max_end) for st in stripes
                            if st.dirty and (resend or not st.failed)
                            and not all(st.covered(s.start, s.end) for s in st.dirty)]
                for st, a, b in bare:
                    held.append((st, self._locks.lock(st, LockMode.PW, a, b, hold=True)))
            with self._cv:
                for st in stripes:
                    if not st.dirty or (st.failed and not resend):
                        continue
                    st.failed = False
                    if all(st.covered(s.start, s.end) for s in st.dirty):
                        segs = st.dirty.take()
                    else:
                        segs = st.dirty.take(keep=st.uncovered)
                    if not segs:
                        continue
                    for group in split_streams(segs, STREAM_MAX):
                        f = Flight(group)
                        before = [g for g in st.flights if g.start < f.end and f.start < g.end]
                        st.flights.append(f)
                        self.dirty_bytes -= f.nbytes
                        self.inflight_bytes += f.nbytes
                        started.append((st, f, before))
            for st, f, before in started:
                self._pool.submit(self._send, st, f, before)
        finally:
            self._locks.release(held)
        if started:
            self._count("flushes")
        if wait:
            self._wait_flights(stripes)
        return len(started)

    def _send(self, st: ObjectCache, f: Flight, before: list[Flight]) -> None:
        """One Write stream (a write-back worker thread)."""
        err: LpError | None = None
        lvb: Lvb | None = None
        try:
            for g in before:                  # older data for these bytes goes first
                g.done.wait(3 * self._timeout)
            lvb = retry_reconnecting(st.oid, self._timeout, st.osc.write, st.oid,
                                     [(s.start, s.data) for s in f.segs], again=CAPA_AGAIN)
        except LpError as e:
            err = e
        except Exception as e:  # a bug must not lose the data silently
            log.exception("%s: write-back to object %d failed", self.fid, st.oid)
            err = LpError(errno.EIO, f"write-back failed: {e}")
        if err is not None and self.on_failed is not None and self.on_failed(st, err):
            with self._cv:
                st.flights.remove(f)
                self.inflight_bytes -= f.nbytes
                self._cv.notify_all()
            f.done.set()
            return
        with self._cv:
            if err is not None and err.errno in _KEEP:
                self._requeue(st, f)            # while f is listed: the streams after it are newer
            st.flights.remove(f)
            self.inflight_bytes -= f.nbytes
            if err is None:
                assert lvb is not None
                if st.known is not None:
                    st.known = max(st.known, lvb.size)
            else:
                self._count("writeback_errors")
                self._fail_gen += 1
                if err.errno in _KEEP:
                    st.failed = True
                    self.error = err
                    log.warning("%s: write-back of %d bytes to %s object %d failed: %s; kept to send again",
                                self.fid, f.nbytes, st.osc.name, st.oid, err)
                else:
                    self.lost = self.lost or err
                    st.dropped = f.start if st.dropped is None else min(st.dropped, f.start)
                    log.warning("%s: write-back of %d bytes to %s object %d failed: %s; dropped", self.fid,
                                f.nbytes, st.osc.name, st.oid, err)
            self._cv.notify_all()
        f.done.set()

    def _requeue(self, st: ObjectCache, f: Flight) -> None:
        """Put a failed stream's data back as dirty, under anything newer (called with the mutex held,
        f still in st.flights)."""
        keep = SegmentMap()
        for s in f.segs:
            keep.put(s.start, s.data)
        for g in st.flights[st.flights.index(f) + 1:]:     # newer streams of the same bytes win
            for s in g.segs:
                keep.drop(s.start, s.end)
        before = st.dirty.nbytes
        for s in keep:
            st.dirty.put_under(s.start, s.data)
        self.dirty_bytes += st.dirty.nbytes - before

    def _wait_flights(self, stripes: list[ObjectCache]) -> None:
        with self._cv:
            flights = [f for st in stripes for f in st.flights]
        deadline = time.monotonic() + 3 * self._timeout
        for f in flights:
            if not f.done.wait(max(0.0, deadline - time.monotonic())):
                raise LpError(errno.ETIMEDOUT, f"write-back of {self.fid} did not finish in time")
