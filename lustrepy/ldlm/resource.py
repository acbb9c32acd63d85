"""The lock state machine: a namespace of resources with granted and waiting queues.

Sans-I/O, as h11 and trio's cores: methods take requests (and the current
time, handed in) and return events for the caller to act on -- Granted,
BlockingCallback, Dropped. This module never does I/O, never starts threads,
never reads a clock and never sleeps; it is not thread-safe (lockd serialises
calls to it).

Rules:
- Two locks conflict when their modes are incompatible and what they cover
  intersects: inode bits for MDS locks, byte extents for OSS locks; a plain
  lock (neither) covers the whole resource.
- First come, first served: a new request waits if it conflicts with a granted
  lock or with any earlier waiting one; waiters are granted in queue order.
- Each granted lock that blocks a waiter gets exactly one BlockingCallback,
  unless its owner is local (server-internal), which is simply waited for.
- A granted PR/PW extent lock grows past its request (see extent.grow).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Iterable, Union

from lustrepy.common.errors import LpError
from lustrepy.ldlm import extent as ext_policy
from lustrepy.ldlm import inodebits
from lustrepy.ldlm.extent import Extent
from lustrepy.ldlm.modes import LockMode, compatible

U64 = 2**64 - 1


@dataclass(frozen=True, order=True, slots=True)
class ResId:
    """A lock resource name. MDS: (fid.seq, fid.oid, fid.ver); OSS: (ost_index, object_id, 0)."""

    n0: int
    n1: int = 0
    n2: int = 0

    def __post_init__(self) -> None:
        for n in (self.n0, self.n1, self.n2):
            if not 0 <= n <= U64:
                raise ValueError(f"resource name out of range: {n}")

    def __str__(self) -> str:
        return f"[{self.n0:#x}:{self.n1:#x}:{self.n2:#x}]"


@dataclass(frozen=True, slots=True)
class Lock:
    """One lock request or grant. Replaced (never mutated) when it is granted."""

    cookie: int                     # unique handle, never 0
    owner: str                      # client id, or a server-internal name for local locks
    res: ResId
    mode: LockMode
    ibits: int = 0                  # MDS locks
    extent: Extent | None = None    # OSS locks: the granted range (grown), or the request while waiting
    req_extent: Extent | None = None  # what was asked for
    granted: bool = False
    local: bool = False             # server-internal: never gets callbacks
    on_behalf: str = ""             # a local lock taken to execute this client's own request, or
                                    # a client's WBC lock (on_behalf == owner): never conflicts
                                    # with that client's other locks

    def __str__(self) -> str:
        what = (f" bits={inodebits.bits_str(self.ibits)}" if self.ibits else "") + \
               (f" ext={self.extent}" if self.extent is not None else "")
        state = "granted" if self.granted else "waiting"
        return f"{self.cookie:#x} {self.mode.name} {self.res}{what} owner={self.owner} {state}"


def locks_conflict(a: Lock, b: Lock) -> bool:
    """True when a and b may not be granted together on one resource.

    A local lock taken on behalf of a client never conflicts with that client's
    own locks: the client learns what its own request changed from the reply and
    keeps its caches, instead of being called back for its own update.
    """
    if a.res != b.res or compatible(a.mode, b.mode):
        return False
    if (a.on_behalf and a.on_behalf == b.owner) or (b.on_behalf and b.on_behalf == a.owner):
        return False
    if a.extent is not None and b.extent is not None:
        return a.extent.overlaps(b.extent)
    if a.ibits and b.ibits:
        return bool(a.ibits & b.ibits)
    return True


@dataclass(frozen=True, slots=True)
class Granted:
    lock: Lock


@dataclass(frozen=True, slots=True)
class BlockingCallback:
    """Ask `holder`'s owner to flush and cancel it: `conflicting` is waiting for it."""

    holder: Lock
    conflicting: Lock


@dataclass(frozen=True, slots=True)
class Dropped:
    """A lock removed without its owner cancelling it (eviction, disconnect)."""

    lock: Lock


Event = Union[Granted, BlockingCallback, Dropped]


@dataclass(frozen=True, slots=True)
class LockState:
    """A lock and its history, for listings and timeouts."""

    lock: Lock
    enqueued_at: float
    granted_at: float | None
    blocking_sent_at: float | None
    blocking_by: Lock | None


@dataclass(slots=True)
class _Entry:
    lock: Lock
    enqueued_at: float
    grow: bool
    granted_at: float | None = None
    blocking_sent_at: float | None = None
    blocking_by: Lock | None = None


@dataclass(slots=True)
class _Resource:
    granted: dict[int, _Entry] = field(default_factory=dict)
    waiting: dict[int, _Entry] = field(default_factory=dict)    # insertion order = queue order


