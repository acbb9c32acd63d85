"""One file's data on this client: its extent locks, dirty data, write-back and read-ahead.

A FileData exists once per inode (DataPath.open hands out the same one) and
caches exactly what its locks cover, as in Lustre's llite/osc:
- Writes take PW extent locks on the objects they touch (granted grown to
  EOF, so a streaming writer takes one per object), then buffer the data by
  reference. Write-back starts in the background past a quarter of
  `max_dirty`, streams each object's data to its OST in parallel with
  several streams in flight, and writers wait when dirty + in-flight data
  would pass `max_dirty`.
- Reads take PR locks, learn the file size from the objects' LVBs (a
  glimpse for objects another client writes), read every object a request
  touches in parallel, read ahead for sequential readers, and overlay this
  client's unflushed data.
- A blocking callback writes back the dirty data first, waits until no
  operation of this client uses the lock, drops the read-ahead cache and
  asks the mount to invalidate the kernel's pages; then the lock is
  cancelled. A glimpse callback answers with the object size this client
  knows, dirty data included.

Invariants: dirty data is always covered by a PW lock this client holds
(when locks are lost to a reconnect, it is locked again before it is sent);
two Write streams for overlapping bytes of one object are never in flight at
once; read-ahead data is only kept while the locks it was read under are.
Locks are taken in stripe order, never waiting for one while holding a
higher stripe's, so two operations cannot deadlock on each other.

Write-back errors (Linux's errseq rule, made stricter: an error once reported
is reported again until the data is written):
- A stream that fails with ENOSPC or EDQUOT (a full OST) or for want of its
  server (ENOTCONN, ETIMEDOUT, ECANCELED) puts its data back as dirty, under
  anything written since. Every later flush, fsync and close sends it again
  and reports the error while it still fails; once a flush writes it (or a
  truncate or a newer write over the same bytes replaces it) they succeed
  again. Background write-back does not resend it on its own; a writer whose
  dirty limit is full of such data gets the error from write().
- Any other failure (EIO, ...) drops the stream's data, which cannot be
  written where it belongs; its error is reported by every flush, fsync and
  close until the last open of the file on this client has ended, or a
  truncate cuts off every byte dropped.
- Data kept after the last close keeps the FileData (and its bytes) on this
  client until a flush writes it or the mount ends.

Every wait has a deadline. Never speaks gRPC itself (lustrepy.client.osc
does) and never imports a server package.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from lustrepy.client.datacache import Buf, ObjectData, ReadCache, Segment, SegmentMap, split_streams, write_messages
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import (
    MAX_FILE_SIZE,
    Layout,
    file_size_from_object,
    object_size_for_file,
    per_object_ranges,
    split_range,
)
from lustrepy.common.records import Lvb
from lustrepy.ldlm import flags as lfl
from lustrepy.ldlm.modes import WRITE_MODES, LockMode, covers
from lustrepy.ldlm.request import Grant

if TYPE_CHECKING:
    from lustrepy.client.lov import DataPath
    from lustrepy.client.osc import Osc

log = logging.getLogger(__name__)

T = TypeVar("T")
MiB = 1024 * 1024
EOF = 2**64 - 1
MSG_MIN = 1 * MiB           # smaller dirty runs are joined up to MSG_MAX before sending
MSG_MAX = 4 * MiB
STREAM_MAX = 8 * MiB        # one Write stream carries about this much, so big flushes run several per OST
MAX_READ_CHUNK = 16 * MiB   # the OSS cuts read replies at most this large
RA_MIN, RA_MAX = 4 * MiB, 32 * MiB   # read-ahead window
RA_PER_OBJECT = 4 * MiB     # a window reads about this much of each object (one Read stream each)
RANDOM_BLOCK = 1 << 20      # a random read fetches its aligned block of this size (at most a stripe)
RA_AHEAD = 2                # windows kept fetched (or being fetched) ahead of a sequential reader
_RETRYABLE = (errno.ENOTCONN, errno.ETIMEDOUT, errno.ECANCELED)
_KEEP = (*_RETRYABLE, errno.ENOSPC, errno.EDQUOT)     # a stream failing so keeps its data dirty
_PREEMPTED_MEMORY = 256


class _LockRec:
    """A lock this file holds on one object, as the data path sees it."""

    __slots__ = ("cookie", "holds", "last", "mode", "preempted", "revoking", "start")

    def __init__(self, cookie: int, mode: LockMode, start: int, last: int) -> None:
        self.cookie = cookie
        self.mode = mode
        self.start = start
        self.last = last            # inclusive, EOF = to the end of the object
        self.revoking = False       # blocking callback received: serves no new operation
        self.preempted = False      # its callback came before it was recorded: the last holder revokes it
        self.holds = 0              # operations of this client using it right now

    def covers(self, a: int, last: int) -> bool:
        return self.start <= a and last <= self.last


class _Flight:
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


class _Stripe:
    """Per-object state; guarded by the owning FileData's mutex."""

    __slots__ = ("dirty", "dropped", "failed", "flights", "index", "known", "lost_gen", "oid", "osc", "preempted",
                 "recs")

    def __init__(self, index: int, osc: Osc, oid: int) -> None:
        self.index = index
        self.osc = osc
        self.oid = oid
        self.recs: dict[int, _LockRec] = {}
        self.preempted: dict[int, None] = {}
        self.known: int | None = None       # object size from LVBs and our writes, while we hold a lock
        self.dirty = SegmentMap()
        self.flights: list[_Flight] = []
        self.lost_gen = 0
        self.failed = False                 # dirty data came back from a failed stream: only flushes resend it
        self.dropped: int | None = None     # where the lowest data dropped after a failed stream began

    def find(self, mode: LockMode, a: int, last: int) -> _LockRec | None:
        for r in self.recs.values():
            if not r.revoking and covers(r.mode, mode) and r.covers(a, last):
                return r
        return None

    def covered(self, a: int, end: int) -> bool:
        """Some write lock we hold (revoking or not) covers object bytes [a, end)."""
        return any(r.mode in WRITE_MODES and r.covers(a, end - 1) for r in self.recs.values())

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
        if self.known is None:
            return False
        size = self.local_size()
        return any((r.holds > 0 or not r.revoking) and r.last == EOF and r.start <= size
                   for r in self.recs.values())


