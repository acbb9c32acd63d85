"""One file's data on this client: the API the POSIX layer calls, over its objects' locks and caches.

A FileData exists once per inode (DataPath.open hands out the same one) and
caches exactly what its locks cover, as in Lustre's llite/osc. It ties
together three parts, all guarded by the FileData's one mutex:
- ExtentLocks (lustrepy.client.extcache): the PR/PW extent locks on the
  objects, their users, and what a blocking callback does;
- WriteBack (lustrepy.client.owbc): dirty data by reference under PW locks,
  background write-back on the write pool, throttling, write-back errors;
- ReadAhead (lustrepy.client.readahead): sequential-read detection and the
  read-ahead cache, filled on the read-ahead pool.
Here: writes and appends, reads (PR locks, the size from the objects' LVBs
with a glimpse for objects another client writes, every object a request
touches read in parallel, this client's unflushed data laid over), size,
truncate, flush and fsync, and the answers to lock and glimpse callbacks.

A mirrored file (lustrepy.client.mirrorset) is written to every live
mirror and read from one; an object that fails makes a write give its
mirror up (the MDS marks it stale, the write finishes on the others) and a
read go to another mirror, without an error while one mirror is left.

Invariants: dirty data is always covered by a PW lock this client holds
(when locks are lost to a reconnect, it is locked again before it is sent);
two Write streams for overlapping bytes of one object are never in flight at
once; read-ahead data is only kept while the locks it was read under are.
Locks are taken in stripe order, never waiting for one while holding a
higher stripe's, so two operations cannot deadlock on each other. A
blocking callback writes back the dirty data first, waits until no
operation of this client uses the lock, drops the read-ahead cache and asks
the mount to invalidate the kernel's pages; then the lock is cancelled. A
glimpse callback answers with the object size this client knows, dirty
data included. Data kept after the last close keeps the FileData (and its
bytes) on this client until a flush writes it or the mount ends.

The executors are the owner's (DataPath), handed in as Pools. Every wait has
a deadline. Never speaks gRPC itself (lustrepy.client.osc does) and never
imports a server package.
"""

from __future__ import annotations

import errno
import functools
import logging
from typing import TYPE_CHECKING, TypeVar

from lustrepy.client.datacache import Buf
from lustrepy.client.extcache import EOF
from lustrepy.client.lov import (
    Piece,
    assemble,
    file_size_from_object,
    object_size_for_file,
    on_object,
    per_object_ranges,
    read_striped,
    split_range,
)
from lustrepy.client.filebase import FileBase, check_range
from lustrepy.client.mirrorset import View
from lustrepy.client.owbc import ObjectCache
from lustrepy.common.errors import LpError
from lustrepy.common.layout import MAX_FILE_SIZE
from lustrepy.ldlm.modes import LockMode

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

T = TypeVar("T")