class Namespace:
    """All lock resources of one server."""

    def __init__(self, name: str = "", first_cookie: int = 1) -> None:
        if not 0 < first_cookie <= U64:
            raise ValueError("first_cookie must be a non-zero u64")
        self.name = name
        self._next_cookie = first_cookie
        self._resources: dict[ResId, _Resource] = {}
        self._locks: dict[int, _Entry] = {}
        self._by_owner: dict[str, set[int]] = {}
        self._blocked: dict[int, _Entry] = {}       # granted locks whose blocking callback went out
        self._stats = {"enqueued": 0, "granted": 0, "cancelled": 0, "dropped": 0, "blocking_callbacks": 0}

    # -- requests --------------------------------------------------------

    def enqueue(self, owner: str, res: ResId, mode: LockMode, *, ibits: int = 0, extent: Extent | None = None,
                local: bool = False, grow: bool = True, now: float = 0.0,
                on_behalf: str = "") -> tuple[Lock, list[Event]]:
        """Queue a request; returns the lock (granted or waiting) and the events it caused.

        Raises LpError(EINVAL) for a malformed request.
        """
        lock = self._make_lock(owner, res, mode, ibits, extent, local, on_behalf)
        entry = _Entry(lock, now, grow)
        r = self._resources.get(res)
        if r is None:
            r = self._resources[res] = _Resource()
        ahead = list(r.waiting.values())
        r.waiting[lock.cookie] = entry
        self._locks[lock.cookie] = entry
        owned = self._by_owner.get(owner)
        if owned is None:
            owned = self._by_owner[owner] = set()
        owned.add(lock.cookie)
        self._stats["enqueued"] += 1
        events: list[Event] = []
        self._try_grant(r, entry, ahead, now, events)
        return entry.lock, events

    def cancel(self, cookie: int, now: float = 0.0) -> list[Event]:
        """Remove a lock (granted or waiting); unknown cookies are ignored.

        Returns the events of the waiters this lets through.
        """
        entry = self._locks.get(cookie)
        if entry is None:
            return []
        self._remove(entry)
        self._stats["cancelled"] += 1
        return self._reprocess(entry.lock.res, now)

    def drop_owner(self, owner: str, now: float = 0.0) -> list[Event]:
        """Remove every lock of `owner` (eviction): Dropped for each, then what that lets through."""
        cookies = self._by_owner.get(owner, set())
        entries = sorted((self._locks[c] for c in cookies), key=lambda e: e.lock.cookie)
        events: list[Event] = []
        touched: dict[ResId, None] = {}
        for entry in entries:
            self._remove(entry)
            self._stats["dropped"] += 1
            events.append(Dropped(entry.lock))
            touched[entry.lock.res] = None
        for res in touched:
            events.extend(self._reprocess(res, now))
        return events

    def expired(self, now: float, timeout: float) -> list[Lock]:
        """Granted locks whose blocking callback went out before now - timeout."""
        limit = now - timeout
        return [e.lock for e in self._blocked.values()
                if e.blocking_sent_at is not None and e.blocking_sent_at < limit]

    # -- queries ---------------------------------------------------------

    def get(self, cookie: int) -> Lock | None:
        entry = self._locks.get(cookie)
        return entry.lock if entry is not None else None

    def state(self, cookie: int) -> LockState | None:
        entry = self._locks.get(cookie)
        return self._state(entry) if entry is not None else None

    def conflicting(self, res: ResId, mode: LockMode, *, ibits: int = 0,
                    extent: Extent | None = None) -> list[Lock]:
        """Granted locks a request of this shape would conflict with."""
        r = self._resources.get(res)
        if r is None:
            return []
        probe = self._probe(res, mode, ibits, extent)
        return [e.lock for e in r.granted.values() if locks_conflict(e.lock, probe)]

    def would_wait(self, res: ResId, mode: LockMode, *, ibits: int = 0, extent: Extent | None = None,
                   on_behalf: str = "") -> bool:
        """True when a request of this shape would not be granted at once."""
        r = self._resources.get(res)
        if r is None:
            return False
        probe = self._probe(res, mode, ibits, extent, on_behalf)
        return any(locks_conflict(e.lock, probe) for q in (r.granted, r.waiting) for e in q.values())

    def granted(self, res: ResId) -> list[Lock]:
        r = self._resources.get(res)
        return [e.lock for e in r.granted.values()] if r else []

    def waiting(self, res: ResId) -> list[Lock]:
        r = self._resources.get(res)
        return [e.lock for e in r.waiting.values()] if r else []

    def resources(self) -> list[ResId]:
        return list(self._resources)

    def owners(self) -> list[str]:
        return list(self._by_owner)

    def owner_locks(self, owner: str) -> list[Lock]:
        return [self._locks[c].lock for c in sorted(self._by_owner.get(owner, ()))]

    def states(self, owner: str | None = None) -> list[LockState]:
        cookies: Iterable[int] = self._locks if owner is None else self._by_owner.get(owner, ())
        return [self._state(self._locks[c]) for c in sorted(cookies)]

    def statistics(self) -> dict[str, int]:
        granted = sum(len(r.granted) for r in self._resources.values())
        return {"resources": len(self._resources), "locks_granted": granted,
                "locks_waiting": len(self._locks) - granted, "blocking_pending": len(self._blocked),
                **self._stats}

    # -- internals -------------------------------------------------------

    def _make_lock(self, owner: str, res: ResId, mode: LockMode, ibits: int, extent: Extent | None,
                   local: bool, on_behalf: str = "") -> Lock:
        try:
            mode = LockMode(mode)
        except ValueError:
            raise LpError(errno.EINVAL, f"bad lock mode {mode!r}") from None
        if ibits and extent is not None:
            raise LpError(errno.EINVAL, "a lock has inode bits or an extent, not both")
        if ibits and not inodebits.valid_bits(ibits):
            raise LpError(errno.EINVAL, f"bad inode bits {ibits:#x}")
        if not owner:
            raise LpError(errno.EINVAL, "a lock needs an owner")
        cookie = self._next_cookie
        self._next_cookie = cookie + 1 if cookie < U64 else 1
        if on_behalf and not local and on_behalf != owner:
            raise LpError(errno.EINVAL, "a client lock is taken on behalf of its own owner only")
        return Lock(cookie, owner, res, mode, ibits, extent, extent, False, local, on_behalf)

    @staticmethod
    def _probe(res: ResId, mode: LockMode, ibits: int, extent: Extent | None, on_behalf: str = "") -> Lock:
        return Lock(0, "?", res, LockMode(mode), ibits, extent, extent, on_behalf=on_behalf)

    @staticmethod
    def _state(e: _Entry) -> LockState:
        return LockState(e.lock, e.enqueued_at, e.granted_at, e.blocking_sent_at, e.blocking_by)

    def _remove(self, entry: _Entry) -> None:
        lock = entry.lock
        del self._locks[lock.cookie]
        self._blocked.pop(lock.cookie, None)
        owned = self._by_owner[lock.owner]
        owned.discard(lock.cookie)
        if not owned:
            del self._by_owner[lock.owner]
        r = self._resources[lock.res]
        r.granted.pop(lock.cookie, None)
        r.waiting.pop(lock.cookie, None)
        if not r.granted and not r.waiting:
            del self._resources[lock.res]

    def _reprocess(self, res: ResId, now: float) -> list[Event]:
        """Walk the waiting queue in order, granting what no longer conflicts."""
        events: list[Event] = []
        r = self._resources.get(res)
        if r is None:
            return events
        ahead: list[_Entry] = []
        for entry in list(r.waiting.values()):
            if not self._try_grant(r, entry, ahead, now, events):
                ahead.append(entry)
        return events

    def _try_grant(self, r: _Resource, entry: _Entry, ahead: list[_Entry], now: float,
                   events: list[Event]) -> bool:
        """Grant `entry` if nothing granted and nothing ahead of it conflicts; else send callbacks."""
        lock = entry.lock
        blockers = [g for g in r.granted.values() if locks_conflict(g.lock, lock)]
        if not blockers and not any(locks_conflict(w.lock, lock) for w in ahead):
            self._grant(r, entry, now, events)
            return True
        for holder in blockers:
            if holder.blocking_sent_at is None and not holder.lock.local:
                holder.blocking_sent_at = now
                holder.blocking_by = lock
                self._blocked[holder.lock.cookie] = holder
                self._stats["blocking_callbacks"] += 1
                events.append(BlockingCallback(holder.lock, lock))
        return False

    def _grant(self, r: _Resource, entry: _Entry, now: float, events: list[Event]) -> None:
        lock = entry.lock
        grown = lock.extent
        if lock.extent is not None and entry.grow:
            others = [(e.lock.mode, e.lock.extent) for q in (r.granted, r.waiting) for e in q.values()
                      if e is not entry and e.lock.extent is not None]
            # A plain or ibits lock on an extent resource covers everything: it stops growth too.
            if any(e.lock.extent is None and not compatible(e.lock.mode, lock.mode)
                   for q in (r.granted, r.waiting) for e in q.values() if e is not entry):
                others.append((LockMode.EX, ext_policy.WHOLE))
            grown = ext_policy.grow(lock.mode, lock.extent, others)
        # A new Lock, as replace(lock, granted=True, extent=grown) makes it, at a third of the cost
        # (every field named: a field added to Lock must be added here).
        entry.lock = Lock(lock.cookie, lock.owner, lock.res, lock.mode, lock.ibits, grown, lock.req_extent, True,
                          lock.local, lock.on_behalf)
        entry.granted_at = now
        del r.waiting[lock.cookie]
        r.granted[lock.cookie] = entry
        self._stats["granted"] += 1
        events.append(Granted(entry.lock))
