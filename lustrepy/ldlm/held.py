"""The client's table of the locks it holds from one server, sans-I/O: matching, users,
the LRU and the cookies on their way back to the server.

A lock is served (matched) only while it is held here and not being revoked.
When more than `lru_size` locks are held, the least recently used unused ones
retire: the caller flushes each, then gives its cookie back as an early cancel
(piggybacked on its next request, or sent in a batch). Cookies given back are
remembered for a while, so a grant or a callback that arrives late for one is
recognised.

Pure bookkeeping: this module never does I/O, never starts threads and is not
thread-safe (request.LockClient calls it under its mutex).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

from lustrepy.ldlm import inodebits
from lustrepy.ldlm.extent import Extent
from lustrepy.ldlm.modes import LockMode, covers
from lustrepy.ldlm.resource import Lock, ResId
from lustrepy.rpc.v1 import common_pb2 as cpb

GONE_MEMORY = 4096          # how many cancelled cookies are remembered
EARLY_CANCEL_BATCH = 64     # early cancels sent on their own once this many pile up


class Held:
    """One lock held by the client."""

    __slots__ = ("lock", "desc", "users", "revoking", "flushed")

    def __init__(self, lock: Lock, desc: cpb.LockDesc, users: int) -> None:
        self.lock = lock
        self.desc = desc
        self.users = users
        self.revoking = False   # blocking callback received: no longer matched
        self.flushed = False    # on_blocking has returned: cancel once unused


class HeldLocks:
    """The locks one client holds from one server."""

    def __init__(self, lru_size: int) -> None:
        if lru_size < 1:
            raise ValueError("lru_size must be at least 1")
        self.lru_size = lru_size
        self._locks: OrderedDict[int, Held] = OrderedDict()     # least recently used first
        self._by_res: dict[ResId, dict[int, Held]] = {}
        self._gone: OrderedDict[int, None] = OrderedDict()       # cookies cancelled or dropped here
        self.early: list[int] = []                               # cookies to piggyback on the next request
        self._retiring: dict[int, bool] = {}     # LRU flush in progress -> asked back by the server meanwhile

    # -- the table ---------------------------------------------------------

    def get(self, cookie: int) -> Held | None:
        return self._locks.get(cookie)

    def add(self, lock: Lock, desc: cpb.LockDesc, users: int) -> Held:
        h = self._locks[lock.cookie] = Held(lock, desc, users)
        self._by_res.setdefault(lock.res, {})[lock.cookie] = h
        return h

    def match(self, res: ResId, mode: LockMode, ibits: int, want: Extent | None) -> Held | None:
        """A held lock, not being revoked, that covers the request (now the most recently used)."""
        for cookie, h in (self._by_res.get(res) or {}).items():
            lk = h.lock
            if h.revoking or not covers(lk.mode, mode):
                continue
            if ibits and not inodebits.covers_bits(lk.ibits, ibits):
                continue
            if want is not None and (lk.extent is None or not lk.extent.contains(want)):
                continue
            self._locks.move_to_end(cookie)
            return h
        return None

    def forget(self, h: Held) -> None:
        """h is no longer held here; its cookie is remembered as gone."""
        cookie = h.lock.cookie
        if self._locks.pop(cookie, None) is None:
            return
        by = self._by_res.get(h.lock.res)
        if by is not None:
            by.pop(cookie, None)
            if not by:
                del self._by_res[h.lock.res]
        self.mark_gone(cookie)

    def mark_gone(self, cookie: int) -> None:
        self._gone[cookie] = None
        while len(self._gone) > GONE_MEMORY:
            self._gone.popitem(last=False)

    def is_gone(self, cookie: int) -> bool:
        """Was this cookie given back (or dropped) here lately?"""
        return cookie in self._gone

    def forget_all(self) -> None:
        """The server forgot every lock of this export (eviction, a new export)."""
        for h in list(self._locks.values()):
            self.forget(h)
        self.early.clear()
        self._retiring.clear()

    def __iter__(self) -> Iterator[Held]:
        return iter(list(self._locks.values()))

    def __len__(self) -> int:
        return len(self._locks)

    # -- giving locks back -------------------------------------------------

    def lru_victims(self) -> list[Held]:
        """Forget the least recently used unused locks beyond lru_size: they retire (see `retired`)."""
        excess = len(self._locks) - self.lru_size
        if excess <= 0:
            return []           # the common case, and O(1): this runs on every grant
        victims: list[Held] = []
        for h in self._locks.values():
            if len(victims) >= excess:
                break
            if h.users == 0 and not h.revoking:
                victims.append(h)
        for h in victims:
            self.forget(h)
            self._retiring[h.lock.cookie] = False
        return victims

    def asked_back(self, cookie: int) -> bool | None:
        """The server asks back a lock that is not held here. True: cancel it at once (it waited as
        an early cancel, or was given back and that cancel may be lost); False: it is retiring and
        goes right after its flush; None: unknown here."""
        if cookie in self._retiring:
            self._retiring[cookie] = True
            return False
        if self.take_early(cookie) or cookie in self._gone:
            return True
        return None

    def retired(self, cookie: int) -> bool | None:
        """A retiring lock was flushed: whether the server asked for it meanwhile (None: forgotten since)."""
        return self._retiring.pop(cookie, None)

    def give_back(self, cookie: int) -> list[int]:
        """Queue cookie as an early cancel; returns a batch to send on its own when enough piled up."""
        self.early.append(cookie)
        if len(self.early) < EARLY_CANCEL_BATCH:
            return []
        batch, self.early = self.early, []
        return batch

    def take_all_early(self) -> list[int]:
        """Every early cancel, for the caller to piggyback in ReqHdr.cancel_cookies."""
        out, self.early = self.early, []
        return out

    def requeue_early(self, cookies: list[int]) -> None:
        """Early cancels taken for a request that failed: they go with the next one."""
        self.early[:0] = cookies

    def take_early(self, cookie: int) -> bool:
        """Take cookie out of the early cancels (to cancel it at once instead): True if it was there."""
        if cookie not in self.early:
            return False
        self.early.remove(cookie)
        return True