def _check_range(offset: int, length: int) -> None:
    if offset < 0 or length < 0:
        raise LpError(errno.EINVAL, f"negative offset or length ({offset}, {length})")
    if offset + length > MAX_FILE_SIZE:
        raise LpError(errno.EFBIG, f"[{offset}, {offset + length}) reaches past the maximum file size")


class FileData:
    """The data of one inode on this client. Thread-safe; every method blocks (call it from a worker thread)."""

    def __init__(self, dp: DataPath, fid: Fid, layout: Layout, max_dirty: int) -> None:
        self._dp = dp
        self.fid = fid
        self.max_dirty = max(max_dirty, MSG_MAX)
        self._kick = max(self.max_dirty // 2, MSG_MIN)
        self._timeout = dp.rpc_timeout
        self._mu = threading.Lock()
        self._cv = threading.Condition(self._mu)
        self._append_mu = threading.Lock()
        self.opens = 0                  # guarded by the DataPath's mutex
        self._dirty_bytes = 0
        self._inflight_bytes = 0
        self._error: LpError | None = None      # failure of a stream whose data is kept dirty, until a flush writes it
        self._lost: LpError | None = None       # failure of a stream whose data was dropped, until the last close
        self._fail_gen = 0                      # counts failed streams
        self._write_gen = 0
        self._cache_gen = 0
        self._ra_next = 0               # where a sequential reader reads next
        self._ra_end = 0                # read-ahead fetched or asked for up to here
        self._ra_size = 0               # the file size the last read saw
        self._prefetching: list[tuple[int, int]] = []
        self.set_layout(layout)

    def set_layout(self, layout: Layout) -> None:
        """Use `layout`; the caller has written back what the old one's objects held."""
        self.layout = layout
        self._stripes = [_Stripe(i, self._dp.osc(o.ost_index), o.object_id) for i, o in enumerate(layout.objects)]
        count = max(len(layout.objects), 1)
        # An object's dirty data starts streaming once it fills a stream, or half its share of max_dirty.
        self._stripe_kick = min(max(self.max_dirty // (2 * count), MSG_MIN), STREAM_MAX)
        ra = min(max(max(layout.stripe_size, RA_PER_OBJECT) * count, RA_MIN), RA_MAX)
        self._ra_window = ra - ra % layout.stripe_size if ra > layout.stripe_size else layout.stripe_size
        self._cache = ReadCache(RA_AHEAD * self._ra_window + self._ra_window)
        self._chunk = layout.stripe_size if layout.stripe_size <= MAX_READ_CHUNK else 0

    @property
    def objects(self) -> list[tuple[int, int]]:
        return [(s.osc.index, s.oid) for s in self._stripes]

    # ======================================================================================
    # the API
    # ======================================================================================

    def write(self, offset: int, data: bytes) -> int:
        """Buffer `data` at `offset` under PW locks; returns len(data). A write-back error comes out here
        when the dirty limit is full of data that cannot be written."""
        n = len(data)
        _check_range(offset, n)
        if not self._stripes:
            raise LpError(errno.EIO, f"{self.fid} has no objects to write to")
        if n == 0:
            return 0
        if not isinstance(data, bytes):
            data = bytes(data)
        self._throttle(n)
        self._retry(self._write_once, offset, data)
        return n

    def write_nowait(self, offset: int, data: bytes) -> bool:
        """write() at once when it needs no waiting: the PW locks it needs are held and the
        dirty limit has room. False (nothing done): call write()."""
        n = len(data)
        if n == 0 or not self._stripes or offset < 0 or offset + n > MAX_FILE_SIZE or not isinstance(data, bytes):
            return False
        groups = per_object_ranges(self.layout, offset, n)
        with self._mu:
            if self._error is not None:
                return False
            total = self._dirty_bytes + self._inflight_bytes
            if total and total + n > self.max_dirty:
                return False
            for si, ps in groups.items():
                last = ps[-1].object_offset + ps[-1].length - 1
                if self._stripes[si].find(LockMode.PW, ps[0].object_offset, last) is None:
                    return False
            # A lock found here is not being revoked; a revocation marks it under this mutex
            # and then writes back the dirty data, which by then includes these bytes.
            kick = self._buffer_locked(offset, data, groups)
        if kick:
            self._flush_stripes(kick, wait=False, acquire=False)
        return True

    def append(self, data: bytes) -> int:
        """Write at the end of file, atomically against every writer; returns the offset written at."""
        if not self._stripes:
            raise LpError(errno.EIO, f"{self.fid} has no objects to write to")
        if not isinstance(data, bytes):
            data = bytes(data)
        self._throttle(len(data))
        with self._append_mu:
            return self._retry(self._append_once, data)

    def read(self, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length), short at EOF, b"" at or after it; holes read as zeros."""
        if offset < 0 or length < 0:
            raise LpError(errno.EINVAL, f"negative offset or length ({offset}, {length})")
        if length == 0 or not self._stripes or offset >= MAX_FILE_SIZE:
            return b""
        end = min(offset + length, MAX_FILE_SIZE)
        with self._mu:
            # The kernel's read-ahead sends several reads at once and they may arrive out of
            # order: a read landing within a window of where the last one ended is sequential.
            seq = abs(offset - self._ra_next) <= self._ra_window
            self._ra_next = max(end, self._ra_next) if seq else end
            if not seq:
                self._ra_end = 0
            hit = self._cache.get(offset, end) if self._cache.nbytes else None
        if hit is not None:
            self._dp.count("cache_hits")
            if seq:
                self._read_ahead(end)
            return hit
        return self._retry(self._read_slow, offset, end, seq)

    def size(self) -> int:
        """The file size: from the objects' LVBs (glimpsing those another client writes) and our dirty data."""
        if not self._stripes:
            return 0
        sizes = self._retry(self._object_sizes)
        return max(file_size_from_object(self.layout, i, sz) for i, sz in enumerate(sizes))

    def truncate(self, size: int) -> None:
        """Set the file size: flush, then punch every object to its share of `size`, under PW locks."""
        if size < 0:
            raise LpError(errno.EINVAL, f"negative size {size}")
        if size > MAX_FILE_SIZE:
            raise LpError(errno.EFBIG, f"size {size} is past the maximum file size")
        if not self._stripes:
            if size == 0:
                return
            raise LpError(errno.EIO, f"{self.fid} has no objects to extend")
        self._retry(self._truncate_once, size)

    def flush(self) -> None:
        """Send every dirty byte and wait for the OSTs to acknowledge it; raise the write-back error
        while data that failed is still unwritten, or was dropped during this open (see the module doc)."""
        if self._stripes:
            self._retry(self._flush_wait, self._stripes)
        with self._mu:
            lost = self._lost
        if lost is not None:
            raise lost

    def fsync(self) -> None:
        """flush(), then make every object durable on its OST."""
        self.flush()
        if self._stripes:
            self._dp.fan_out(self._dp.rio, lambda st: st.osc.sync(st.oid), self._stripes)

    def cached_lock(self) -> bool:
        """True while we hold PR/PW locks on the full extent of every object (the kernel may keep its pages)."""
        with self._mu:
            return bool(self._stripes) and all(
                any(not r.revoking and r.start == 0 and r.last == EOF for r in st.recs.values())
                for st in self._stripes)

    def lock_whole(self) -> None:
        """Take PW locks on every object from its first byte: for a file nobody else can reach yet
        (made under a WBC grant), one lock each covers all it will write, and cached_lock() holds."""
        for st in self._stripes:
            self._retry(self._lock_from_start, st)

    def _lock_from_start(self, st: _Stripe) -> None:
        self._lock(st, LockMode.PW, 0, EOF + 1, hold=False)

    def clean(self) -> bool:
        """No dirty or in-flight data and no write-back error to report: flush() has nothing to do."""
        with self._mu:
            return not self._dirty_bytes and not self._inflight_bytes and self._error is None and self._lost is None

    def release_clean(self) -> bool:
        """End one open without blocking when the file is clean; False (nothing done): use release()."""
        if not self.clean():
            return False
        self._dp.closed_one(self)
        return True

    def release(self, flush: bool = True) -> None:
        """One open of the inode ends: flush (errors raised) unless told this open wrote nothing;
        locks stay cached in the lock LRU."""
        try:
            if flush:
                self.flush()
        finally:
            self._dp.closed_one(self)

    def last_closed(self) -> None:
        """The last open ended (DataPath.closed_one): its close reported what was dropped; read-ahead goes."""
        with self._mu:
            self._lost = None
            for st in self._stripes:
                st.dropped = None
            self._drop_cache_locked()

    def statistics(self) -> dict[str, int]:
        with self._mu:
            return {"dirty_bytes": self._dirty_bytes, "inflight_bytes": self._inflight_bytes,
                    "cached_bytes": self._cache.nbytes, "locks": sum(len(s.recs) for s in self._stripes)}

    # ======================================================================================
    # locks
    # ======================================================================================

    def _lock(self, st: _Stripe, mode: LockMode, a: int, end: int, *, hold: bool) -> _LockRec:
        """A lock of `mode` covering object bytes [a, end) of stripe st; with hold, the caller must _release it."""
        last = min(end - 1, EOF)
        for _ in range(4):
            with self._mu:
                rec = st.find(mode, a, last)
                if rec is not None and hold:
                    rec.holds += 1
                lost_gen = st.lost_gen
            if rec is not None:
                if not hold or st.osc.hold(rec.cookie):
                    return rec
                with self._mu:              # the lock client no longer serves it: being revoked
                    rec.holds -= 1
                    self._cv.notify_all()
            grant, epoch = st.osc.enqueue(st.oid, mode, (a, last), hold=hold)
            self._dp.count("lock_enqueues")
            got = self._register(st, grant, epoch, lost_gen, hold)
            if got is not None:
                return got
        raise LpError(errno.EAGAIN, f"lock on object {st.oid} of {self.fid} lost repeatedly")

    def _register(self, st: _Stripe, grant: Grant, epoch: int, lost_gen: int, hold: bool) -> _LockRec | None:
        """Record a granted lock; None when it belongs to a connection lost meanwhile."""
        lk = grant.lock
        assert lk is not None
        start, last = (lk.extent.start, lk.extent.end) if lk.extent is not None else (0, EOF)
        with self._mu:
            if epoch != st.osc.epoch or lost_gen != st.lost_gen:
                stale = True
            else:
                stale = False
                rec = st.recs.get(lk.cookie)
                if rec is None:
                    rec = _LockRec(lk.cookie, lk.mode, start, last)
                    if lk.cookie in st.preempted:
                        del st.preempted[lk.cookie]
                        rec.revoking = rec.preempted = True
                    if not rec.preempted or hold:
                        st.recs[lk.cookie] = rec
                if hold:
                    rec.holds += 1
                if grant.lvb is not None and lk.cookie in st.recs:
                    st.known = max(st.known or 0, grant.lvb.size)
        if stale:
            if hold:
                st.osc.release(lk.cookie)
            return None
        return rec

    def _release(self, held: Iterable[tuple[_Stripe, _LockRec]]) -> None:
        for st, rec in held:
            with self._mu:
                rec.holds -= 1
                finish = rec.preempted and rec.holds == 0 and st.recs.get(rec.cookie) is rec
                self._cv.notify_all()
            if finish:
                self._revoke(st, rec, wait_holds=False)
            st.osc.release(rec.cookie)

    def _lock_all(self, mode: LockMode) -> list[tuple[_Stripe, _LockRec]]:
        """Hold `mode` locks on the whole of every object, taken in stripe order."""
        held: list[tuple[_Stripe, _LockRec]] = []
        try:
            for st in self._stripes:
                held.append((st, self._lock(st, mode, 0, EOF + 1, hold=True)))
        except BaseException:
            self._release(held)
            raise
        return held

    def _lock_range(self, mode: LockMode, offset: int, end: int) -> None:
        """Make sure unheld locks of `mode` cover file bytes [offset, end); missing ones are asked for in parallel."""
        want = []
        with self._mu:
            for si, ps in per_object_ranges(self.layout, offset, end - offset).items():
                st = self._stripes[si]
                a, b = ps[0].object_offset, ps[-1].object_offset + ps[-1].length
                if st.find(mode, a, b - 1) is None:
                    want.append((st, a, b))
        if want:
            self._dp.fan_out(self._dp.rio, lambda w: self._lock(w[0], mode, w[1], w[2], hold=False), want)

    # -- callbacks (lock client worker threads) --------------------------------------------

    def on_blocking(self, stripe: int, cookie: int) -> None:
        st = self._stripes[stripe]
        with self._mu:
            self._drop_cache_locked()
            rec = st.recs.get(cookie)
            if rec is None:
                st.preempted[cookie] = None     # its grant has not been recorded yet
                while len(st.preempted) > _PREEMPTED_MEMORY:
                    st.preempted.pop(next(iter(st.preempted)))
                return
            if rec.revoking:
                return
            rec.revoking = True
        self._dp.count("revocations")
        self._revoke(st, rec, wait_holds=True)

    def _revoke(self, st: _Stripe, rec: _LockRec, *, wait_holds: bool) -> None:
        """Write back what the lock covers, wait for its users, forget it, invalidate the kernel's pages."""
        if rec.mode in WRITE_MODES:
            self._flush_stripes([st], wait=True, acquire=False)
        if wait_holds:
            deadline = time.monotonic() + 2 * self._timeout
            with self._cv:
                while rec.holds > 0 and st.recs.get(rec.cookie) is rec:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        log.warning("%s: lock %#x still in use after %.0fs; cancelling it anyway", self.fid,
                                    rec.cookie, 2 * self._timeout)
                        break
                    self._cv.wait(left)
            if rec.mode in WRITE_MODES:
                self._flush_stripes([st], wait=True, acquire=False)
        with self._mu:
            if st.recs.get(rec.cookie) is rec:
                del st.recs[rec.cookie]
                if not st.recs:
                    st.known = None
            self._drop_cache_locked()
        self._dp.invalidate(self)

    def glimpse_answer(self, stripe: int) -> Lvb:
        st = self._stripes[stripe]
        with self._mu:
            pending = bool(st.dirty) or bool(st.flights)
            return Lvb(size=st.local_size(), mtime_ns=time.time_ns() if pending else 0)

    def locks_lost(self, ost_index: int) -> bool:
        """Every lock on that OST is gone (reconnect or eviction); True when this file had some there."""
        hit = False
        with self._mu:
            for st in self._stripes:
                if st.osc.index != ost_index:
                    continue
                hit = True
                st.recs.clear()
                st.preempted.clear()
                st.known = None
                st.lost_gen += 1
            if hit:
                self._drop_cache_locked()
                self._cv.notify_all()
        return hit

    def idle(self) -> bool:
        """Nothing worth keeping: no lock, no dirty or in-flight data."""
        with self._mu:
            return not self._dirty_bytes and not self._inflight_bytes and self._error is None and \
                self._lost is None and not any(st.recs for st in self._stripes)

    def drop_cache(self) -> None:
        with self._mu:
            self._drop_cache_locked()

    def _drop_cache_locked(self) -> None:
        """Forget read-ahead data; reads under way will not insert theirs (called with the mutex held)."""
        self._cache_gen += 1
        self._cache.clear()
        self._ra_end = 0

    # ======================================================================================
    # writing
    # ======================================================================================

    def _write_once(self, offset: int, data: bytes) -> None:
        groups = per_object_ranges(self.layout, offset, len(data))
        held: list[tuple[_Stripe, _LockRec]] = []
        try:
            for si in sorted(groups):
                ps = groups[si]
                st = self._stripes[si]
                held.append((st, self._lock(st, LockMode.PW, ps[0].object_offset,
                                            ps[-1].object_offset + ps[-1].length, hold=True)))
            kick = self._buffer(offset, data, groups)
        finally:
            self._release(held)
        if kick:
            self._flush_stripes(kick, wait=False, acquire=True)

    def _append_once(self, data: bytes) -> int:
        held = self._lock_all(LockMode.PW)
        try:
            with self._mu:
                if any(st.known is None for st in self._stripes):
                    raise LpError(errno.ENOTCONN, "locks lost while appending")
                offset = max(file_size_from_object(self.layout, st.index, st.local_size()) for st in self._stripes)
            _check_range(offset, len(data))
            kick = self._buffer(offset, data, per_object_ranges(self.layout, offset, len(data))) if data else []
        finally:
            self._release(held)
        if kick:
            self._flush_stripes(kick, wait=False, acquire=True)
        return offset

    def _buffer(self, offset: int, data: bytes, groups: dict) -> list[_Stripe]:
        """Put data into the dirty maps (locks held by the caller); returns the stripes to write back now."""
        with self._mu:
            return self._buffer_locked(offset, data, groups)

    def _buffer_locked(self, offset: int, data: bytes, groups: dict) -> list[_Stripe]:
        n = len(data)
        mv = memoryview(data)
        kick: list[_Stripe] = []
        for si, ps in groups.items():
            st = self._stripes[si]
            before = st.dirty.nbytes
            for p in ps:
                a = p.file_offset - offset
                st.dirty.put(p.object_offset, data if p.length == n else mv[a:a + p.length])
            self._dirty_bytes += st.dirty.nbytes - before
            if st.dirty.nbytes >= self._stripe_kick:
                kick.append(st)
        self._write_gen += 1
        if self._cache.nbytes:
            self._cache.drop(offset, offset + n)
        if self._dirty_bytes >= self._kick:
            return self._stripes
        return kick

    def _throttle(self, n: int) -> None:
        """Wait while dirty + in-flight data would pass max_dirty; raise the write-back error when
        what failed meanwhile (kept dirty) leaves no room."""
        deadline = time.monotonic() + 3 * self._timeout
        with self._mu:
            gen = self._fail_gen
        while True:
            with self._cv:
                total = self._dirty_bytes + self._inflight_bytes
                if total == 0 or total + n <= self.max_dirty:
                    return
                if self._fail_gen != gen and self._error is not None and not self._inflight_bytes:
                    raise self._error
                if self._inflight_bytes:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise LpError(errno.ETIMEDOUT, f"write-back of {self.fid} does not drain")
                    self._cv.wait(min(left, 1.0))
                    continue
            if not self._flush_stripes(self._stripes, wait=False, acquire=True, resend=True):
                return      # nothing could be sent; let the caller buffer

    def _flush_wait(self, stripes: list[_Stripe]) -> None:
        """Write back all dirty data of the file (`stripes` is all of them); raise the error of
        failed data still kept. A round in which nothing fails clears it: what had failed was
        dirty when the round began, so it has been written now, or dropped by a truncate or
        replaced by newer bytes that were."""
        with self._mu:
            gen = self._fail_gen
        self._flush_stripes(stripes, wait=True, acquire=True)
        with self._mu:
            if self._fail_gen == gen:
                self._error = None
            err = self._error
        if err is not None:
            raise err

    def _flush_stripes(self, stripes: list[_Stripe], *, wait: bool, acquire: bool,
                       resend: bool | None = None) -> int:
        """Start Write streams for the dirty data of `stripes` that our locks cover; returns how many.

        With acquire, dirty data no lock covers (locks lost to a reconnect) is locked first.
        With wait, returns once every stream of these stripes (also older ones) is done.
        Data that came back from a failed stream is sent again only with resend (default: wait).
        Failures are recorded for flush to report, never raised here, except a failure to lock
        with acquire.
        """
        if resend is None:
            resend = wait
        held: list[tuple[_Stripe, _LockRec]] = []
        started: list[tuple[_Stripe, _Flight, list[_Flight]]] = []
        try:
            if acquire:
                with self._mu:
                    bare = [(st, st.dirty.min_start, st.dirty.max_end) for st in stripes
                            if st.dirty and (resend or not st.failed)
                            and not all(st.covered(s.start, s.end) for s in st.dirty)]
                for st, a, b in bare:
                    held.append((st, self._lock(st, LockMode.PW, a, b, hold=True)))
            with self._mu:
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
                        f = _Flight(group)
                        before = [g for g in st.flights if g.start < f.end and f.start < g.end]
                        st.flights.append(f)
                        self._dirty_bytes -= f.nbytes
                        self._inflight_bytes += f.nbytes
                        started.append((st, f, before))
            for st, f, before in started:
                self._dp.wio.submit(self._send, st, f, before)
        finally:
            self._release(held)
        if started:
            self._dp.count("flushes")
        if wait:
            self._wait_flights(stripes)
        return len(started)

    def _send(self, st: _Stripe, f: _Flight, before: list[_Flight]) -> None:
        """One Write stream (a write-back worker thread)."""
        err: LpError | None = None
        lvb: Lvb | None = None
        try:
            for g in before:                  # older data for these bytes goes first
                g.done.wait(3 * self._timeout)
            lvb = st.osc.write(st.oid, write_messages(f.segs, MSG_MIN, MSG_MAX))
        except LpError as e:
            err = e
        except Exception as e:  # a bug must not lose the data silently
            log.exception("%s: write-back to object %d failed", self.fid, st.oid)
            err = LpError(errno.EIO, f"write-back failed: {e}")
        with self._cv:
            if err is not None and err.errno in _KEEP:
                self._requeue(st, f)            # while f is listed: the streams after it are newer
            st.flights.remove(f)
            self._inflight_bytes -= f.nbytes
            if err is None:
                assert lvb is not None
                if st.known is not None:
                    st.known = max(st.known, lvb.size)
            else:
                self._dp.count("writeback_errors")
                self._fail_gen += 1
                if err.errno in _KEEP:
                    st.failed = True
                    self._error = err
                    log.warning("%s: write-back of %d bytes to %s object %d failed: %s; kept to send again",
                                self.fid, f.nbytes, st.osc.name, st.oid, err)
                else:
                    self._lost = self._lost or err
                    st.dropped = f.start if st.dropped is None else min(st.dropped, f.start)
                    log.warning("%s: write-back of %d bytes to %s object %d failed: %s; dropped", self.fid,
                                f.nbytes, st.osc.name, st.oid, err)
            self._cv.notify_all()
        f.done.set()

    def _requeue(self, st: _Stripe, f: _Flight) -> None:
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
        self._dirty_bytes += st.dirty.nbytes - before

    def _wait_flights(self, stripes: list[_Stripe]) -> None:
        with self._mu:
            flights = [f for st in stripes for f in st.flights]
        deadline = time.monotonic() + 3 * self._timeout
        for f in flights:
            if not f.done.wait(max(0.0, deadline - time.monotonic())):
                raise LpError(errno.ETIMEDOUT, f"write-back of {self.fid} did not finish in time")

    # ======================================================================================
    # size and truncate
    # ======================================================================================

    def _object_sizes(self) -> list[int]:
        sizes = [0] * len(self._stripes)
        ask: list[_Stripe] = []
        with self._mu:
            for st in self._stripes:
                if st.trusted():
                    sizes[st.index] = st.local_size()
                else:
                    ask.append(st)
        if ask:
            for st, sz in zip(ask, self._dp.fan_out(self._dp.rio, self._glimpse, ask), strict=True):
                with self._mu:
                    sizes[st.index] = max(sz, st.pending_end())
        return sizes

    def _glimpse(self, st: _Stripe) -> int:
        """The object's size from its OST: a PR lock's LVB, or what a writer elsewhere reports."""
        with self._mu:
            lost_gen = st.lost_gen
        self._dp.count("glimpses")
        try:
            grant, epoch = st.osc.enqueue(st.oid, LockMode.PR, (0, EOF), flags=lfl.GLIMPSE | lfl.BLOCK_NOWAIT)
        except LpError as e:
            if e.errno != errno.EAGAIN:
                raise
            # Our own write lock (or a queued request) is in the way; nobody else writes it.
            return st.osc.getattr(st.oid).size
        if grant.lock is not None:
            self._register(st, grant, epoch, lost_gen, hold=False)
        if grant.lvb is None:
            return st.osc.getattr(st.oid).size
        return grant.lvb.size

    def _truncate_once(self, size: int) -> None:
        held = self._lock_all(LockMode.PW)
        try:
            targets = [object_size_for_file(self.layout, st.index, size) for st in self._stripes]
            with self._mu:
                for st, osz in zip(self._stripes, targets, strict=True):
                    before = st.dirty.nbytes
                    st.dirty.drop(osz, EOF + 1)
                    self._dirty_bytes += st.dirty.nbytes - before
                    if st.dropped is not None and osz <= st.dropped:
                        st.dropped = None       # what was lost is cut off: the file no longer holds it
                if all(st.dropped is None for st in self._stripes):
                    self._lost = None
                self._write_gen += 1
                self._drop_cache_locked()
            self._flush_wait(self._stripes)
            lvbs = self._dp.fan_out(self._dp.rio, lambda t: t[0].osc.punch(t[0].oid, t[1]),
                                    list(zip(self._stripes, targets, strict=True)))
            with self._mu:
                for st, lvb in zip(self._stripes, lvbs, strict=True):
                    if st.recs:
                        st.known = lvb.size
        finally:
            self._release(held)

    # ======================================================================================
    # reading
    # ======================================================================================

    def _read_slow(self, offset: int, end: int, seq: bool) -> bytes:
        self._dp.count("cache_misses")
        if seq and self._wait_prefetch(offset, end):
            with self._mu:
                hit = self._cache.get(offset, end) if self._cache.nbytes else None
            if hit is not None:
                self._read_ahead(end)
                return hit
        fetch_start, fetch_end = offset, end
        block = False
        if seq and end - offset < self._ra_window:
            fetch_end = self._align_up(offset + self._ra_window)
        elif not seq and self._dp.on_store is not None and end - offset < RANDOM_BLOCK:
            # A random read: fetch its whole block in one RPC; what was not asked for goes to
            # the kernel's page cache, so the next reads in the block cost no request at all.
            blk = min(RANDOM_BLOCK, self.layout.stripe_size)
            fetch_start, fetch_end = offset - offset % blk, offset - offset % blk + blk
            block = end <= fetch_end
            if not block:
                fetch_start, fetch_end = offset, end
        with self._mu:
            gens = (self._cache_gen, self._write_gen)
        self._lock_range(LockMode.PR, fetch_start, fetch_end)
        fsize = self.size()
        if offset >= fsize:
            return b""
        end, fetch_end = min(end, fsize), min(fetch_end, fsize)
        with self._mu:
            # Taken before fetching: bytes acknowledged while the fetch runs are still laid over it.
            overlay = self._overlay(fetch_start, fetch_end)
        parts = self._fetch(fetch_start, fetch_end)
        with self._mu:
            fresh = not overlay and gens == (self._cache_gen, self._write_gen)
            if block:
                if fresh:
                    # Queued under the mutex: a revocation bumps the generation under it first
                    # and queues its invalidation after, so this can never land after that.
                    self._dp.on_store(self.fid, fetch_start, _assemble(parts, fetch_start, fetch_end, []))
                    self._dp.count("stored_bytes", fetch_end - fetch_start)
            elif fetch_end > end and fresh:
                for off, buf in parts:
                    self._cache.insert(off, buf)
                self._ra_end = fetch_end
                self._dp.count("readahead_bytes", fetch_end - end)
            self._ra_size = fsize
        if seq:
            self._read_ahead(end)
        return _assemble(parts, offset, end, overlay)

    def _fetch(self, offset: int, end: int) -> list[tuple[int, Buf]]:
        """File bytes [offset, end) (within the file size) from every object involved, in parallel."""
        groups = per_object_ranges(self.layout, offset, end - offset)
        jobs = []
        for si, ps in groups.items():
            a, b = ps[0].object_offset, ps[-1].object_offset + ps[-1].length
            jobs.append((self._stripes[si], a, b))
        datas = self._dp.fan_out(self._dp.rio,
                                 lambda j: ObjectData(j[1], j[0].osc.read(j[0].oid, j[1], j[2] - j[1], self._chunk)),
                                 jobs)
        by_stripe = {j[0].index: d for j, d in zip(jobs, datas, strict=True)}
        return [(p.file_offset, by_stripe[p.stripe].view(p.object_offset, p.length))
                for p in split_range(self.layout, offset, end - offset)]

    def _overlay(self, offset: int, end: int) -> list[tuple[int, Buf]]:
        """Our unacknowledged bytes inside file [offset, end), oldest first (called with the mutex held)."""
        if not any(st.dirty or st.flights for st in self._stripes):
            return []
        out: list[tuple[int, Buf]] = []
        for p in split_range(self.layout, offset, end - offset):
            st = self._stripes[p.stripe]
            if not (st.dirty or st.flights):
                continue
            a, b = p.object_offset, p.object_offset + p.length
            for m in [f.map for f in st.flights] + [st.dirty]:
                for s in m.pieces(a, b):
                    out.append((p.file_offset + s.start - a, s.data))
        return out

    def _align_up(self, off: int) -> int:
        ss = self.layout.stripe_size
        return -(-off // ss) * ss

    def _read_ahead(self, pos: int) -> None:
        """A sequential reader is at `pos`: keep RA_AHEAD windows fetched or being fetched ahead of it."""
        todo: list[tuple[int, int]] = []
        with self._mu:
            window = self._ra_window
            while self._ra_end - pos < RA_AHEAD * window:
                start = max(self._ra_end, pos)
                if start >= self._ra_size:
                    break
                stop = min(self._align_up(start + window), self._ra_size)
                self._ra_end = stop
                self._prefetching.append((start, stop))
                todo.append((start, stop))
        for start, stop in todo:
            try:
                self._dp.ra.submit(self._prefetch, start, stop)
            except RuntimeError:        # shutting down
                with self._cv:
                    self._prefetching.remove((start, stop))
                    self._cv.notify_all()

    def _prefetch(self, start: int, stop: int) -> None:
        try:
            with self._mu:
                gens = (self._cache_gen, self._write_gen)
            self._lock_range(LockMode.PR, start, stop)
            with self._mu:
                if self._overlay(start, stop):
                    return          # our own unsent bytes are there: nothing to cache
            parts = self._fetch(start, stop)
            with self._mu:
                if gens == (self._cache_gen, self._write_gen) and not self._overlay(start, stop):
                    for off, buf in parts:
                        self._cache.insert(off, buf)
                    self._dp.count("readahead_bytes", stop - start)
        except LpError as e:
            log.debug("%s: read-ahead of [%d, %d) failed: %s", self.fid, start, stop, e)
        except Exception:
            log.exception("%s: read-ahead of [%d, %d) failed", self.fid, start, stop)
        finally:
            with self._cv:
                self._prefetching.remove((start, stop))
                self._cv.notify_all()

    def _wait_prefetch(self, offset: int, end: int) -> bool:
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

    # ======================================================================================

    def _retry(self, fn: Callable[..., T], *args: object) -> T:
        """Run fn; after ENOTCONN (the OST restarted or evicted us) run it once more on a new connection."""
        try:
            return fn(*args)
        except LpError as e:
            if e.errno != errno.ENOTCONN:
                raise
            log.debug("%s: %s; trying again on a new connection", self.fid, e)
        return fn(*args)


def _assemble(parts: list[tuple[int, Buf]], offset: int, end: int, overlay: list[tuple[int, Buf]]) -> bytes:
    """File bytes [offset, end) from contiguous parts, with our unacknowledged bytes laid over them."""
    clipped: list[Buf] = []
    for off, buf in parts:
        a, b = max(off, offset), min(off + len(buf), end)
        if a >= b:
            continue
        clipped.append(buf if (a, b) == (off, off + len(buf)) else memoryview(buf)[a - off:b - off])
    if not overlay:
        if len(clipped) == 1:
            only = clipped[0]
            return only if isinstance(only, bytes) else bytes(only)
        return b"".join(clipped)
    out = bytearray(b"".join(clipped))
    for off, buf in overlay:
        a, b = max(off, offset), min(off + len(buf), end)
        if a < b:
            out[a - offset:b - offset] = memoryview(buf)[a - off:b - off]
    return bytes(out)
