"""The lock server: one per MDS and per OSS, the thread-safe shell around a core.LockCore.

The core holds every rule and every piece of state (locks, exports, callback
timers, glimpses); this module does what the core may not: it reads the
clock, blocks callers until their lock is granted or their glimpse answered
(each wait with a deadline), queues messages onto callback streams, runs the
timer thread that feeds the time into the core's callback timers, logs, and
calls the owning server's hooks.

Thread-safe: grpcio's server threads and the server's own code call it at
once; one mutex guards the core and the shell's waiters and streams, and is
never held while waiting, while calling `lvb_source` or `on_evict`, or while
doing I/O (callbacks are queued onto each export's CallbackStream and written
by that stream's own RPC thread, see service.LdlmService).

This module never imports the servers that use it, nor the gRPC service in
front of it, and never blocks a caller forever: every wait has a deadline.
"""

from __future__ import annotations

import errno
import logging
import queue
import secrets
import threading
import time
from typing import Callable, Iterable

from lustrepy.common.errors import LpError
from lustrepy.common.records import Lvb
from lustrepy.ldlm.core import Callback, CloseStream, Effect, Evicted, Failed, GlimpseDone, LockCore, LockInfo, Send
from lustrepy.ldlm.exports import ExportInfo
from lustrepy.ldlm.extent import Extent
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import BlockingCallback, Granted, Lock, ResId

log = logging.getLogger(__name__)


class CallbackStream:
    """The server end of one client's callback stream: a queue its RPC thread drains."""

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self._q: queue.SimpleQueue[Callback | None] = queue.SimpleQueue()
        self.closed = False

    def send(self, msg: Callback) -> None:
        if not self.closed:
            self._q.put(msg)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._q.put(None)

    def get(self) -> Callback | None:
        """The next message to write, or None once the stream is closed (blocks)."""
        return self._q.get()


