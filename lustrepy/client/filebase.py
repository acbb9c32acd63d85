"""The state of one file's data on this client, and what its lock callbacks and layout changes do.

FileBase holds what lustrepy.client.filedata.FileData works on: the mutex,
the extent locks, the write-back, the read-ahead, the file's mirrors and how
failures fail over between them (lustrepy.client.failover); it answers the
lock client's callbacks and takes a newer layout of the file. The I/O
operations themselves are FileData's. Also the Pools and DataOwner that a
FileData is handed. Never speaks gRPC itself.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from lustrepy.client.extcache import ExtentLocks, ObjectLocks
from lustrepy.client.failover import Failover
from lustrepy.client.lov import ObjectFailed, fan_out, retry_reconnecting
from lustrepy.client.mirrorset import MirrorSet
from lustrepy.client.owbc import ObjectCache, WriteBack
from lustrepy.client.readahead import ReadAhead, ReadSource
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import MAX_FILE_SIZE, Layout
from lustrepy.common.records import Lvb

if TYPE_CHECKING:
    from lustrepy.client.osc import Osc

T = TypeVar("T")
LAYOUT_TRIES = 8


class LayoutChanged(LpError):
    """An operation met a newer layout of its file: it runs again once the layout is read."""
MiB = 1024 * 1024
MAX_READ_CHUNK = 16 * MiB   # the OSS cuts read replies at most this large


@dataclass(frozen=True, slots=True)
class Pools:
    """The executors one mount's file I/O runs on; their owner (DataPath) makes and stops them.
    Work on `write` and `read` never waits for other work of the same pool."""

    write: Executor         # Write streams
    read: Executor          # object reads, lock enqueues, glimpses, punch, sync
    readahead: Executor     # read-ahead fetches (which wait for work on `read`)


class DataOwner(Protocol):
    """What a FileData asks of the mount's data path that made it."""

    on_store: Callable[[Fid, int, bytes], None] | None
    client_id: str

    def osc(self, index: int) -> Osc: ...

    def mirror_failed(self, fid: Fid, mirror_id: int) -> None:
        """Have the MDS mark the mirror stale (LpError when it refuses)."""

    def layout_of(self, fid: Fid) -> Layout | None:
        """The file's layout as the MDS has it now, under a LAYOUT lock."""

    def relayout(self, fd: Any, layout: Layout) -> None:
        """Use `layout`'s objects from now on (what the old ones hold written back first)."""

    def count(self, name: str, n: int = 1) -> None: ...

    def invalidate(self, fd: Any) -> None: ...

    def closed_one(self, fd: Any) -> None: ...


def check_range(offset: int, length: int) -> None:
    if offset < 0 or length < 0:
        raise LpError(errno.EINVAL, f"negative offset or length ({offset}, {length})")
    if offset + length > MAX_FILE_SIZE:
        raise LpError(errno.EFBIG, f"[{offset}, {offset + length}) reaches past the maximum file size")


