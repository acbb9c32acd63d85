"""The state of one lock server (an MDT's or an OST's), sans-I/O: the lock namespace,
the export table, the callback timers and glimpse collection.

As h11's and trio's cores: every method takes a request and the current time
(`now`, handed in) and returns effects for the shell (lockd) to carry out --
a message to write on a client's callback stream, a stream to close, an
enqueue caller to wake, an eviction to report. This module never does I/O,
never reads a clock, never starts threads, never waits and never logs; it is
not thread-safe (lockd serialises every call under one mutex).

Rules, beyond resource's:
- Requests of a client are accepted only from its current export
  (exports.ExportTable); a reconnect or a disconnect drops the client's locks.
- A holder that has not cancelled within `callback_timeout` of its blocking
  callback is evicted by `expire(now)`: its locks are dropped, the waiters
  behind them granted, its requests refused (ENOTCONN) until it connects
  again, and its stream gets CB_EVICTED and is closed.
- A callback owed to a client whose stream is down goes out when it binds a
  new stream; its timer runs meanwhile.
- Each enqueue that waits has exactly one caller; the caller ends with a
  Granted or a Failed effect for its cookie.
"""

from __future__ import annotations

import errno
import itertools
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Union

from lustrepy.common.errors import LpError
from lustrepy.common.records import Lvb
from lustrepy.ldlm import flags as fl
from lustrepy.ldlm import glimpse
from lustrepy.ldlm.exports import ExportInfo, ExportTable
from lustrepy.ldlm.extent import Extent, parse_extent
from lustrepy.ldlm.glimpse import GlimpseResult, Glimpses
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import BlockingCallback, Dropped, Event, Granted, Lock, Namespace, ResId


class CallbackKind(Enum):
    """What a message down a callback stream says (lustrepy.rpc.v1.CallbackKind CB_<name>, see wire)."""

    NONE = "none"               # the stream is bound to the export; nothing to do
    BLOCKING = "blocking"       # flush what `lock` covers, then cancel it: `conflicting` waits for it
    GLIMPSE = "glimpse"         # report your LVB for `lock` without cancelling
    EVICTED = "evicted"         # your export was evicted


@dataclass(frozen=True, slots=True)
class Callback:
    """One message down a client's callback stream."""

    kind: CallbackKind
    callback_id: int = 0
    lock: Lock | None = None
    conflicting: Lock | None = None


@dataclass(frozen=True, slots=True)
class Send:
    """Write `callback` on stream `stream`."""

    stream: int
    callback: Callback


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Close stream `stream`: nothing more goes down it."""

    stream: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The enqueue waiting for lock `cookie` ends with `error`."""

    cookie: int
    error: LpError


@dataclass(frozen=True, slots=True)
class Evicted:
    """Client `client_id` was evicted (log it, run the server's clean-up)."""

    client_id: str
    reason: str
    dropped: int                    # locks dropped


@dataclass(frozen=True, slots=True)
class GlimpseDone:
    """Every holder asked by glimpse `glimpse` has answered (or the server stops)."""

    glimpse: int


# Granted: wake the enqueue waiting for that cookie, if any. BlockingCallback: one per
# holder called back, for the server's hook (sent, if its stream is up, as a Send).
Effect = Union[Granted, BlockingCallback, Send, CloseStream, Failed, Evicted, GlimpseDone]


@dataclass(frozen=True, slots=True)
class Connection:
    """What a connect did."""

    conn_gen: int
    reconnect: bool                 # it replaced an export of the same client
    dropped: int                    # locks of the replaced export dropped


@dataclass(frozen=True, slots=True)
class LockInfo:
    """A lock as listed by `lfsctl locks`."""

    lock: Lock
    age_s: float                # since granted (or since enqueued, while waiting)
    blocking_sent: bool