class _Waiter:
    """One blocked enqueue: set once its lock is granted or has failed."""

    __slots__ = ("done", "lock", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.lock: Lock | None = None
        self.error: LpError | None = None


class LockServer:
    """The lock server of one target (an MDT or an OST)."""

    def __init__(self, name: str, *, callback_timeout: float = 10.0,
                 lvb_source: Callable[[ResId], Lvb] | None = None,
                 on_evict: Callable[[str], None] | None = None,
                 on_blocking: Callable[[Lock, Lock], None] | None = None) -> None:
        self.name = name
        # Random first cookie and conn_gen: handles from before a restart never match new ones.
        self._core = LockCore(name, callback_timeout=callback_timeout, first_cookie=(secrets.randbits(32) << 24) | 1,
                              first_conn_gen=(secrets.randbits(31) << 20) | 1)
        self._lvb_source = lvb_source
        self._on_evict = on_evict           # called with the client id, outside the mutex
        self.on_blocking = on_blocking      # (holder, conflicting) per blocking callback, under the mutex
        self._evicted_pending: list[str] = []
        self._mu = threading.Lock()
        self._waiters: dict[int, _Waiter] = {}              # by cookie
        self._glimpse_waits: dict[int, threading.Event] = {}    # by glimpse id
        self._streams: dict[int, CallbackStream] = {}       # by stream id
        self._stopping = threading.Event()
        self._timer: threading.Thread | None = None

    @property
    def callback_timeout(self) -> float:
        """Seconds a holder has to cancel after its blocking callback (set at run time by set-param)."""
        return self._core.callback_timeout

    @callback_timeout.setter
    def callback_timeout(self, value: float) -> None:
        self._core.callback_timeout = value

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
            self._apply(self._core.stop())

    # -- exports -----------------------------------------------------------

    def connect(self, client_id: str, peer: str = "") -> int:
        """A new export for client_id; a previous one is replaced and its locks dropped."""
        with self._mu:
            conn, effects = self._core.connect(client_id, peer, time.monotonic())
            self._apply(effects)
        if conn.reconnect:
            log.info("%s: client %s reconnected from %s (gen %#x, %d locks dropped)", self.name, client_id,
                     peer or "?", conn.conn_gen, conn.dropped)
        else:
            log.info("%s: client %s connected from %s (gen %#x)", self.name, client_id, peer or "?", conn.conn_gen)
        return conn.conn_gen

    def check(self, client_id: str, conn_gen: int) -> None:
        """Raise LpError(ENOTCONN) unless (client_id, conn_gen) is the current, live export."""
        with self._mu:
            self._core.check(client_id, conn_gen, time.monotonic())

    def disconnect(self, client_id: str) -> None:
        """The client leaves: drop its locks and its export."""
        with self._mu:
            known, effects = self._core.disconnect(client_id, time.monotonic())
            self._apply(effects)
        if known:
            log.info("%s: client %s disconnected", self.name, client_id)

    def evict(self, client_id: str, reason: str) -> None:
        """Drop the client's locks and refuse its requests until it connects again."""
        with self._mu:
            self._apply(self._core.evict(client_id, reason, time.monotonic()))
        self._run_evict_hooks()

    # -- locks -------------------------------------------------------------

    def enqueue(self, owner: str, res: ResId, mode: LockMode, *, ibits: int = 0,
                extent: tuple[int, int] | Extent | None = None, flags: int = 0, timeout: float | None = None,
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
        wait_s = 2 * self.callback_timeout if timeout is None else timeout
        with self._mu:
            lock, effects = self._core.enqueue(owner, res, mode, ibits=ibits, extent=extent, flags=flags,
                                               local=local, on_behalf=on_behalf, now=time.monotonic())
            waiter = None
            if not lock.granted:
                waiter = self._waiters[lock.cookie] = _Waiter()
            self._apply(effects)
        if waiter is None:
            log.debug("%s: granted %s", self.name, lock)
            return lock
        log.debug("%s: waiting %s", self.name, lock)
        if not waiter.done.wait(max(0.0, wait_s)):
            with self._mu:
                self._apply(self._core.give_up(lock.cookie, wait_s, time.monotonic()))
        if waiter.error is not None:
            raise waiter.error
        if waiter.lock is None:     # defensive: the core ends every wait with Granted or Failed
            raise LpError(errno.ETIMEDOUT, f"lock on {res} not granted within {wait_s:.1f}s")
        log.debug("%s: granted %s after waiting", self.name, waiter.lock)
        return waiter.lock

    def cancel(self, owner: str, cookies: Iterable[int]) -> None:
        """Release locks; cookies that are unknown or belong to someone else are ignored."""
        with self._mu:
            self._apply(self._core.cancel(owner, cookies, time.monotonic()))

    def glimpse_lvb(self, res: ResId, timeout: float) -> Lvb:
        """The object's newest LVB: lvb_source merged with what its PW holders report.

        Holders are asked over CB_GLIMPSE without losing their locks; those that
        do not answer within `timeout` are skipped, not evicted.
        """
        lvb = self._lvb_source(res) if self._lvb_source is not None else Lvb()
        done = threading.Event()
        with self._mu:
            gid, effects = self._core.glimpse(res)
            self._glimpse_waits[gid] = done
            self._apply(effects)
        answered = done.wait(max(0.0, timeout))
        with self._mu:
            del self._glimpse_waits[gid]
            result = self._core.end_glimpse(gid, lvb)
        if not answered:
            log.debug("%s: glimpse of %s: %d holder(s) did not answer in time", self.name, res, result.silent)
        return result.lvb

    def glimpse_if_conflicting(self, owner: str, res: ResId, mode: LockMode, *, ibits: int = 0,
                               extent: tuple[int, int] | None = None, timeout: float | None = None) -> Lvb | None:
        """For a GLIMPSE enqueue: the glimpsed LVB if another owner's PW/EX lock conflicts, else None."""
        with self._mu:
            conflicts = self._core.writer_conflicts(owner, res, mode, ibits=ibits, extent=extent)
        if not conflicts:
            return None
        return self.glimpse_lvb(res, self.callback_timeout if timeout is None else timeout)

    def lvb(self, res: ResId) -> Lvb | None:
        """What lvb_source says of res (None when there is no source)."""
        return self._lvb_source(res) if self._lvb_source is not None else None

    # -- listings ----------------------------------------------------------

    def lock(self, cookie: int) -> Lock | None:
        """The lock with this cookie as it stands (granted or waiting), or None."""
        with self._mu:
            return self._core.lock(cookie)

    def locks(self, client_id: str | None = None) -> list[LockInfo]:
        with self._mu:
            return self._core.locks(client_id, time.monotonic())

    def exports(self) -> list[ExportInfo]:
        with self._mu:
            return self._core.exports(time.monotonic())

    def statistics(self) -> dict[str, int | str]:
        with self._mu:
            return {"name": self.name, **self._core.statistics()}

    # -- the callback stream (used by service.LdlmService) -----------------

    def bind_stream(self, client_id: str, conn_gen: int) -> CallbackStream:
        """Attach a new callback stream to the current export; callbacks still owed are resent."""
        with self._mu:
            stream_id, effects = self._core.bind_stream(client_id, conn_gen)
            stream = self._streams[stream_id] = CallbackStream(stream_id)
            self._apply(effects)
        log.debug("%s: callback stream of %s bound", self.name, client_id)
        return stream

    def unbind_stream(self, client_id: str, stream: CallbackStream) -> None:
        with self._mu:
            stream.close()
            self._streams.pop(stream.id, None)
            self._core.unbind_stream(client_id, stream.id)

    def on_answer(self, callback_id: int, lvb: Lvb | None) -> None:
        """A client answered a callback (glimpse LVBs matter; blocking acks need nothing)."""
        with self._mu:
            self._apply(self._core.answer(callback_id, lvb))

    # -- internals ---------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        """Carry out the core's effects: wake waiters, queue callbacks, note evictions. Under the mutex."""
        for ef in effects:
            if isinstance(ef, Send):
                stream = self._streams.get(ef.stream)
                if stream is not None:
                    stream.send(ef.callback)
            elif isinstance(ef, Granted):
                waiter = self._waiters.pop(ef.lock.cookie, None)
                if waiter is not None:
                    waiter.lock = ef.lock
                    waiter.done.set()
            elif isinstance(ef, Failed):
                waiter = self._waiters.pop(ef.cookie, None)
                if waiter is not None:
                    waiter.error = ef.error
                    waiter.done.set()
            elif isinstance(ef, BlockingCallback):
                log.debug("%s: blocking callback for %s", self.name, ef.holder)
                if self.on_blocking is not None:
                    try:
                        self.on_blocking(ef.holder, ef.conflicting)
                    except Exception:
                        log.exception("%s: blocking-callback hook failed", self.name)
            elif isinstance(ef, CloseStream):
                closed = self._streams.pop(ef.stream, None)
                if closed is not None:
                    closed.close()
            elif isinstance(ef, GlimpseDone):
                done = self._glimpse_waits.get(ef.glimpse)
                if done is not None:
                    done.set()
            elif isinstance(ef, Evicted):
                log.warning("%s: evicting client %s: %s (%d locks dropped)", self.name, ef.client_id, ef.reason,
                            ef.dropped)
                self._evicted_pending.append(ef.client_id)

    def _run_evict_hooks(self) -> None:
        with self._mu:
            pending, self._evicted_pending = self._evicted_pending, []
        for client_id in pending:
            if self._on_evict is not None:
                try:
                    self._on_evict(client_id)
                except Exception:  # the owner's clean-up must not stop the lock server
                    log.exception("%s: eviction clean-up for %s failed", self.name, client_id)

    def _timer_loop(self) -> None:
        """Feed the clock into the core's callback timers, then run the eviction hooks."""
        while not self._stopping.wait(max(0.02, min(1.0, self.callback_timeout / 10))):
            try:
                with self._mu:
                    self._apply(self._core.expire(time.monotonic()))
                self._run_evict_hooks()
            except Exception:
                log.exception("%s: lock timer failed", self.name)
