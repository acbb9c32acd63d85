"""The client side of the lock protocol: enqueue, cancel, and callback handling, around
held.HeldLocks (the locks held here, their LRU and early cancels).

Thread-based: one thread keeps the callback stream to one server open, a
small pool runs `on_blocking` / `on_glimpse` / `on_evicted`, and the caller's
threads make RPCs (each with a deadline, through lustrepy.rpc.channel.call).
A trio caller wraps the blocking methods with lustrepy.rpc.bridge.

Contract with the caller:
- `on_blocking(desc)` flushes what the lock covers and drops the caches it
  protects; the lock is cancelled once it returns and no user holds the lock
  (`hold=True` / `release`). It is also called for locks the LRU retires.
- A lock is served by `match` only while it is granted and not being revoked.
- After an eviction every lock is gone; `on_evicted` runs, the caller
  reconnects (its own Connect RPC) and calls `attach(new_conn_gen)`.

This module never runs a server and never waits without a deadline in the
caller's thread.
"""

from __future__ import annotations

import errno
import itertools
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import grpc

from lustrepy.common.errors import LpError, to_wire
from lustrepy.common.records import Lvb
from lustrepy.ldlm.extent import parse_extent
from lustrepy.ldlm.held import Held, HeldLocks
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import Lock, ResId
from lustrepy.ldlm.wire import extent_to_pb, lock_from_pb, mode_to_pb, res_to_pb
from lustrepy.rpc.channel import DEFAULT_TIMEOUT, call
from lustrepy.rpc.convert import check_rep, lvb_from_pb, lvb_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import ldlm_pb2 as lpb
from lustrepy.rpc.v1 import ldlm_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Grant:
    """What an enqueue got: a lock (None when a glimpse answered instead) and the LVB, if any."""

    lock: Lock | None
    lvb: Lvb | None