class FileBase:
    """The state one file's data operations share (see FileData). Thread-safe."""

    def __init__(self, owner: DataOwner, fid: Fid, layout: Layout, max_dirty: int, pools: Pools, *,
                 timeout: float) -> None:
        self._dp = owner
        self.fid = fid
        self._pools = pools
        self._timeout = timeout
        self._mu = threading.Lock()
        self._cv = threading.Condition(self._mu)
        self._append_mu = threading.Lock()
        self.opens = 0                  # guarded by the DataPath's mutex
        self._write_gen = 0
        self._locks = ExtentLocks(fid, self._cv, self, timeout=timeout, count=owner.count)
        self._wb = WriteBack(fid, self._cv, self._locks, pools.write, max_dirty=max_dirty, timeout=timeout,
                             count=owner.count)
        # the concrete class (FileData) is the read-ahead's source
        self._ra = ReadAhead(fid, self._cv, cast(ReadSource, self), pools.readahead, timeout=timeout,
                             count=owner.count)
        self._fo = Failover(fid, self._cv, lambda mirror_id: owner.mirror_failed(fid, mirror_id), self._wb)
        self._wb.on_failed = lambda st, e: self._fo.fail_over(ObjectFailed.of(e, st, True))
        self._layout_old = False        # a LAYOUT lock was lost: read the layout again before I/O
        self.set_layout(layout)

    def set_layout(self, layout: Layout) -> None:
        """Use `layout`; the caller has written back what the old one's objects held."""
        self.layout = layout
        self._m = self._fo.m = MirrorSet(layout, lambda i, ost, oid: ObjectCache(i, self._dp.osc(ost), oid),
                                         f"{self._dp.client_id}/{self.fid}")
        self._stripes = self._m.stripes
        self._wb.set_stripes(max(len(self._stripes), 1))
        first = self._m.views[0].layout if self._m.views else layout
        self._ra.set_layout(first.stripe_size, max(len(first.objects), 1))
        self._chunk = first.stripe_size if first.stripe_size <= MAX_READ_CHUNK else 0

    def adopt(self, layout: Layout) -> bool:
        """Take a newer layout of the file in place when it only marks mirrors stale (those are
        no longer used here); False: its objects differ, relayout."""
        with self._mu:
            gone = self._m.newly_stale(layout)
            if gone is None:
                return False
            self._fo.drop_locked(gone)
            self.layout = self._m.layout = layout
            return True

    def layout_changed(self) -> None:
        """The LAYOUT lock is gone (a lock callback): the layout is read again before the next I/O,
        and nothing read under the old one is served from here (a mirror may have gone stale)."""
        with self._mu:
            self._layout_old = True
            self._ra.drop_locked()

    def _refresh(self) -> None:
        if not self._layout_old:
            return
        self._layout_old = False
        layout = self._dp.layout_of(self.fid)
        if layout is not None and layout.has_objects and not self.adopt(layout):
            self._dp.relayout(self, layout)

    @property
    def objects(self) -> list[tuple[int, int]]:
        return [(s.osc.index, s.oid) for s in self._stripes]

    # ======================================================================================
    # lock callbacks (lock client worker threads) and what ExtentLocks asks of this file
    # ======================================================================================

    def on_blocking(self, stripe: int, cookie: int) -> None:
        self._locks.on_blocking(self._stripes[stripe], cookie)

    def glimpse_answer(self, stripe: int) -> Lvb:
        st = self._stripes[stripe]
        with self._mu:
            pending = bool(st.dirty) or bool(st.flights)
            return Lvb(size=st.local_size(), mtime_ns=time.time_ns() if pending else 0)

    def locks_lost(self, ost_index: int) -> bool:
        """Every lock on that OST is gone (reconnect or eviction); True when this file had some there."""
        with self._mu:
            hit = self._locks.lost_locked(self._stripes, ost_index)
            if hit:
                self._ra.drop_locked()
                self._cv.notify_all()
        return hit

    def idle(self) -> bool:
        """Nothing worth keeping: no lock, no dirty or in-flight data."""
        with self._mu:
            return self._wb.clean_locked() and not any(st.recs for st in self._stripes)

    def drop_cache(self) -> None:
        with self._mu:
            self._ra.drop_locked()

    def drop_cache_locked(self) -> None:
        self._ra.drop_locked()

    def write_back(self, st: ObjectLocks) -> None:
        assert isinstance(st, ObjectCache)
        self._wb.flush([st], wait=True, acquire=False)

    def invalidate(self) -> None:
        self._dp.invalidate(self)

    # ======================================================================================

    def _fan_out(self, fn: Callable[[T], object], items: list[T]) -> list:
        return fan_out(self._pools.read, fn, items, 3 * self._timeout)

    def _retry(self, fn: Callable[..., T], *args: object) -> T:
        for _ in range(LAYOUT_TRIES):
            try:
                return retry_reconnecting(self.fid, self._timeout, self._fo.run, fn, *args)
            except LayoutChanged:
                self._refresh()         # and the operation runs again on the new layout's objects
        raise LpError(errno.EAGAIN, f"the layout of {self.fid} changed {LAYOUT_TRIES} times during one operation")

    def _same_layout_locked(self, m: MirrorSet) -> None:
        """Before a change is buffered or cut (the mutex held): the layout it was planned on is still the
        file's, and no LAYOUT lock was lost meanwhile (a mirror being resynced must get every write
        from then on)."""
        if self._m is not m or self._layout_old:
            raise LayoutChanged(errno.EAGAIN, "the file's layout changed under the operation")

    def _live(self) -> list[ObjectCache]:
        with self._mu:
            return self._m.live_stripes()
