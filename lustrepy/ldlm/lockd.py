"""The lock server: one per MDS and per OSS, driving a resource.Namespace for its callers.

Thread-safe: grpcio's server threads and the server's own code call it at
once; one mutex guards all state and is never held while waiting, while
calling `lvb_source`, or while doing I/O (callbacks are queued onto each
export's callback stream and written by that stream's own RPC thread).

An export is a connected client: `connect` gives it a fresh conn_gen and a
reconnect replaces it (dropping its locks). A holder that has not cancelled
within `callback_timeout` of its blocking callback is evicted by the timer
thread: its locks are dropped, waiters behind them are granted, and its
requests are refused (ENOTCONN) until it connects again.

This module never imports the servers that use it and never blocks a caller
forever: every wait has a deadline.
"""

from __future__ import annotations

import errno
import itertools
import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from lustrepy.common.errors import LpError
from lustrepy.common.records import Lvb
from lustrepy.ldlm import flags as fl
from lustrepy.ldlm.extent import Extent
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import BlockingCallback, Dropped, Event, Granted, Lock, Namespace, ResId
from lustrepy.ldlm.wire import lock_to_pb
from lustrepy.rpc.v1 import ldlm_pb2 as lpb

if TYPE_CHECKING:
    from lustrepy.ldlm.service import LdlmService

log = logging.getLogger(__name__)

GLIMPSE_MODES = frozenset({LockMode.PW, LockMode.EX})


@dataclass(frozen=True, slots=True)
class LockInfo:
    """A lock as listed by `lfsctl locks`."""

    lock: Lock
    age_s: float                # since granted (or since enqueued, while waiting)
    blocking_sent: bool


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """A connected (or evicted) client as listed by `lfsctl clients`."""

    client_id: str
    conn_gen: int
    peer: str
    callback_stream: bool
    granted_locks: int
    connected_s: float
    evicted: bool
    idle_s: float = 0.0         # since its last checked request (or its connect)


def merge_lvb(a: Lvb, b: Lvb) -> Lvb:
    """The newest view of an object from two LVBs: the max of each field."""
    return Lvb(max(a.size, b.size), max(a.blocks, b.blocks), max(a.mtime_ns, b.mtime_ns),
               max(a.atime_ns, b.atime_ns), max(a.ctime_ns, b.ctime_ns))