class LockCore:
    """Locks, exports, callback timers and glimpses of one lock server."""

    def __init__(self, name: str, *, callback_timeout: float = 10.0, first_cookie: int = 1,
                 first_conn_gen: int = 1) -> None:
        if callback_timeout <= 0:
            raise ValueError("callback_timeout must be positive")
        self.name = name
        self.callback_timeout = callback_timeout    # set at run time by set-param
        self._ns = Namespace(name, first_cookie=first_cookie)
        self._exports = ExportTable(first_conn_gen)
        self._glimpses = Glimpses()
        self._callback_ids = itertools.count(1)
        self._stats = {"evictions": 0, "callbacks_sent": 0, "glimpses_sent": 0, "enqueue_timeouts": 0,
                       "enqueue_eagain": 0}

    # -- exports -----------------------------------------------------------

    def connect(self, client_id: str, peer: str, now: float) -> tuple[Connection, list[Effect]]:
        """A new export for client_id; a previous one is replaced and its locks dropped."""
        exp, old = self._exports.connect(client_id, peer, now)
        out: list[Effect] = []
        if old is not None and old.stream is not None:
            out.append(CloseStream(old.stream))
        events = self._ns.drop_owner(client_id, now)
        out += self._effects(events, LpError(errno.ENOTCONN, "reconnected"))
        return Connection(exp.conn_gen, old is not None, _dropped(events)), out

    def check(self, client_id: str, conn_gen: int, now: float) -> None:
        """Raise LpError(ENOTCONN) unless (client_id, conn_gen) is the current, live export."""
        self._exports.seen(self._exports.check(client_id, conn_gen), now)

    def disconnect(self, client_id: str, now: float) -> tuple[bool, list[Effect]]:
        """The client leaves: drop its locks and its export. (Whether it had one, effects.)"""
        exp = self._exports.remove(client_id)
        out: list[Effect] = []
        if exp is not None and exp.stream is not None:
            out.append(CloseStream(exp.stream))
        out += self._effects(self._ns.drop_owner(client_id, now), LpError(errno.ENOTCONN, "disconnected"))
        return exp is not None, out

    def evict(self, client_id: str, reason: str, now: float) -> list[Effect]:
        """Drop the client's locks and refuse its requests until it connects again.

        Nothing happens to a client already evicted that holds no lock, or to an
        unknown one.
        """
        exp = self._exports.get(client_id)
        events = self._ns.drop_owner(client_id, now)
        if not events and (exp is None or exp.evicted):
            return []
        self._stats["evictions"] += 1
        out: list[Effect] = [Evicted(client_id, reason, _dropped(events))]
        if exp is not None:
            stream = self._exports.mark_evicted(exp)
            if stream is not None:
                out += [Send(stream, Callback(CallbackKind.EVICTED, next(self._callback_ids))), CloseStream(stream)]
        return out + self._effects(events, LpError(errno.ENOTCONN, "evicted"))

    def expire(self, now: float) -> list[Effect]:
        """Evict every holder whose blocking callback went out more than callback_timeout ago."""
        out: list[Effect] = []
        evicted: set[str] = set()
        for lock in self._ns.expired(now, self.callback_timeout):
            if lock.owner in evicted:
                continue
            evicted.add(lock.owner)
            st = self._ns.state(lock.cookie)
            age = now - st.blocking_sent_at if st is not None and st.blocking_sent_at is not None else 0.0
            out += self.evict(lock.owner, f"lock callback timer expired after {age:.1f}s on resource "
                                          f"{lock.res} (lock {lock.cookie:#x} {lock.mode.name})", now)
        return out

    def bind_stream(self, client_id: str, conn_gen: int) -> tuple[int, list[Effect]]:
        """Bind a new callback stream to the current export: its id, and what goes down it first.

        The stream it replaces is closed; blocking callbacks still owed are sent again.
        """
        exp = self._exports.check(client_id, conn_gen)
        stream, old = self._exports.new_stream(exp)
        out: list[Effect] = [CloseStream(old)] if old is not None else []
        out.append(Send(stream, Callback(CallbackKind.NONE)))
        for st in self._ns.states(client_id):
            if st.lock.granted and st.blocking_by is not None:
                out.append(self._blocking(stream, st.lock, st.blocking_by))
        return stream, out

    def unbind_stream(self, client_id: str, stream: int) -> None:
        """Stream `stream` of client_id ended."""
        self._exports.unbind(client_id, stream)

    # -- locks -------------------------------------------------------------

    def enqueue(self, owner: str, res: ResId, mode: LockMode, *, ibits: int = 0,
                extent: tuple[int, int] | Extent | None = None, flags: int = 0, local: bool = False,
                on_behalf: str = "", now: float = 0.0) -> tuple[Lock, list[Effect]]:
        """Queue a lock request: the lock (granted, or waiting for its caller) and the effects.

        Raises LpError: EINVAL for a malformed request, ENOTCONN when a non-local
        owner has no live export, EAGAIN when it would wait and flags has BLOCK_NOWAIT.
        """
        if flags & ~fl.ALL:
            raise LpError(errno.EINVAL, f"unknown lock flags {flags & ~fl.ALL:#x}")
        ext = parse_extent(extent) if extent is not None else None
        if not local:
            self._exports.check_owner(owner)
        if flags & fl.BLOCK_NOWAIT and self._ns.would_wait(res, mode, ibits=ibits, extent=ext, on_behalf=on_behalf):
            self._stats["enqueue_eagain"] += 1
            raise LpError(errno.EAGAIN, f"lock on {res} would wait")
        lock, events = self._ns.enqueue(owner, res, mode, ibits=ibits, extent=ext, local=local,
                                        grow=not flags & fl.NO_EXPANSION, now=now, on_behalf=on_behalf)
        return lock, self._effects(events)

    def give_up(self, cookie: int, waited_s: float, now: float) -> list[Effect]:
        """The caller of a waiting enqueue stops waiting after `waited_s`: it fails with ETIMEDOUT
        and leaves the queue. Nothing happens when the lock was granted or dropped meanwhile."""
        lock = self._ns.get(cookie)
        if lock is None or lock.granted:
            return []
        self._stats["enqueue_timeouts"] += 1
        failed = Failed(cookie, LpError(errno.ETIMEDOUT, f"lock on {lock.res} not granted within {waited_s:.1f}s"))
        return [failed, *self._effects(self._ns.cancel(cookie, now))]

    def cancel(self, owner: str, cookies: Iterable[int], now: float) -> list[Effect]:
        """Release locks; cookies that are unknown or belong to someone else are ignored.

        A waiting request cancelled this way fails its caller with ECANCELED.
        """
        out: list[Effect] = []
        for cookie in cookies:
            lock = self._ns.get(cookie)
            if lock is None or lock.owner != owner:
                continue
            if not lock.granted:
                out.append(Failed(cookie, LpError(errno.ECANCELED, "lock request cancelled")))
            out += self._effects(self._ns.cancel(cookie, now))
        return out

    def stop(self) -> list[Effect]:
        """The server stops: close every stream, fail every waiting enqueue (ESHUTDOWN), end every glimpse."""
        out: list[Effect] = []
        for exp in self._exports.all():
            stream = self._exports.drop_stream(exp)
            if stream is not None:
                out.append(CloseStream(stream))
        error = LpError(errno.ESHUTDOWN, f"{self.name} lock server stopping")
        out += [Failed(st.lock.cookie, error) for st in self._ns.states() if not st.lock.granted]
        out += [GlimpseDone(gid) for gid in self._glimpses.open_ids()]
        return out

    # -- glimpses ----------------------------------------------------------

    def writer_conflicts(self, owner: str, res: ResId, mode: LockMode, *, ibits: int = 0,
                         extent: tuple[int, int] | Extent | None = None) -> bool:
        """True when another owner's PW/EX client lock conflicts with a request of this shape."""
        return any(lk.owner != owner and lk.mode in glimpse.GLIMPSE_MODES and not lk.local
                   for lk in self._ns.conflicting(res, mode, ibits=ibits, extent=parse_extent(extent) if extent is not None else None))

    def glimpse(self, res: ResId) -> tuple[int, list[Effect]]:
        """Ask res's writers with a live stream for their LVB: the glimpse's id and the callbacks.

        GlimpseDone comes at once when there is nobody to ask.
        """
        gid = self._glimpses.open()
        out: list[Effect] = []
        for lock in glimpse.writers(self._ns.granted(res)):
            stream = self._exports.live_stream(lock.owner)
            if stream is None:
                continue
            cb = next(self._callback_ids)
            self._glimpses.asked(gid, cb)
            self._stats["glimpses_sent"] += 1
            out.append(Send(stream, Callback(CallbackKind.GLIMPSE, cb, lock)))
        if self._glimpses.complete(gid):
            out.append(GlimpseDone(gid))
        return gid, out

    def answer(self, callback_id: int, lvb: Lvb | None) -> list[Effect]:
        """A client answered a callback: glimpse LVBs are gathered; other answers need nothing."""
        gid = self._glimpses.answer(callback_id, lvb)
        return [GlimpseDone(gid)] if gid is not None else []

    def end_glimpse(self, gid: int, base: Lvb) -> GlimpseResult:
        """Stop collecting glimpse `gid`: `base` merged with the answers, and how many stayed silent."""
        return self._glimpses.close(gid, base)

    # -- listings ----------------------------------------------------------

    def lock(self, cookie: int) -> Lock | None:
        """The lock with this cookie as it stands (granted or waiting), or None."""
        return self._ns.get(cookie)

    def locks(self, client_id: str | None, now: float) -> list[LockInfo]:
        return [LockInfo(st.lock, now - (st.granted_at if st.granted_at is not None else st.enqueued_at),
                         st.blocking_sent_at is not None) for st in self._ns.states(client_id)]

    def exports(self, now: float) -> list[ExportInfo]:
        return [ExportInfo(e.client_id, e.conn_gen, e.peer, e.stream is not None,
                           sum(lk.granted for lk in self._ns.owner_locks(e.client_id)),
                           now - e.connected_at, e.evicted, now - e.last_seen)
                for e in self._exports.all()]

    def statistics(self) -> dict[str, int]:
        return {"exports": len(self._exports), **self._ns.statistics(), **self._stats}

    # -- internals ---------------------------------------------------------

    def _effects(self, events: list[Event], drop_error: LpError | None = None) -> list[Effect]:
        """What the namespace's events mean for the shell."""
        out: list[Effect] = []
        for ev in events:
            if isinstance(ev, Granted):
                out.append(ev)
            elif isinstance(ev, BlockingCallback):
                out.append(ev)
                stream = self._exports.live_stream(ev.holder.owner)
                if stream is not None:
                    out.append(self._blocking(stream, ev.holder, ev.conflicting))
            elif isinstance(ev, Dropped) and not ev.lock.granted:
                out.append(Failed(ev.lock.cookie, drop_error or LpError(errno.ENOTCONN, "lock dropped")))
        return out

    def _blocking(self, stream: int, holder: Lock, conflicting: Lock) -> Send:
        self._stats["callbacks_sent"] += 1
        return Send(stream, Callback(CallbackKind.BLOCKING, next(self._callback_ids), holder, conflicting))


def _dropped(events: list[Event]) -> int:
    return sum(isinstance(e, Dropped) for e in events)