class LockClient:
    """One client's locks on one server (the MDS or one OSS)."""

    def __init__(self, channel: grpc.Channel, client_id: str, *,
                 on_blocking: Callable[[cpb.LockDesc], None],
                 on_glimpse: Callable[[cpb.LockDesc], Lvb | None] | None = None,
                 on_evicted: Callable[[], None] | None = None,
                 lru_size: int = 256, rpc_timeout: float = 10.0, enqueue_timeout: float = DEFAULT_TIMEOUT,
                 orphan_grace: float = 0.5, workers: int = 4) -> None:
        self.client_id = client_id
        self.rpc_timeout = rpc_timeout
        self.enqueue_timeout = enqueue_timeout
        self.orphan_grace = orphan_grace
        self._stub = ldlm_pb2_grpc.LdlmStub(channel)
        self._on_blocking = on_blocking
        self._on_glimpse = on_glimpse
        self._on_evicted = on_evicted
        self._mu = threading.Lock()
        self._held = HeldLocks(lru_size)    # under _mu
        self._orphans: dict[int, threading.Timer] = {}           # blocking callbacks for cookies not yet known
        self._conn_gen = 0
        self._evicted = False
        self._closed = False
        self._xids = itertools.count(1)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"ldlm-{client_id}")
        self._wake = threading.Event()
        self._bound = threading.Event()
        self._call: Any = None
        self._up_q: queue.SimpleQueue[lpb.CallbackUp | None] | None = None
        self._thread: threading.Thread | None = None
        self._stats = {"enqueues": 0, "matches": 0, "blocking_callbacks": 0, "glimpses": 0, "lru_cancels": 0,
                       "evictions": 0}

    # -- connection ----------------------------------------------------------

    @property
    def conn_gen(self) -> int:
        return self._conn_gen

    @property
    def evicted(self) -> bool:
        return self._evicted

    def attach(self, conn_gen: int) -> None:
        """Use the export `conn_gen` (from the caller's Connect) and (re)open the callback stream.

        A new conn_gen means the server dropped every lock of the old one: they are forgotten here.
        """
        with self._mu:
            if self._closed:
                raise LpError(errno.ESHUTDOWN, "lock client closed")
            if conn_gen != self._conn_gen:
                self._forget_all_locked()
            self._conn_gen = conn_gen
            self._evicted = False
            self._bound.clear()
            old_call = self._call
            if self._thread is None:
                self._thread = threading.Thread(target=self._stream_loop, name=f"ldlm-stream-{self.client_id}",
                                                daemon=True)
                self._thread.start()
        self._wake.set()
        if old_call is not None:
            old_call.cancel()

    def wait_attached(self, timeout: float) -> bool:
        """Wait until the server has bound the callback stream to the current export."""
        return self._bound.wait(timeout)

    def close(self) -> None:
        """Stop the callback stream and the workers; sends no RPC (locks go with the export)."""
        with self._mu:
            if self._closed:
                return
            self._closed = True
            call_, up_q, thread = self._call, self._up_q, self._thread
            for timer in self._orphans.values():
                timer.cancel()
            self._orphans.clear()
        self._wake.set()
        if up_q is not None:
            up_q.put(None)
        if call_ is not None:
            call_.cancel()
        if thread is not None:
            thread.join(timeout=5.0)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- locks ---------------------------------------------------------------

    def enqueue(self, res: ResId, mode: LockMode, ibits: int = 0, extent: tuple[int, int] | None = None,
                flags: int = 0, timeout: float | None = None, hold: bool = False) -> Grant:
        """Ask the server for a lock (Ldlm.Enqueue), waiting at most `timeout` for the grant.

        With hold=True the lock comes back held for the caller (see `release`).
        Raises LpError with the server's errno, or ENOTCONN/ETIMEDOUT/EIO for transport trouble.
        """
        wait_s = self.enqueue_timeout if timeout is None else timeout
        req = lpb.LockEnqueueRequest(res=res_to_pb(res), mode=mode_to_pb(mode), ibits=ibits, flags=flags)
        if extent is not None:
            req.extent.CopyFrom(extent_to_pb(parse_extent(extent)))
            req.has_extent = True
        for _ in range(3):
            early = self.take_early_cancels()
            req.hdr.CopyFrom(self._hdr(early))
            self._count("enqueues")
            try:
                rep = call(self._stub.Enqueue, req, timeout=wait_s)
            except LpError:
                self._requeue_early(early)
                raise
            check_rep(rep.hdr)
            lvb = lvb_from_pb(rep.lvb) if rep.lvb_valid else None
            if rep.lock.cookie == 0:
                return Grant(None, lvb)
            held = self._register(rep.lock, hold)
            if held is not None:
                return Grant(held.lock, lvb)
            log.debug("%s: lock %#x revoked before its grant arrived; asking again", self.client_id,
                      rep.lock.cookie)
        raise LpError(errno.EAGAIN, f"lock on {res} revoked before use, repeatedly")

    def adopt(self, desc: cpb.LockDesc, hold: bool = False) -> bool:
        """Register a lock granted inside another reply (an MDS intent); False if it is already revoked."""
        if desc.cookie == 0:
            return False
        return self._register(desc, hold) is not None

    def match(self, res: ResId, mode: LockMode, ibits: int = 0, extent: tuple[int, int] | None = None,
              hold: bool = False) -> int | None:
        """The cookie of a held lock that covers the request, or None."""
        want = parse_extent(extent) if extent is not None else None
        with self._mu:
            h = self._held.match(res, mode, ibits, want)
            if h is None:
                return None
            if hold:
                h.users += 1
            self._stats["matches"] += 1
            return h.lock.cookie

    def has(self, cookie: int) -> bool:         # held here, being revoked or not
        return self._held.get(cookie) is not None

    def usable(self, cookie: int) -> bool:
        """Is the lock held here and not being revoked? A caller that recorded what a lock
        covers asks this after recording: a callback that came first (its revoking mark is
        set before on_blocking runs) found nothing recorded, so the caller forgets it itself."""
        with self._mu:
            h = self._held.get(cookie)
            return h is not None and not h.revoking

    def hold(self, cookie: int) -> bool:
        """Count one more user of a lock; False if it is gone or being revoked."""
        with self._mu:
            h = self._held.get(cookie)
            if h is None or h.revoking:
                return False
            h.users += 1
            return True

    def release(self, cookie: int) -> None:
        """One user is done; a revoked lock is cancelled when its last user leaves."""
        cancel_now = False
        with self._mu:
            h = self._held.get(cookie)
            if h is None or h.users == 0:
                return
            h.users -= 1
            if h.users == 0 and h.flushed:
                self._held.forget(h)
                cancel_now = True
        if cancel_now:
            self._submit(self._send_cancel, [cookie])

    def cancel(self, cookies: Iterable[int]) -> None:
        """Cancel locks now (Ldlm.Cancel), held or not."""
        out: list[int] = []
        with self._mu:
            for cookie in cookies:
                h = self._held.get(cookie)
                if h is not None:
                    self._held.forget(h)
                    out.append(cookie)
                elif self._held.take_early(cookie):
                    out.append(cookie)
        self._send_cancel(out)

    def drop(self, cookie: int) -> None:
        """Give an unused lock back without an RPC of its own: it leaves with the next request
        (early cancel), or in a batch once enough have gathered."""
        with self._mu:
            h = self._held.get(cookie)
            if h is None or h.users > 0 or h.revoking:
                return
            self._held.forget(h)
            batch = self._held.give_back(cookie)
        if batch:                   # callers may be event-loop threads: the RPC goes to the pool
            self._submit(self._send_cancel, batch)

    def take_early_cancels(self) -> list[int]:
        """Cookies of locks the LRU retired, for the caller to piggyback in ReqHdr.cancel_cookies."""
        with self._mu:
            return self._held.take_all_early()

    def locks(self) -> list[Lock]:
        with self._mu:
            return [h.lock for h in self._held]

    def statistics(self) -> dict[str, int]:
        with self._mu:
            return {"locks": len(self._held), "early_cancels": len(self._held.early), **self._stats}

    # -- internals: lock table -----------------------------------------------

    def _hdr(self, cancel_cookies: list[int] | None = None) -> cpb.ReqHdr:
        return cpb.ReqHdr(client_id=self.client_id, conn_gen=self._conn_gen, xid=next(self._xids),
                          cancel_cookies=cancel_cookies or [])

    def _count(self, name: str) -> None:
        with self._mu:
            self._stats[name] += 1

    def _requeue_early(self, cookies: list[int]) -> None:
        with self._mu:
            self._held.requeue_early(cookies)

    def _register(self, desc: cpb.LockDesc, hold: bool) -> Held | None:
        lock = lock_from_pb(desc)
        revoked_early = False
        with self._mu:
            if self._held.is_gone(lock.cookie):
                return None
            h = self._held.get(lock.cookie)
            if h is not None:
                if hold:
                    h.users += 1
                return h
            h = self._held.add(lock, desc, 1 if hold else 0)
            timer = self._orphans.pop(lock.cookie, None)
            if timer is not None:
                # Its blocking callback overtook the grant: usable by this caller, then revoked.
                timer.cancel()
                h.revoking = revoked_early = True
            victims = self._held.lru_victims()
        if revoked_early:
            self._submit(self._revoke, h)
        for v in victims:
            self._submit(self._retire, v)
        return h

    def _forget_all_locked(self) -> None:
        self._held.forget_all()
        for timer in self._orphans.values():
            timer.cancel()
        self._orphans.clear()

    # -- internals: callbacks ------------------------------------------------

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self._pool.submit(fn, *args)
        except RuntimeError:        # pool shut down: the client is closing
            pass

    def _run_on_blocking(self, desc: cpb.LockDesc) -> None:
        try:
            self._on_blocking(desc)
        except Exception:
            log.exception("%s: blocking callback handler failed for lock %#x", self.client_id, desc.cookie)

    def _blocking(self, desc: cpb.LockDesc, gen: int) -> None:
        """A server asked for a lock back."""
        cookie = desc.cookie
        send_now: bool | None = False
        with self._mu:
            if gen != self._conn_gen or self._closed:
                return
            self._stats["blocking_callbacks"] += 1
            h = self._held.get(cookie)
            if h is None:
                send_now = self._held.asked_back(cookie)
                if send_now is None and cookie not in self._orphans:     # its grant may be on its way
                    timer = threading.Timer(self.orphan_grace, self._orphan_expired, (cookie, gen))
                    timer.daemon = True
                    self._orphans[cookie] = timer
                    timer.start()
            elif h.revoking:
                return
            else:
                h.revoking = True
        if send_now:
            self._send_cancel([cookie])
        elif h is not None:
            self._revoke(h)

    def _revoke(self, h: Held) -> None:
        """Flush through on_blocking, then cancel once no user holds the lock."""
        self._run_on_blocking(h.desc)
        with self._mu:
            if self._held.get(h.lock.cookie) is not h:
                return      # dropped meanwhile (eviction, explicit cancel)
            h.flushed = True
            if h.users > 0:
                return      # release() cancels it
            self._held.forget(h)
        self._send_cancel([h.lock.cookie])

    def _retire(self, h: Held) -> None:
        """The LRU let go of an unused lock: flush it, then queue its cookie as an early cancel."""
        self._run_on_blocking(h.desc)
        with self._mu:
            asked_back = self._held.retired(h.lock.cookie)
            if self._closed or self._evicted or asked_back is None:
                return      # closing, evicted, or a new export: the server forgot the lock
            self._stats["lru_cancels"] += 1
            batch = [h.lock.cookie] if asked_back else self._held.give_back(h.lock.cookie)
        self._send_cancel(batch)

    def _orphan_expired(self, cookie: int, gen: int) -> None:
        with self._mu:
            if self._orphans.pop(cookie, None) is None or gen != self._conn_gen:
                return
            self._held.mark_gone(cookie)
        self._send_cancel([cookie])

    def _glimpse(self, msg: lpb.CallbackDown, up_q: queue.SimpleQueue[lpb.CallbackUp | None]) -> None:
        self._count("glimpses")
        up_q.put(_glimpse_answer(self.client_id, self._on_glimpse, msg))

    def _evicted_by_server(self, gen: int) -> None:
        with self._mu:
            if gen != self._conn_gen or self._evicted or self._closed:
                return
            self._evicted = True
            self._stats["evictions"] += 1
            self._forget_all_locked()
        log.warning("%s: evicted by the lock server; every lock is gone", self.client_id)
        if self._on_evicted is not None:
            self._submit(self._on_evicted)

    def _send_cancel(self, cookies: list[int]) -> None:
        if not cookies or self._conn_gen == 0:
            return
        req = lpb.LockCancelRequest(hdr=self._hdr(), cookies=cookies)
        try:
            rep = call(self._stub.Cancel, req, timeout=self.rpc_timeout)
            check_rep(rep.hdr)
        except LpError as e:
            log.debug("%s: cancel of %d lock(s) failed: %s", self.client_id, len(cookies), e)

    # -- internals: the callback stream ----------------------------------------

    def _stream_loop(self) -> None:
        backoff = 0.1
        while True:
            with self._mu:
                if self._closed:
                    return
                gen, idle = self._conn_gen, self._evicted or self._conn_gen == 0
                self._wake.clear()
            if idle:
                self._wake.wait()
                continue
            up_q: queue.SimpleQueue[lpb.CallbackUp | None] = queue.SimpleQueue()
            up_q.put(lpb.CallbackUp(client_id=self.client_id, conn_gen=gen))
            stream = self._stub.Callbacks(iter(up_q.get, None))
            with self._mu:
                if self._closed or gen != self._conn_gen:
                    stream.cancel()
                    up_q.put(None)
                    continue
                self._call, self._up_q = stream, up_q
            try:
                for down in stream:
                    if down.kind == lpb.CB_NONE:
                        self._bound.set()
                        backoff = 0.1
                    elif down.kind == lpb.CB_BLOCKING:
                        up_q.put(lpb.CallbackUp(callback_id=down.callback_id))
                        self._submit(self._blocking, down.lock, gen)
                    elif down.kind == lpb.CB_GLIMPSE:
                        self._submit(self._glimpse, down, up_q)
                    elif down.kind == lpb.CB_EVICTED:
                        self._evicted_by_server(gen)
            except grpc.RpcError as e:
                log.debug("%s: callback stream ended: %s", self.client_id, e.code())
            finally:
                up_q.put(None)
                with self._mu:
                    if self._call is stream:
                        self._call, self._up_q = None, None
                self._bound.clear()
            with self._mu:
                if self._closed:
                    return
                retry_now = gen != self._conn_gen
            if not retry_now:
                self._wake.wait(backoff)
                backoff = min(backoff * 2, 2.0)



def _glimpse_answer(client_id: str, on_glimpse: Callable[[cpb.LockDesc], Lvb | None] | None,
                    msg: lpb.CallbackDown) -> lpb.CallbackUp:
    """The answer to a glimpse callback: the LVB on_glimpse gives, or its errno."""
    up = lpb.CallbackUp(callback_id=msg.callback_id)
    try:
        lvb = on_glimpse(msg.lock) if on_glimpse is not None else None
        if lvb is not None:
            up.lvb.CopyFrom(lvb_to_pb(lvb))
            up.lvb_valid = True
    except LpError as e:
        up.errno = to_wire(e.errno)
    except Exception:
        log.exception("%s: glimpse handler failed for lock %#x", client_id, msg.lock.cookie)
        up.errno = to_wire(errno.EIO)
    return up
