"""The extent locks one file holds on its objects (Lustre's osc lock cache, seen from one file).

ExtentLocks takes PR/PW extent locks on a file's objects through their Osc,
records the grants (with the sizes their LVBs carry), counts the operations
of this client using each lock, and runs a blocking callback: the owner
writes back what the lock covers and drops its read-ahead, then the lock is
forgotten once no operation uses it, and the mount is told to invalidate
the kernel's pages. Locks lost to a reconnect are forgotten at once.

State lives in ObjectLocks records (one per object, which the owner may
extend with what else it keeps per object) and is guarded by the owning
FileData's mutex, handed in as a Condition: this module never holds it
across an enqueue, a callback to the owner that blocks, or a wait without a
deadline. Locks are taken in stripe order (`lock_all`), never waiting for
one while holding a higher stripe's. Knows objects, extents and locks,
never byte contents or layouts; never speaks gRPC itself (lustrepy.client.osc does).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from lustrepy.client.lov import ObjectFailed, Piece
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.ldlm import flags as lfl
from lustrepy.ldlm.modes import WRITE_MODES, LockMode, covers
from lustrepy.ldlm.request import Grant

if TYPE_CHECKING:
    from lustrepy.client.osc import Osc

log = logging.getLogger(__name__)

EOF = 2**64 - 1
_PREEMPTED_MEMORY = 256


class LockRec:
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


class ObjectLocks:
    """One object of a file and the locks held on it; guarded by the owning FileData's mutex."""

    __slots__ = ("index", "known", "lost_gen", "oid", "osc", "preempted", "recs")

    def __init__(self, index: int, osc: Osc, oid: int) -> None:
        self.index = index
        self.osc = osc
        self.oid = oid
        self.recs: dict[int, LockRec] = {}
        self.preempted: dict[int, None] = {}
        self.known: int | None = None       # object size from LVBs and our writes, while we hold a lock
        self.lost_gen = 0

    def find(self, mode: LockMode, a: int, last: int) -> LockRec | None:
        for r in self.recs.values():
            if not r.revoking and covers(r.mode, mode) and r.covers(a, last):
                return r
        return None

    def covered(self, a: int, end: int) -> bool:
        """Some write lock we hold (revoking or not) covers object bytes [a, end)."""
        return any(r.mode in WRITE_MODES and r.covers(a, end - 1) for r in self.recs.values())

    def held_to_eof_from(self, size: int) -> bool:
        """A lock in use or not being revoked reaches EOF from at or below `size`."""
        return any((r.holds > 0 or not r.revoking) and r.last == EOF and r.start <= size
                   for r in self.recs.values())

    def whole(self) -> bool:
        """A lock not being revoked covers the whole object."""
        return any(not r.revoking and r.start == 0 and r.last == EOF for r in self.recs.values())


Held = list[tuple[ObjectLocks, LockRec]]


class LockOwner(Protocol):
    """What ExtentLocks asks of the file it serves."""

    def drop_cache_locked(self) -> None:
        """Forget read-ahead data (the mutex is held)."""

    def write_back(self, st: ObjectLocks) -> None:
        """Send the object's dirty data that our locks cover and wait for it."""

    def invalidate(self) -> None:
        """A lock is gone: the mount drops the kernel's pages and attributes of the inode."""