class FileData(FileBase):
    """The data of one inode on this client. Thread-safe; every method blocks (call it from a worker thread)."""

    # ======================================================================================
    # the API
    # ======================================================================================

    def write(self, offset: int, data: bytes) -> int:
        """Buffer `data` at `offset` under PW locks; returns len(data). A write-back error comes out here
        when the dirty limit is full of data that cannot be written."""
        n = len(data)
        check_range(offset, n)
        if not self._stripes:
            raise LpError(errno.EIO, f"{self.fid} has no objects to write to")
        if n == 0:
            return 0
        if not isinstance(data, bytes):
            data = bytes(data)
        self._refresh()
        self._wb.throttle(self._live(), n)
        self._retry(self._write_once, offset, data)
        return n

    def write_nowait(self, offset: int, data: bytes) -> bool:
        """write() at once when it needs no waiting: the PW locks it needs are held and the
        dirty limit has room. False (nothing done): call write()."""
        n = len(data)
        if (n == 0 or not self._stripes or offset < 0 or offset + n > MAX_FILE_SIZE or not isinstance(data, bytes)
                or self._layout_old):
            return False
        with self._mu:
            groups = self._m.write_groups(offset, n)
            if self._layout_old or not self._wb.room_locked(n):
                return False
            for si, ps in groups.items():
                last = ps[-1].object_offset + ps[-1].length - 1
                if self._stripes[si].find(LockMode.PW, ps[0].object_offset, last) is None:
                    return False
            # A lock found here is not being revoked; a revocation marks it under this mutex
            # and then writes back the dirty data, which by then includes these bytes.
            kick = self._buffer_locked(offset, data, groups)
        if kick:
            self._wb.flush(kick, wait=False, acquire=False)
        return True

    def append(self, data: bytes) -> int:
        """Write at the end of file, atomically against every writer; returns the offset written at."""
        if not self._stripes:
            raise LpError(errno.EIO, f"{self.fid} has no objects to write to")
        if not isinstance(data, bytes):
            data = bytes(data)
        self._refresh()
        self._wb.throttle(self._live(), len(data))
        with self._append_mu:
            return self._retry(self._append_once, data)

    def read(self, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length), short at EOF, b"" at or after it; holes read as zeros."""
        if offset < 0 or length < 0:
            raise LpError(errno.EINVAL, f"negative offset or length ({offset}, {length})")
        hit = self.read_nowait(offset, length)
        if hit is not None or length == 0 or not self._stripes or offset >= MAX_FILE_SIZE:
            return hit or b""
        end = min(offset + length, MAX_FILE_SIZE)
        self._refresh()
        with self._mu:
            seq = self._ra.note_read_locked(offset, end)
        return self._retry(self._read_slow, offset, end, seq)

    def read_nowait(self, offset: int, length: int) -> bytes | None:
        """read() when read-ahead already holds every byte asked for (no I/O, no waiting), else None."""
        if offset < 0 or length <= 0 or not self._stripes or offset >= MAX_FILE_SIZE:
            return None
        return self._hit(offset, min(offset + length, MAX_FILE_SIZE), True)

    def _hit(self, offset: int, end: int, arriving: bool) -> bytes | None:
        """Read-ahead's bytes [offset, end) or None; `arriving`: a new read (noted, counted as a hit)."""
        with self._mu:
            hit = self._ra.get_locked(offset, end)
            if hit is None:
                return None
            seq = self._ra.note_read_locked(offset, end) if arriving else True
        if arriving:
            self._dp.count("cache_hits")
        if seq:
            self._ra.read_ahead(end)
        return hit

    def size(self) -> int:
        """The file size: from the objects' LVBs (glimpsing those another client writes) and our dirty data."""
        if not self._stripes:
            return 0
        self._refresh()
        view, sizes = self._retry(self._object_sizes)
        return max(file_size_from_object(view.layout, i, sz) for i, sz in enumerate(sizes))

    def size_nowait(self) -> int | None:
        """size() when it needs no I/O (every object's size known under a lock held here), else None."""
        if not self._stripes:
            return 0
        with self._mu:
            view = self._m.reader()
            if self._layout_old or not all(st.trusted() for st in view.stripes):
                return None
            sizes = [st.local_size() for st in view.stripes]
        return max(file_size_from_object(view.layout, i, sz) for i, sz in enumerate(sizes))

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
        self._refresh()
        self._retry(self._truncate_once, size)

    def flush(self) -> None:
        """Send every dirty byte and wait for the OSTs to acknowledge it; raise the write-back error
        while data that failed is still unwritten, or was dropped during this open (see owbc)."""
        if self._stripes:
            self._retry(lambda: self._wb.flush_wait(self._live()))
        with self._mu:
            lost = self._wb.lost
        if lost is not None:
            raise lost

    def fsync(self) -> None:
        """flush(), then make every object durable on its OST."""
        self.flush()
        if self._stripes:
            self._retry(lambda: self._fan_out(lambda st: on_object(st, True, st.osc.sync, st.oid), self._live()))

    def cached_lock(self) -> bool:
        """True while we hold PR/PW locks on the full extent of every object (the kernel may keep its pages)."""
        with self._mu:
            return any(v.stripes and all(st.whole() for st in v.stripes) for v in self._m.live())

    def lock_whole(self) -> None:
        """Take PW locks on every object from its first byte: for a file nobody else can reach yet
        (made under a WBC grant), one lock each covers all it will write, and cached_lock() holds."""
        for st in self._live():
            self._retry(functools.partial(self._locks.lock, hold=False), st, LockMode.PW, 0, EOF + 1)

    def clean(self) -> bool:
        """No dirty or in-flight data and no write-back error to report: flush() has nothing to do."""
        with self._mu:
            return self._wb.clean_locked()

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
            self._wb.forget_lost_locked(self._stripes)
            self._ra.drop_locked()

    def statistics(self) -> dict[str, int]:
        with self._mu:
            return {"dirty_bytes": self._wb.dirty_bytes, "inflight_bytes": self._wb.inflight_bytes,
                    "cached_bytes": self._ra.cache.nbytes, "locks": sum(len(s.recs) for s in self._stripes)}

    # ======================================================================================
    # writing
    # ======================================================================================

    def _write_once(self, offset: int, data: bytes) -> None:
        with self._mu:
            m = self._m
            groups = m.write_groups(offset, len(data))
        held = []
        try:
            for si in sorted(groups):
                ps = groups[si]
                st = m.stripes[si]
                held.append((st, self._locks.lock(st, LockMode.PW, ps[0].object_offset,
                                                  ps[-1].object_offset + ps[-1].length, hold=True)))
            with self._mu:
                self._same_layout_locked(m)
                kick = self._buffer_locked(offset, data, groups)
        finally:
            self._locks.release(held)
        if kick:
            self._wb.flush(kick, wait=False, acquire=True)

    def _append_once(self, data: bytes) -> int:
        with self._mu:
            m = self._m
            live = m.live_stripes()
        held = self._locks.lock_all(live, LockMode.PW)
        try:
            with self._mu:
                self._same_layout_locked(m)
                if any(st.known is None for st, _ in held):
                    raise LpError(errno.ENOTCONN, "locks lost while appending")
                view = self._m.reader()
                offset = max(file_size_from_object(view.layout, st.index - view.base, st.local_size())
                             for st in view.stripes)
            check_range(offset, len(data))
            kick: list[ObjectCache] = []
            if data:
                with self._mu:
                    self._same_layout_locked(m)
                    kick = self._buffer_locked(offset, data, self._m.write_groups(offset, len(data)))
        finally:
            self._locks.release(held)
        if kick:
            self._wb.flush(kick, wait=False, acquire=True)
        return offset

    def _buffer_locked(self, offset: int, data: bytes, groups: dict[int, list[Piece]]) -> list[ObjectCache]:
        """Buffer file bytes [offset, offset+len(data)) as dirty (locks and the mutex held by the caller);
        returns the stripes to write back now."""
        n = len(data)
        mv = memoryview(data)
        pieces = {si: [(p.object_offset, data if p.length == n else
                        mv[p.file_offset - offset:p.file_offset - offset + p.length]) for p in ps]
                  for si, ps in groups.items()}
        kick = self._wb.buffer_locked(self._stripes, pieces)
        self._write_gen += 1
        self._ra.wrote_locked(offset, offset + n)
        return kick

    # ======================================================================================
    # size and truncate
    # ======================================================================================

    def _object_sizes(self) -> tuple[View, list[int]]:
        with self._mu:
            view = self._m.reader()
        sizes = [0] * len(view.stripes)
        ask: list[ObjectCache] = []
        with self._mu:
            for st in view.stripes:
                if st.trusted():
                    sizes[st.index - view.base] = st.local_size()
                else:
                    ask.append(st)
        if ask:
            for st, sz in zip(ask, self._fan_out(self._locks.glimpse, ask), strict=True):
                with self._mu:
                    sizes[st.index - view.base] = max(sz, st.pending_end())
        return view, sizes

    def _truncate_once(self, size: int) -> None:
        with self._mu:
            m = self._m
            views = m.live()
        stripes = [st for v in views for st in v.stripes]
        held = self._locks.lock_all(stripes, LockMode.PW)
        try:
            targets = [object_size_for_file(v.layout, i, size) for v in views for i in range(len(v.stripes))]
            with self._mu:
                self._same_layout_locked(m)
                self._wb.cut_locked(stripes, targets)
                self._write_gen += 1
                self._ra.drop_locked()
            self._wb.flush_wait(stripes)
            lvbs = self._fan_out(lambda t: on_object(t[0], True, t[0].osc.punch, t[0].oid, t[1]),
                                 list(zip(stripes, targets, strict=True)))
            with self._mu:
                for st, lvb in zip(stripes, lvbs, strict=True):
                    if st.recs:
                        st.known = lvb.size
        finally:
            self._locks.release(held)

    # ======================================================================================
    # reading
    # ======================================================================================

    def _read_slow(self, offset: int, end: int, seq: bool) -> bytes:
        self._dp.count("cache_misses")
        if seq and self._ra.wait_prefetch(offset) and (hit := self._hit(offset, end, False)) is not None:
            return hit
        fetch_start, fetch_end, block = self._ra.plan(offset, end, seq, self._dp.on_store is not None)
        with self._mu:
            gens = (self._ra.cache_gen, self._write_gen)
            view = self._m.reader()
        self._lock_range(view, LockMode.PR, fetch_start, fetch_end)
        fsize = self.size()
        if offset >= fsize:
            return b""
        end, fetch_end = min(end, fsize), min(fetch_end, fsize)
        with self._mu:
            # Taken before fetching: bytes acknowledged while the fetch runs are still laid over it.
            overlay = self._overlay(view, fetch_start, fetch_end)
        parts = self._fetch(view, fetch_start, fetch_end)
        with self._mu:
            fresh = not overlay and gens == (self._ra.cache_gen, self._write_gen)
            self._ra.keep_locked(parts, fetch_start, fetch_end, end, block=block, fresh=fresh,
                                 store=self._dp.on_store)
            self._ra.size = fsize
        if seq:
            self._ra.read_ahead(end)
        return assemble(parts, offset, end, overlay)

    def _lock_range(self, view: View, mode: LockMode, offset: int, end: int) -> None:
        self._locks.lock_range(list(view.stripes), per_object_ranges(view.layout, offset, end - offset), mode,
                               self._fan_out)

    def _fetch(self, view: View, offset: int, end: int) -> list[tuple[int, Buf]]:
        return read_striped(view.layout, view.stripes, offset, end, self._chunk, self._pools.read, 3 * self._timeout)

    def _overlay(self, view: View, offset: int, end: int) -> list[tuple[int, Buf]]:
        """Our unacknowledged bytes inside file [offset, end), oldest first (called with the mutex held)."""
        return self._wb.overlay_locked(list(view.stripes), split_range(view.layout, offset, end - offset))

    # -- what ReadAhead asks of this file ---------------------------------------------------

    def write_gen(self) -> int:
        return self._write_gen

    def has_overlay_locked(self, start: int, stop: int) -> bool:
        return bool(self._overlay(self._m.reader(), start, stop))

    def fetch_for_cache(self, start: int, stop: int) -> list[tuple[int, Buf]] | None:
        with self._mu:
            view = self._m.reader()
            if self._layout_old:
                return None
        self._lock_range(view, LockMode.PR, start, stop)
        with self._mu:
            if self._overlay(view, start, stop) or self._layout_old:
                return None
        return self._fetch(view, start, stop)
