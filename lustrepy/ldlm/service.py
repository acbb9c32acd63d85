"""The Ldlm gRPC service (lustrepy/rpc/v1/ldlm.proto) in front of a lockd.LockServer.

The servers build it around their lock server (`LdlmService(lockd)`); lockd
never imports this module. Only translates between messages and LockServer
calls; holds no lock state of its own. POSIX results travel in RepHdr.errno;
this module never aborts an RPC with a gRPC status to report one.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from typing import Iterator

import grpc

from lustrepy.common.errors import LpError
from lustrepy.common.opstats import RpcStats
from lustrepy.ldlm import flags as fl
from lustrepy.ldlm.lockd import CallbackStream, LockServer
from lustrepy.ldlm.wire import answer_lvb, callback_to_pb, lock_to_pb, mode_from_pb, res_from_pb
from lustrepy.rpc.convert import lvb_to_pb, rep_err, rep_ok
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import ldlm_pb2 as lpb
from lustrepy.rpc.v1 import ldlm_pb2_grpc

log = logging.getLogger(__name__)

_MARGIN_S = 0.05     # answer an enqueue this long before the caller's deadline


class LdlmService(ldlm_pb2_grpc.LdlmServicer):
    """The Ldlm service of one lock server; register it with `add_LdlmServicer_to_server`."""

    def __init__(self, server: LockServer, stats: RpcStats | None = None) -> None:
        self.ls = server
        self.stats = stats      # the server's RPC statistics: enqueues, glimpses and cancels count there

    def _count(self, op: str, client_id: str, t0: float, errno_: int) -> None:
        if self.stats is not None:
            self.stats.record(op, client_id, int((time.perf_counter() - t0) * 1e6), failed=errno_ != 0)

    def Callbacks(self, request_iterator: Iterator[lpb.CallbackUp],
                  context: grpc.ServicerContext) -> Iterator[lpb.CallbackDown]:
        try:
            hello = next(request_iterator)
        except (StopIteration, grpc.RpcError):
            return
        try:
            stream = self.ls.bind_stream(hello.client_id, hello.conn_gen)
        except LpError as e:
            log.info("%s: callback stream of %s refused: %s", self.ls.name, hello.client_id, e.message)
            yield lpb.CallbackDown(kind=lpb.CB_EVICTED)
            return
        if not context.add_callback(stream.close):
            stream.close()
        reader = threading.Thread(target=self._read_answers, args=(request_iterator, stream),
                                  name=f"ldlm-cb-{hello.client_id}", daemon=True)
        reader.start()
        try:
            while True:
                msg = stream.get()
                if msg is None:
                    return
                yield callback_to_pb(msg)
        finally:
            self.ls.unbind_stream(hello.client_id, stream)

    def _read_answers(self, request_iterator: Iterator[lpb.CallbackUp], stream: CallbackStream) -> None:
        try:
            for up in request_iterator:
                self.ls.on_answer(up.callback_id, answer_lvb(up))
        except grpc.RpcError:
            pass
        except Exception:
            log.exception("%s: bad callback answer", self.ls.name)
        finally:
            stream.close()

    def Enqueue(self, request: lpb.LockEnqueueRequest, context: grpc.ServicerContext) -> lpb.LockEnqueueReply:
        t0 = time.perf_counter()
        rep = self._enqueue(request, context)
        self._count("ldlm_glimpse" if request.flags & fl.GLIMPSE and not rep.lock.cookie else "ldlm_enqueue",
                    request.hdr.client_id, t0, rep.hdr.errno)
        return rep

    def _enqueue(self, request: lpb.LockEnqueueRequest, context: grpc.ServicerContext) -> lpb.LockEnqueueReply:
        hdr = request.hdr
        owner = hdr.client_id
        try:
            self.ls.check(owner, hdr.conn_gen)
            if hdr.cancel_cookies:
                self.ls.cancel(owner, hdr.cancel_cookies)
            res = res_from_pb(request.res)
            mode = mode_from_pb(request.mode)
            extent = (request.extent.start, request.extent.end) if request.has_extent else None
            if request.flags & fl.GLIMPSE:
                glimpsed = self.ls.glimpse_if_conflicting(owner, res, mode, ibits=request.ibits, extent=extent)
                if glimpsed is not None:
                    return lpb.LockEnqueueReply(hdr=rep_ok(), lock=cpb.LockDesc(cookie=0),
                                                lvb=lvb_to_pb(glimpsed), lvb_valid=True)
            timeout = 2 * self.ls.callback_timeout
            remaining = context.time_remaining()
            if remaining is not None:
                timeout = min(timeout, remaining - _MARGIN_S)
            lock = self.ls.enqueue(owner, res, mode, ibits=request.ibits, extent=extent,
                                   flags=request.flags & ~fl.GLIMPSE, timeout=timeout)
            if not context.is_active():
                # Nobody will read the reply: do not leave the lock granted behind.
                self.ls.cancel(owner, [lock.cookie])
                return lpb.LockEnqueueReply(hdr=rep_err(LpError(errno.ECANCELED, "caller went away")))
            try:
                lvb = self.ls.lvb(res)
            except LpError:
                self.ls.cancel(owner, [lock.cookie])
                raise
            reply = lpb.LockEnqueueReply(hdr=rep_ok(), lock=lock_to_pb(lock))
            if lvb is not None:
                reply.lvb.CopyFrom(lvb_to_pb(lvb))
                reply.lvb_valid = True
            return reply
        except LpError as e:
            return lpb.LockEnqueueReply(hdr=rep_err(e))

    def Cancel(self, request: lpb.LockCancelRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        # A PW holder's LVB on cancel is not needed: its writes reached the object store first.
        hdr = request.hdr
        t0 = time.perf_counter()
        try:
            self.ls.check(hdr.client_id, hdr.conn_gen)
            self.ls.cancel(hdr.client_id, list(hdr.cancel_cookies) + list(request.cookies))
            rep = cpb.SimpleReply(hdr=rep_ok())
        except LpError as e:
            rep = cpb.SimpleReply(hdr=rep_err(e))
        self._count("ldlm_cancel", hdr.client_id, t0, rep.hdr.errno)
        return rep

    def List(self, request: lpb.LockListRequest, context: grpc.ServicerContext) -> lpb.LockListReply:
        infos = self.ls.locks(request.client_id or None)
        exports = [e for e in self.ls.exports() if not request.client_id or e.client_id == request.client_id]
        stats = self.ls.statistics()
        return lpb.LockListReply(
            hdr=rep_ok(),
            locks=[lpb.LockState(lock=lock_to_pb(i.lock), granted=i.lock.granted, age_s=i.age_s,
                                 blocking_sent=i.blocking_sent, local=i.lock.local, on_behalf=i.lock.on_behalf)
                   for i in infos],
            exports=[lpb.ExportState(client_id=e.client_id, conn_gen=e.conn_gen, callback_stream=e.callback_stream,
                                     granted_locks=e.granted_locks, connected_s=e.connected_s, peer=e.peer,
                                     evicted=e.evicted, idle_s=e.idle_s)
                     for e in exports],
            evictions=int(stats["evictions"]), callbacks_sent=int(stats["callbacks_sent"]), name=self.ls.name)

    def Evict(self, request: lpb.EvictRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        if not any(e.client_id == request.client_id for e in self.ls.exports()):
            return cpb.SimpleReply(hdr=rep_err(LpError(errno.ENOENT, f"no client {request.client_id!r}")))
        self.ls.evict(request.client_id, "evicted by administrator")
        return cpb.SimpleReply(hdr=rep_ok())