class ExtentLocks:
    """Taking, recording, releasing and revoking one file's extent locks. Thread-safe."""

    def __init__(self, fid: Fid, cv: threading.Condition, owner: LockOwner, *, timeout: float,
                 count: Callable[..., None]) -> None:
        self.fid = fid
        self._cv = cv
        self._owner = owner
        self._timeout = timeout
        self._count = count

    def lock(self, st: ObjectLocks, mode: LockMode, a: int, end: int, *, hold: bool) -> LockRec:
        """A lock of `mode` covering object bytes [a, end) of st; with hold, the caller must release it."""
        last = min(end - 1, EOF)
        for _ in range(4):
            with self._cv:
                rec = st.find(mode, a, last)
                if rec is not None and hold:
                    rec.holds += 1
                lost_gen = st.lost_gen
            if rec is not None:
                if not hold or st.osc.hold(rec.cookie):
                    return rec
                with self._cv:              # the lock client no longer serves it: being revoked
                    rec.holds -= 1
                    self._cv.notify_all()
            try:
                grant, epoch = st.osc.enqueue(st.oid, mode, (a, last), hold=hold)
            except LpError as e:
                raise ObjectFailed.of(e, st, mode in WRITE_MODES) from None
            self._count("lock_enqueues")
            got = self.register(st, grant, epoch, lost_gen, hold)
            if got is not None:
                return got
        raise LpError(errno.EAGAIN, f"lock on object {st.oid} of {self.fid} lost repeatedly")

    def register(self, st: ObjectLocks, grant: Grant, epoch: int, lost_gen: int, hold: bool) -> LockRec | None:
        """Record a granted lock; None when it belongs to a connection lost meanwhile."""
        lk = grant.lock
        assert lk is not None
        start, last = (lk.extent.start, lk.extent.end) if lk.extent is not None else (0, EOF)
        with self._cv:
            if epoch != st.osc.epoch or lost_gen != st.lost_gen:
                stale = True
            else:
                stale = False
                rec = st.recs.get(lk.cookie)
                if rec is None:
                    rec = LockRec(lk.cookie, lk.mode, start, last)
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

    def release(self, held: Iterable[tuple[ObjectLocks, LockRec]]) -> None:
        for st, rec in held:
            with self._cv:
                rec.holds -= 1
                finish = rec.preempted and rec.holds == 0 and st.recs.get(rec.cookie) is rec
                self._cv.notify_all()
            if finish:
                self._revoke(st, rec, wait_holds=False)
            st.osc.release(rec.cookie)

    def lock_all(self, stripes: Iterable[ObjectLocks], mode: LockMode) -> Held:
        """Hold `mode` locks on the whole of every object, taken in stripe order."""
        held: Held = []
        try:
            for st in stripes:
                held.append((st, self.lock(st, mode, 0, EOF + 1, hold=True)))
        except BaseException:
            self.release(held)
            raise
        return held

    def lock_range(self, stripes: Sequence[ObjectLocks], groups: dict[int, list[Piece]], mode: LockMode,
                   fan_out: Callable[..., object]) -> None:
        """Make sure unheld locks of `mode` cover the object ranges of `groups` (a file range cut by
        lov.per_object_ranges); missing ones are asked for in parallel through `fan_out`."""
        want = []
        with self._cv:
            for si, ps in groups.items():
                st = stripes[si]
                a, b = ps[0].object_offset, ps[-1].object_offset + ps[-1].length
                if st.find(mode, a, b - 1) is None:
                    want.append((st, a, b))
        if want:
            fan_out(lambda w: self.lock(w[0], mode, w[1], w[2], hold=False), want)

    def glimpse(self, st: ObjectLocks) -> int:
        """The object's size from its OST: a PR lock's LVB, or what a writer elsewhere reports."""
        with self._cv:
            lost_gen = st.lost_gen
        self._count("glimpses")
        try:
            try:
                grant, epoch = st.osc.enqueue(st.oid, LockMode.PR, (0, EOF), flags=lfl.GLIMPSE | lfl.BLOCK_NOWAIT)
            except LpError as e:
                if e.errno != errno.EAGAIN:
                    raise
                # Our own write lock (or a queued request) is in the way; nobody else writes it.
                return st.osc.getattr(st.oid).size
            if grant.lock is not None:
                self.register(st, grant, epoch, lost_gen, hold=False)
            if grant.lvb is None:
                return st.osc.getattr(st.oid).size
            return grant.lvb.size
        except LpError as e:
            raise ObjectFailed.of(e, st, False) from None

    # -- callbacks (lock client worker threads) --------------------------------------------

    def on_blocking(self, st: ObjectLocks, cookie: int) -> None:
        with self._cv:
            self._owner.drop_cache_locked()
            rec = st.recs.get(cookie)
            if rec is None:
                st.preempted[cookie] = None     # its grant has not been recorded yet
                while len(st.preempted) > _PREEMPTED_MEMORY:
                    st.preempted.pop(next(iter(st.preempted)))
                return
            if rec.revoking:
                return
            rec.revoking = True
        self._count("revocations")
        self._revoke(st, rec, wait_holds=True)

    def _revoke(self, st: ObjectLocks, rec: LockRec, *, wait_holds: bool) -> None:
        """Write back what the lock covers, wait for its users, forget it, invalidate the kernel's pages."""
        if rec.mode in WRITE_MODES:
            self._owner.write_back(st)
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
                self._owner.write_back(st)
        with self._cv:
            if st.recs.get(rec.cookie) is rec:
                del st.recs[rec.cookie]
                if not st.recs:
                    st.known = None
            self._owner.drop_cache_locked()
        self._owner.invalidate()

    def lost_locked(self, stripes: Iterable[ObjectLocks], ost_index: int) -> bool:
        """Every lock on that OST is gone (reconnect or eviction); True when these objects had some there
        (the mutex is held)."""
        hit = False
        for st in stripes:
            if st.osc.index != ost_index:
                continue
            hit = True
            st.recs.clear()
            st.preempted.clear()
            st.known = None
            st.lost_gen += 1
        return hit