class CallbackStream:
    """The server end of one client's callback stream: a queue its RPC thread drains."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[lpb.CallbackDown | None] = queue.SimpleQueue()
        self.closed = False

    def send(self, msg: lpb.CallbackDown) -> None:
        if not self.closed:
            self._q.put(msg)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._q.put(None)

    def get(self) -> lpb.CallbackDown | None:
        """The next message to write, or None once the stream is closed (blocks)."""
        return self._q.get()


@dataclass(slots=True)
class _Export:
    client_id: str
    conn_gen: int
    peer: str
    connected_at: float
    evicted: bool = False
    stream: CallbackStream | None = None
    last_seen: float = 0.0      # monotonic time of its last checked request; listings only


class _Waiter:
    __slots__ = ("done", "lock", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.lock: Lock | None = None
        self.error: LpError | None = None


class _Glimpse:
    __slots__ = ("pending", "answers", "done")

    def __init__(self) -> None:
        self.pending: set[int] = set()
        self.answers: list[Lvb] = []
        self.done = threading.Event()


class LockServer:
    """The lock server of one target (an MDT or an OST)."""

    def __init__(self, name: str, *, callback_timeout: float = 10.0,
                 lvb_source: Callable[[ResId], Lvb] | None = None,
                 on_evict: Callable[[str], None] | None = None,
                 on_blocking: Callable[[Lock, Lock], None] | None = None) -> None:
        if callback_timeout <= 0:
            raise ValueError("callback_timeout must be positive")
        self.name = name
        self.callback_timeout = callback_timeout
        self._lvb_source = lvb_source
        self._on_evict = on_evict           # called with the client id, outside the mutex
        self.on_blocking = on_blocking      # (holder, conflicting) per blocking callback, under the mutex
        self._evicted_pending: list[str] = []
        self._mu = threading.Lock()
        # Random first cookie and conn_gen: handles from before a restart never match new ones.
        self._ns = Namespace(name, first_cookie=(secrets.randbits(32) << 24) | 1)
        self._conn_gens = itertools.count((secrets.randbits(31) << 20) | 1)
        self._callback_ids = itertools.count(1)
        self._exports: dict[str, _Export] = {}
        self._waiters: dict[int, _Waiter] = {}
        self._glimpses: dict[int, _Glimpse] = {}
        self._stats = {"evictions": 0, "callbacks_sent": 0, "glimpses_sent": 0, "enqueue_timeouts": 0,
                       "enqueue_eagain": 0}
        self._stopping = threading.Event()
        self._timer: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------

    def start(self) -> None:
        """Start the timer thread that evicts holders ignoring their blocking callbacks."""
        if self._timer is not None:
            return
        self._stopping.clear()
        self._timer = threading.Thread(target=self._timer_loop, name=f"ldlm-timer-{self.name}", daemon=True)
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer, close every callback stream and fail every waiting enqueue (ESHUTDOWN)."""
        self._stopping.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        with self._mu:
            for exp in self._exports.values():
                if exp.stream is not None:
                    exp.stream.close()
                    exp.stream = None
            for waiter in self._waiters.values():
                waiter.error = LpError(errno.ESHUTDOWN, f"{self.name} lock server stopping")
                waiter.done.set()
            self._waiters.clear()
            for g in self._glimpses.values():
                g.done.set()
            self._glimpses.clear()

    def servicer(self) -> LdlmService:
        """The Ldlm gRPC service of this lock server."""
        from lustrepy.ldlm.service import LdlmService
        return LdlmService(self)

    # -- exports -----------------------------------------------------------

    def connect(self, client_id: str, peer: str = "") -> int:
        """A new export for client_id; a previous one is replaced and its locks dropped."""
        if not client_id:
            raise LpError(errno.EINVAL, "empty client id")
        with self._mu:
            now = time.monotonic()
            old = self._exports.get(client_id)
            events = self._ns.drop_owner(client_id, now)
            if old is not None and old.stream is not None:
                old.stream.close()
            gen = next(self._conn_gens)
            self._exports[client_id] = _Export(client_id, gen, peer, now, last_seen=now)
            self._dispatch(events, LpError(errno.ENOTCONN, "reconnected"))
        if old is not None:
            log.info("%s: client %s reconnected from %s (gen %#x, %d locks dropped)", self.name, client_id,
                     peer or "?", gen, sum(isinstance(e, Dropped) for e in events))
        else:
            log.info("%s: client %s connected from %s (gen %#x)", self.name, client_id, peer or "?", gen)
        return gen

    def check(self, client_id: str, conn_gen: int) -> None:
        """Raise LpError(ENOTCONN) unless (client_id, conn_gen) is the current, live export."""
        with self._mu:
            self._check_locked(client_id, conn_gen)
            self._exports[client_id].last_seen = time.monotonic()

    def disconnect(self, client_id: str) -> None:
        """The client leaves: drop its locks and its export."""
        with self._mu:
            exp = self._exports.pop(client_id, None)
            if exp is not None and exp.stream is not None:
                exp.stream.close()
            events = self._ns.drop_owner(client_id, time.monotonic())
            self._dispatch(events, LpError(errno.ENOTCONN, "disconnected"))
        if exp is not None:
            log.info("%s: client %s disconnected", self.name, client_id)

    def evict(self, client_id: str, reason: str) -> None:
        """Drop the client's locks and refuse its requests until it connects again."""
        with self._mu:
            self._evict_locked(client_id, reason)
        self._run_evict_hooks()

    def _run_evict_hooks(self) -> None:
        with self._mu:
            pending, self._evicted_pending = self._evicted_pending, []
        for client_id in pending:
            if self._on_evict is not None:
                try:
                    self._on_evict(client_id)
                except Exception:  # the owner's clean-up must not stop the lock server
                    log.exception("%s: eviction clean-up for %s failed", self.name, client_id)

    # -- locks -------------------------------------------------------------

    def enqueue(self, owner: str, res: ResId, mode: LockMode, *, ibits: int = 0,
                extent: tuple[int, int] | None = None, flags: int = 0, timeout: float | None = None,
                local: bool = False, on_behalf: str = "") -> Lock:
        """Take a lock, blocking the calling thread until it is granted.

        A local lock taken `on_behalf` of a client ignores that client's own locks; so
        does a client lock taken on behalf of its own owner (a WBC lock).

        Conflicting holders get blocking callbacks. Raises LpError: ETIMEDOUT
        after `timeout` (default 2 * callback_timeout), EAGAIN when it would
        wait and flags has BLOCK_NOWAIT, ENOTCONN when the owner is not
        connected or is evicted meanwhile, EINVAL for a malformed request.
        Non-local owners must be connected exports.
        """
        if flags & ~fl.ALL:
            raise LpError(errno.EINVAL, f"unknown lock flags {flags & ~fl.ALL:#x}")
        ext = _extent(extent)
        wait_s = 2 * self.callback_timeout if timeout is None else timeout
        with self._mu:
            if not local:
                self._check_owner_locked(owner)
            if flags & fl.BLOCK_NOWAIT and self._ns.would_wait(res, mode, ibits=ibits, extent=ext,
                                                               on_behalf=on_behalf):
                self._stats["enqueue_eagain"] += 1
                raise LpError(errno.EAGAIN, f"lock on {res} would wait")
            lock, events = self._ns.enqueue(owner, res, mode, ibits=ibits, extent=ext, local=local,
                                            grow=not flags & fl.NO_EXPANSION, now=time.monotonic(),
                                            on_behalf=on_behalf)
            waiter = None
            if not lock.granted:
                waiter = self._waiters[lock.cookie] = _Waiter()
            self._dispatch(events)
        if waiter is None:
            log.debug("%s: granted %s", self.name, lock)
            return lock
        log.debug("%s: waiting %s", self.name, lock)
        if not waiter.done.wait(max(0.0, wait_s)):
            with self._mu:
                if self._waiters.pop(lock.cookie, None) is not None:
                    self._stats["enqueue_timeouts"] += 1
                    self._dispatch(self._ns.cancel(lock.cookie, time.monotonic()))
                    raise LpError(errno.ETIMEDOUT, f"lock on {res} not granted within {wait_s:.1f}s")
        if waiter.error is not None:
            raise waiter.error
        assert waiter.lock is not None
        log.debug("%s: granted %s after waiting", self.name, waiter.lock)
        return waiter.lock

    def cancel(self, owner: str, cookies: Iterable[int]) -> None:
        """Release locks; cookies that are unknown or belong to someone else are ignored."""
        with self._mu:
            now = time.monotonic()
            for cookie in cookies:
                lock = self._ns.get(cookie)
                if lock is None or lock.owner != owner:
                    continue
                waiter = self._waiters.pop(cookie, None)
                if waiter is not None:
                    waiter.error = LpError(errno.ECANCELED, "lock request cancelled")
                    waiter.done.set()
                self._dispatch(self._ns.cancel(cookie, now))

    def glimpse_lvb(self, res: ResId, timeout: float) -> Lvb:
        """The object's newest LVB: lvb_source merged with what its PW holders report.

        Holders are asked over CB_GLIMPSE without losing their locks; those that
        do not answer within `timeout` are skipped, not evicted.
        """
        lvb = self._lvb_source(res) if self._lvb_source is not None else Lvb()
        g = _Glimpse()
        with self._mu:
            for lock in self._writers_locked(res):
                exp = self._exports.get(lock.owner)
                if exp is None or exp.stream is None or exp.evicted:
                    continue
                cb_id = next(self._callback_ids)
                g.pending.add(cb_id)
                self._glimpses[cb_id] = g
                self._stats["glimpses_sent"] += 1
                exp.stream.send(lpb.CallbackDown(callback_id=cb_id, kind=lpb.CB_GLIMPSE, lock=lock_to_pb(lock)))
            if not g.pending:
                g.done.set()
        answered = g.done.wait(max(0.0, timeout))
        with self._mu:
            silent = len(g.pending)
            for cb_id in g.pending:
                self._glimpses.pop(cb_id, None)
            answers = list(g.answers)
        if not answered:
            log.debug("%s: glimpse of %s: %d holder(s) did not answer in time", self.name, res, silent)
        for other in answers:
            lvb = merge_lvb(lvb, other)
        return lvb

    def glimpse_if_conflicting(self, owner: str, res: ResId, mode: LockMode, *, ibits: int = 0,
                               extent: tuple[int, int] | None = None, timeout: float | None = None) -> Lvb | None:
        """For a GLIMPSE enqueue: the glimpsed LVB if another owner's PW/EX lock conflicts, else None."""
        ext = _extent(extent)
        with self._mu:
            writers = [lk for lk in self._ns.conflicting(res, mode, ibits=ibits, extent=ext)
                       if lk.owner != owner and lk.mode in GLIMPSE_MODES and not lk.local]
        if not writers:
            return None
        return self.glimpse_lvb(res, self.callback_timeout if timeout is None else timeout)

    def lvb(self, res: ResId) -> Lvb | None:
        """What lvb_source says of res (None when there is no source)."""
        return self._lvb_source(res) if self._lvb_source is not None else None

    # -- listings ----------------------------------------------------------

    def lock(self, cookie: int) -> Lock | None:
        """The lock with this cookie as it stands (granted or waiting), or None."""
        with self._mu:
            return self._ns.get(cookie)

    def locks(self, client_id: str | None = None) -> list[LockInfo]:
        with self._mu:
            now = time.monotonic()
            return [LockInfo(st.lock, now - (st.granted_at if st.granted_at is not None else st.enqueued_at),
                             st.blocking_sent_at is not None) for st in self._ns.states(client_id)]

    def exports(self) -> list[ExportInfo]:
        with self._mu:
            now = time.monotonic()
            return [ExportInfo(e.client_id, e.conn_gen, e.peer, e.stream is not None,
                               sum(lk.granted for lk in self._ns.owner_locks(e.client_id)),
                               now - e.connected_at, e.evicted, now - (e.last_seen or e.connected_at))
                    for e in sorted(self._exports.values(), key=lambda e: e.client_id)]

    def statistics(self) -> dict[str, int | str]:
        with self._mu:
            return {"name": self.name, "exports": len(self._exports), **self._ns.statistics(), **self._stats}

    # -- the callback stream (used by service.LdlmService) -----------------

    def bind_stream(self, client_id: str, conn_gen: int) -> CallbackStream:
        """Attach a new callback stream to the current export; callbacks still owed are resent."""
        with self._mu:
            self._check_locked(client_id, conn_gen)
            exp = self._exports[client_id]
            if exp.stream is not None:
                exp.stream.close()
            stream = exp.stream = CallbackStream()
            stream.send(lpb.CallbackDown(kind=lpb.CB_NONE))     # tells the client it is bound
            for st in self._ns.states(client_id):
                if st.lock.granted and st.blocking_by is not None:
                    self._send_blocking_locked(exp, st.lock, st.blocking_by)
        log.debug("%s: callback stream of %s bound", self.name, client_id)
        return stream

    def unbind_stream(self, client_id: str, stream: CallbackStream) -> None:
        with self._mu:
            stream.close()
            exp = self._exports.get(client_id)
            if exp is not None and exp.stream is stream:
                exp.stream = None

    def on_answer(self, up: lpb.CallbackUp) -> None:
        """A client answered a callback (glimpse LVBs matter; blocking acks need nothing)."""
        with self._mu:
            g = self._glimpses.pop(up.callback_id, None)
            if g is None:
                return
            g.pending.discard(up.callback_id)
            if up.lvb_valid and not up.errno:
                g.answers.append(Lvb(up.lvb.size, up.lvb.blocks, up.lvb.mtime_ns, up.lvb.atime_ns, up.lvb.ctime_ns))
            if not g.pending:
                g.done.set()

    # -- internals ---------------------------------------------------------

    def _check_locked(self, client_id: str, conn_gen: int) -> None:
        exp = self._exports.get(client_id)
        if exp is None:
            raise LpError(errno.ENOTCONN, "not connected")
        if exp.conn_gen != conn_gen:
            raise LpError(errno.ENOTCONN, "evicted" if exp.evicted else "not connected (stale connection)")
        if exp.evicted:
            raise LpError(errno.ENOTCONN, "evicted")

    def _check_owner_locked(self, owner: str) -> None:
        exp = self._exports.get(owner)
        if exp is None:
            raise LpError(errno.ENOTCONN, f"{owner} not connected")
        if exp.evicted:
            raise LpError(errno.ENOTCONN, "evicted")

    def _writers_locked(self, res: ResId) -> list[Lock]:
        """One granted PW/EX lock per non-local owner of res (the one reaching furthest)."""
        best: dict[str, Lock] = {}
        for lk in self._ns.granted(res):
            if lk.local or lk.mode not in GLIMPSE_MODES:
                continue
            cur = best.get(lk.owner)
            end = lk.extent.end if lk.extent is not None else 0
            if cur is None or (cur.extent is not None and cur.extent.end < end):
                best[lk.owner] = lk
        return list(best.values())

    def _evict_locked(self, client_id: str, reason: str) -> None:
        exp = self._exports.get(client_id)
        events = self._ns.drop_owner(client_id, time.monotonic())
        if exp is None and not events:
            return
        if exp is not None and exp.evicted and not events:
            return
        self._stats["evictions"] += 1
        dropped = sum(isinstance(e, Dropped) for e in events)
        log.warning("%s: evicting client %s: %s (%d locks dropped)", self.name, client_id, reason, dropped)
        self._evicted_pending.append(client_id)
        if exp is not None:
            exp.evicted = True
            if exp.stream is not None:
                exp.stream.send(lpb.CallbackDown(callback_id=next(self._callback_ids), kind=lpb.CB_EVICTED))
                exp.stream.close()
                exp.stream = None
        self._dispatch(events, LpError(errno.ENOTCONN, "evicted"))

    def _dispatch(self, events: list[Event], drop_error: LpError | None = None) -> None:
        """Act on state-machine events: wake waiters, queue callbacks. Called under the mutex."""
        for ev in events:
            if isinstance(ev, Granted):
                waiter = self._waiters.pop(ev.lock.cookie, None)
                if waiter is not None:
                    waiter.lock = ev.lock
                    waiter.done.set()
            elif isinstance(ev, BlockingCallback):
                if self.on_blocking is not None:
                    try:
                        self.on_blocking(ev.holder, ev.conflicting)
                    except Exception:
                        log.exception("%s: blocking-callback hook failed", self.name)
                exp = self._exports.get(ev.holder.owner)
                if exp is not None:
                    self._send_blocking_locked(exp, ev.holder, ev.conflicting)
                else:
                    log.debug("%s: no export for holder %s", self.name, ev.holder)
            elif isinstance(ev, Dropped):
                waiter = self._waiters.pop(ev.lock.cookie, None)
                if waiter is not None:
                    waiter.error = drop_error or LpError(errno.ENOTCONN, "lock dropped")
                    waiter.done.set()

    def _send_blocking_locked(self, exp: _Export, holder: Lock, conflicting: Lock) -> None:
        if exp.stream is None or exp.evicted:
            log.debug("%s: callback stream of %s down, blocking callback for %s not sent",
                      self.name, exp.client_id, holder)
            return
        self._stats["callbacks_sent"] += 1
        exp.stream.send(lpb.CallbackDown(callback_id=next(self._callback_ids), kind=lpb.CB_BLOCKING,
                                         lock=lock_to_pb(holder), conflicting=lock_to_pb(conflicting)))
        log.debug("%s: blocking callback to %s for %s", self.name, exp.client_id, holder)

    def _timer_loop(self) -> None:
        interval = max(0.02, min(1.0, self.callback_timeout / 10))
        while not self._stopping.wait(interval):
            try:
                self._enforce_timeouts()
                self._run_evict_hooks()
            except Exception:
                log.exception("%s: lock timer failed", self.name)

    def _enforce_timeouts(self) -> None:
        with self._mu:
            now = time.monotonic()
            evicted: set[str] = set()
            for lock in self._ns.expired(now, self.callback_timeout):
                if lock.owner in evicted:
                    continue
                evicted.add(lock.owner)
                st = self._ns.state(lock.cookie)
                age = now - st.blocking_sent_at if st is not None and st.blocking_sent_at is not None else 0.0
                self._evict_locked(lock.owner, f"lock callback timer expired after {age:.1f}s on resource "
                                               f"{lock.res} (lock {lock.cookie:#x} {lock.mode.name})")


def _extent(extent: tuple[int, int] | Extent | None) -> Extent | None:
    if extent is None or isinstance(extent, Extent):
        return extent
    try:
        start, end = extent
        return Extent(int(start), int(end))
    except (TypeError, ValueError) as e:
        raise LpError(errno.EINVAL, f"bad extent {extent!r}: {e}") from None
