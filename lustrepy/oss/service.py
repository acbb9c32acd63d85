"""The gRPC servicer of the Oss service: wire messages in, Ofd calls, wire messages out.

Every request but Connect is checked against the caller's export (client id
and connection generation) through the OSS's lock server, so an evicted
client is refused (ENOTCONN) until it reconnects. POSIX results travel in
RepHdr.errno; this module never raises a gRPC status for them, and never
touches files itself (that is ofd's job).
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import inspect
import logging
import time
from typing import Any, Callable, Iterable, Iterator, Protocol, TypeVar

import crc32c
import grpc

import lustrepy
from lustrepy.common.errors import LpError
from lustrepy.common.opstats import RpcStats
from lustrepy.oss.capaguard import READ, WRITE, CapaGuard
from lustrepy.oss.replica import Replicas
from lustrepy.oss.csum import BLOCK
from lustrepy.oss.ofd import Ofd
from lustrepy.oss.scrub import Scrubber
from lustrepy.oss.writes import WriteSession
from lustrepy.oss.tgt import Stamp, Tgt
from lustrepy.oss.osd import FANOUT
from lustrepy.common.params import Registry
from lustrepy.rpc.convert import Reply, check_hdr, lvb_to_pb, rep_err, rep_ok, statfs_to_pb
from lustrepy.rpc.lane import Buf, Handler, LaneServer, messages
from lustrepy.rpc.recovery_window import RecoveryWindow
from lustrepy.rpc.statswire import stats_reply
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc
from lustrepy.rpc.v1 import stats_pb2 as spb

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Reply)

LIST_DEFAULT = 4096         # objects a ListObjects page holds unless asked otherwise
LIST_MAX = 65536
BAD_SHOWN = 100             # bad blocks a ScrubStatus reply lists unless asked otherwise


class Exports(Protocol):
    """What the service needs of the lock server's export table."""

    def connect(self, client_id: str, peer: str = "") -> int: ...

    def check(self, client_id: str, conn_gen: int) -> None: ...

    def disconnect(self, client_id: str) -> None: ...

    def exports(self) -> list[Any]: ...


def _answers(reply_cls: Callable[..., R]) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Turn LpError (and any unexpected failure, as EIO) into `reply_cls(hdr=errno)`; account the RPC."""

    def deco(fn: Callable[..., R]) -> Callable[..., R]:
        op = _op_name(fn.__name__)

        @functools.wraps(fn)
        def wrapper(self: OssService, request: Any, context: grpc.ServicerContext) -> R:
            t0 = time.perf_counter()
            try:
                rep = fn(self, request, context)
            except LpError as e:
                log.debug("%s: %s", fn.__name__, e)
                rep = reply_cls(hdr=rep_err(e))
            except Exception:
                log.exception("%s failed", fn.__name__)
                rep = reply_cls(hdr=rep_err(LpError(errno.EIO, f"{fn.__name__}: internal error on the OSS")))
            self.stats.record(op, request.hdr.client_id, int((time.perf_counter() - t0) * 1e6),
                              failed=rep.hdr.errno != 0)
            return rep

        return wrapper

    return deco


def _op_name(method: str) -> str:
    """WriteMany -> write_many: the op names statistics use."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in method).lstrip("_")


class _FirstHdr:
    """A request stream that remembers the client id in its first message's header."""

    __slots__ = ("_it", "client_id")

    def __init__(self, it: Iterator[Any]) -> None:
        self._it = it
        self.client_id = ""

    def __iter__(self) -> _FirstHdr:
        return self

    def __next__(self) -> Any:
        msg = next(self._it)
        if not self.client_id:
            self.client_id = msg.hdr.client_id
        return msg


def _accounted(op: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Account a bulk-data RPC in self.stats: service time, bytes moved (a reply's `written`, or the
    data of a reply stream's chunks) and failure. Wraps unary, stream-in and stream-out handlers."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def stream_out(self: OssService, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                t0 = time.perf_counter()
                nbytes, failed = 0, False
                try:
                    for msg in fn(self, request, context):
                        nbytes += len(msg.data)
                        failed = failed or msg.hdr.errno != 0
                        yield msg
                finally:
                    self.stats.record(op, request.hdr.client_id, int((time.perf_counter() - t0) * 1e6), nbytes,
                                      failed)
            return stream_out

        @functools.wraps(fn)
        def unary(self: OssService, request: Any, context: grpc.ServicerContext) -> Any:
            t0 = time.perf_counter()
            req: Any = request if hasattr(request, "hdr") else _FirstHdr(request)
            rep = fn(self, req, context)
            client_id = request.hdr.client_id if req is request else req.client_id
            self.stats.record(op, client_id, int((time.perf_counter() - t0) * 1e6), rep.written, rep.hdr.errno != 0)
            return rep
        return unary

    return deco


class OssService(oss_pb2_grpc.OssServicer):
    """One per OSS process; handlers run in the gRPC server's thread pool."""

    def __init__(self, ofd: Ofd, exports: Exports, boot_id: int, tgt: Tgt, recovery: RecoveryWindow) -> None:
        self.ofd = ofd
        self.exports = exports
        self.boot_id = boot_id
        self.tgt = tgt                  # transnos and commits
        self.recovery = recovery        # of this start: clients replaying what the last one lost
        self.stats = RpcStats()     # per op and per client: counts, bytes, latency (Stats RPC)
        self.lane: LaneServer | None = None     # the request lane, when served (start_serving)
        self.capas = CapaGuard(ofd.ident.index)     # object capabilities of clients' requests
        # the other MDTs MDT0 lists (server.py sets it once the announcers exist)
        self.other_mdts: Callable[[], Iterable[int]] = lambda: ()

    # -- the request lane: bulk data beside the messages ----------------------------

    def lane_handlers(self) -> dict[str, Handler]:
        """WriteMany and ReadOne with their bytes in the lane's frame data; Punch, Getattr and Sync as they are."""
        out = {"WriteMany": Handler(opb.WriteManyRequest, self._lane_write, bulk=True),
               "ReadOne": Handler(opb.ReadRequest, self._lane_read, bulk=True)}
        for name in OSS_LANE_PLAIN:
            fn = getattr(self, name)
            out[name] = Handler(messages(_OSS, name)[0], functools.partial(_for_peer, fn, messages(_OSS, name)[1]))
        return out

    def _lane_write(self, req: opb.WriteManyRequest, peer: str, data: memoryview,
                    out: Callable[[int], memoryview]) -> tuple[opb.WriteManyReply, bytes]:
        t0 = time.perf_counter()
        total = sum(c.length for c in req.chunks)
        if req.hdr.client_id != peer:
            rep = opb.WriteManyReply(hdr=rep_err(_NOT_YOURS))
        elif total != len(data) or any(c.data for c in req.chunks):
            rep = opb.WriteManyReply(hdr=rep_err(LpError(
                errno.EINVAL, f"the pieces' lengths add up to {total} bytes, the frame carries {len(data)}")))
        else:
            rep = self._write_many(req, zip(req.chunks, _cut(data, [c.length for c in req.chunks]), strict=True),
                                   None)
        self.stats.record("write_many", req.hdr.client_id, int((time.perf_counter() - t0) * 1e6), rep.written,
                          rep.hdr.errno != 0)
        return rep, b""

    def _lane_read(self, req: opb.ReadRequest, peer: str, data: memoryview,
                   out: Callable[[int], memoryview]) -> tuple[opb.ReadChunk, memoryview]:
        t0 = time.perf_counter()
        got = memoryview(b"")
        try:
            if req.hdr.client_id != peer:
                raise _NOT_YOURS
            self._check(req.hdr)
            self.capas.check(req.hdr, None, [req.object_id], READ)
            got, eof = self.ofd.read_into(req.object_id, req.offset, req.length, out)
            rep = opb.ReadChunk(hdr=rep_ok(), offset=req.offset, crc32c=_crc(got), eof=eof)
        except LpError as e:
            rep = opb.ReadChunk(hdr=rep_err(e), offset=req.offset)
        self.stats.record("read", req.hdr.client_id, int((time.perf_counter() - t0) * 1e6), len(got),
                          rep.hdr.errno != 0)
        return rep, got

    def _check(self, hdr: cpb.ReqHdr) -> None:
        check_hdr(hdr)
        if not hdr.client_id:
            raise LpError(errno.ENOTCONN, "request carries no client id; connect first")
        if self.recovery.blocks():
            raise LpError(errno.ENOTCONN, f"{self.ofd.ident.name} is recovering: connect again")
        self.exports.check(hdr.client_id, hdr.conn_gen)

    def _stamped(self, rep: R, client_id: str, oids: Iterable[int]) -> R:
        """A modifying reply: its transno and the last committed one (the client keeps it until then)."""
        st: Stamp = self.tgt.stamp(client_id, oids)
        rep.hdr.transno, rep.hdr.last_committed = st.transno, st.last_committed
        return rep

    # -- connections -----------------------------------------------------------

    def Connect(self, request: cpb.ConnectRequest, context: grpc.ServicerContext) -> cpb.ConnectReply:
        ident = self.ofd.ident
        try:
            if not request.client_id:
                raise LpError(errno.EINVAL, "connect without a client id")
            if request.fsname and request.fsname != ident.fsname:
                raise LpError(errno.ENODEV, f"this OSS serves {ident.fsname!r}, not {request.fsname!r}")
            recovering = self.recovery.blocks()
            if recovering and request.client_id not in self.tgt.expected:
                raise LpError(errno.EINPROGRESS, f"{ident.name} is recovering: try again in a moment")
            gen = self.exports.connect(request.client_id, peer=context.peer() or "")
            if recovering:
                self.recovery.connected(request.client_id, request.replays)
        except LpError as e:
            return cpb.ConnectReply(hdr=rep_err(e), server_uuid=ident.uuid, fsname=ident.fsname)
        except Exception:
            log.exception("Connect failed")
            return cpb.ConnectReply(hdr=rep_err(LpError(errno.EIO, "connect: internal error on the OSS")))
        rep = cpb.ConnectReply(hdr=rep_ok(), conn_gen=gen, server_uuid=ident.uuid, fsname=ident.fsname,
                               boot_id=self.boot_id, server_version=lustrepy.__version__, recovering=recovering)
        rep.hdr.last_committed = self.tgt.committed()
        if self.lane is not None:
            rep.lane_port = self.lane.port
            rep.lane_token = self.lane.issue(request.client_id)
        return rep

    @_answers(cpb.SimpleReply)
    def Disconnect(self, request: cpb.DisconnectRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        try:
            self._check(request.hdr)
        except LpError:
            return cpb.SimpleReply(hdr=rep_ok())    # already gone, or a newer connection: nothing to end
        self.exports.disconnect(request.hdr.client_id)
        return cpb.SimpleReply(hdr=rep_ok())

    # -- objects ------------------------------------------------------------------

    @_answers(opb.PrecreateReply)
    def Precreate(self, request: opb.PrecreateRequest, context: grpc.ServicerContext) -> opb.PrecreateReply:
        self._check(request.hdr)
        if request.mdt_index and request.mdt_index not in {*self.other_mdts(), *self.ofd.last_ids.all()}:
            raise LpError(errno.EINVAL, f"MDT{request.mdt_index:04x} is not an MDT of this file system")
        first, last = self.ofd.precreate(request.count, request.mdt_index)
        return opb.PrecreateReply(hdr=rep_ok(), first_id=first, last_id=last)

    @_accounted("write")
    def Write(self, request_iterator: Iterator[opb.WriteChunk], context: grpc.ServicerContext) -> opb.WriteReply:
        def fn(session: WriteSession) -> opb.WriteReply:
            client_id = ""
            first = cpb.ReqHdr()
            allowed: set[int] = set()
            for chunk in request_iterator:
                if not client_id:
                    self._check(chunk.hdr)
                    client_id, first = chunk.hdr.client_id, chunk.hdr
                if chunk.object_id not in allowed:
                    self.capas.check(first, context, [chunk.object_id], WRITE)
                    allowed.add(chunk.object_id)
                session.write(chunk.object_id, chunk.offset, chunk.data, chunk.crc32c, chunk.sync)
            if not client_id:
                raise LpError(errno.EINVAL, "empty write stream")
            written, lvb = session.finish()
            return self._stamped(opb.WriteReply(hdr=rep_ok(), written=written, lvb=lvb_to_pb(lvb)),
                                 client_id, session.objects())
        return self._in_session("Write", opb.WriteReply, fn)

    @_accounted("write_many")
    def WriteMany(self, request: opb.WriteManyRequest, context: grpc.ServicerContext) -> opb.WriteManyReply:
        return self._write_many(request, ((c, c.data) for c in request.chunks), context)

    def _write_many(self, request: opb.WriteManyRequest, pieces: Iterable[tuple[opb.WriteChunk, Buf]],
                    context: grpc.ServicerContext | None) -> opb.WriteManyReply:
        def fn(session: WriteSession) -> opb.WriteManyReply:
            self._check(request.hdr)
            if not request.chunks:
                raise LpError(errno.EINVAL, "empty write")
            self.capas.check(request.hdr, context, [c.object_id for c in request.chunks], WRITE)
            session.prepare([c.object_id for c in request.chunks if c.object_id > 0])
            for chunk, data in pieces:
                session.write(chunk.object_id, chunk.offset, data, chunk.crc32c, chunk.sync)
            written, _ = session.finish()
            return self._stamped(opb.WriteManyReply(hdr=rep_ok(), written=written, lvbs=[
                opb.ObjLvb(object_id=oid, lvb=lvb_to_pb(lvb)) for oid, lvb in session.lvbs().items()]),
                request.hdr.client_id, session.objects())
        return self._in_session("WriteMany", opb.WriteManyReply, fn)

    def _in_session(self, name: str, reply: Callable[..., R], fn: Callable[[WriteSession], R]) -> R:
        """Run a write RPC's body in a write session; an error replies with the bytes written before it."""
        session = self.ofd.write_session()
        try:
            return fn(session)
        except LpError as e:
            log.debug("%s: %s", name, e)
            return reply(hdr=rep_err(e), written=session.written)
        except Exception:
            log.exception("%s failed", name)
            return reply(hdr=rep_err(LpError(errno.EIO, "write: internal error on the OSS")), written=session.written)
        finally:
            session.close()

    @_accounted("read")
    def Read(self, request: opb.ReadRequest, context: grpc.ServicerContext) -> Iterator[opb.ReadChunk]:
        pieces = None
        try:
            self._check(request.hdr)
            self.capas.check(request.hdr, context, [request.object_id], READ)
            pieces = self.ofd.read(request.object_id, request.offset, request.length, request.chunk_size)
            for p in pieces:
                yield opb.ReadChunk(hdr=rep_ok(), offset=p.offset, data=p.data,
                                    crc32c=_crc(p.data), eof=p.eof)
        except LpError as e:
            log.debug("Read: %s", e)
            yield opb.ReadChunk(hdr=rep_err(e), offset=request.offset)
        except Exception:
            log.exception("Read failed")
            yield opb.ReadChunk(hdr=rep_err(LpError(errno.EIO, "read: internal error on the OSS")),
                                offset=request.offset)
        finally:
            if pieces is not None:
                pieces.close()

    @_answers(opb.ReadChunk)
    def ReadOne(self, request: opb.ReadRequest, context: grpc.ServicerContext) -> opb.ReadChunk:
        self._check(request.hdr)
        self.capas.check(request.hdr, context, [request.object_id], READ)
        data, eof = self.ofd.read_into(request.object_id, request.offset, request.length, _fresh)
        return opb.ReadChunk(hdr=rep_ok(), offset=request.offset, data=data.tobytes(), crc32c=_crc(data), eof=eof)

    @_answers(opb.ObjAttrReply)
    def Punch(self, request: opb.PunchRequest, context: grpc.ServicerContext) -> opb.ObjAttrReply:
        self._check(request.hdr)
        self.capas.check(request.hdr, context, [request.object_id], WRITE)
        lvb = self.ofd.punch(request.object_id, request.size)
        return self._stamped(opb.ObjAttrReply(hdr=rep_ok(), lvb=lvb_to_pb(lvb)), request.hdr.client_id,
                             [request.object_id])

    @_answers(opb.ObjAttrReply)
    def Getattr(self, request: opb.ObjRequest, context: grpc.ServicerContext) -> opb.ObjAttrReply:
        self._check(request.hdr)
        self.capas.check(request.hdr, context, [request.object_id], READ)
        return opb.ObjAttrReply(hdr=rep_ok(), lvb=lvb_to_pb(self.ofd.getattr(request.object_id)))

    @_answers(opb.DestroyReply)
    def Destroy(self, request: opb.DestroyRequest, context: grpc.ServicerContext) -> opb.DestroyReply:
        self._check(request.hdr)
        n = self.ofd.destroy(list(request.object_ids))
        log.debug("destroyed %d of %d objects", n, len(request.object_ids))
        return opb.DestroyReply(hdr=rep_ok(), destroyed=n)

    @_answers(opb.OssStatfsReply)
    def Statfs(self, request: opb.OssStatfsRequest, context: grpc.ServicerContext) -> opb.OssStatfsReply:
        if request.hdr.client_id:       # a client's; without one, an admin's status view (also while recovering)
            self._check(request.hdr)
        ident = self.ofd.ident
        return opb.OssStatfsReply(hdr=rep_ok(), statfs=statfs_to_pb(self.ofd.statfs()), index=ident.index,
                                  uuid=ident.uuid, objects=self.ofd.object_count(),
                                  recovery=self.recovery.state_pb(), last_committed=self.tgt.committed())

    @_answers(cpb.SimpleReply)
    def Sync(self, request: opb.ObjRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        """Make an object durable (0: every change answered so far); the reply's last_committed
        then covers everything this client wrote before."""
        self._check(request.hdr)
        if request.object_id:
            self.capas.check(request.hdr, context, [request.object_id], READ)
            self.ofd.sync(request.object_id)
        rep = cpb.SimpleReply(hdr=rep_ok())
        rep.hdr.last_committed = self.tgt.commit()
        return rep

    # -- recovery ------------------------------------------------------------------

    @_answers(mpb.ReplayReply)
    def Replay(self, request: mpb.ReplayRequest, context: grpc.ServicerContext) -> mpb.ReplayReply:
        """Writes a client kept, sent after a restart; `last` waits a while for recovery's end."""
        cid = request.hdr.client_id
        if not self.recovery.add(cid, request.items, request.last) and request.items:
            raise LpError(errno.ESTALE, "recovery is over or does not wait for this client: replays refused")
        done, failed = self.recovery.outcome(cid, 5.0) if request.last else (False, [])
        rep = mpb.ReplayReply(hdr=rep_ok(), done=done, failed=failed)
        rep.hdr.last_committed = self.tgt.committed()
        return rep

    @_answers(mpb.BarrierReply)
    def ReplayBarrier(self, request: mpb.BarrierRequest, context: grpc.ServicerContext) -> mpb.BarrierReply:
        """For admins (tests of recovery): nothing written after now survives the next start."""
        transno = self.tgt.set_barrier()
        try:
            self.ofd.barrier.set()
        except OSError as e:
            raise LpError(e.errno or errno.EIO, f"cannot set the barrier: {e.strerror or e}") from None
        log.warning("replay barrier at transno %d: nothing after it is made durable", transno)
        return mpb.BarrierReply(hdr=rep_ok(), transno=transno)

    # -- lfsck (lfsctl lfsck): for admins, no export needed ------------------------

    @_answers(opb.ObjListReply)
    def ListObjects(self, request: opb.ObjListRequest, context: grpc.ServicerContext) -> opb.ObjListReply:
        self._same_ost(request.index)
        limit = request.max or LIST_DEFAULT
        if limit > LIST_MAX:
            raise LpError(errno.EINVAL, f"max {limit} exceeds {LIST_MAX} objects a page")
        got, cursor = self.ofd.list_objects(request.cursor, limit)
        return opb.ObjListReply(hdr=rep_ok(), next_cursor=cursor, eof=cursor >= FANOUT, last_id=self.ofd.last_id,
                                last_ids=self.ofd.last_ids.all(),
                                objects=[opb.ObjInfo(object_id=oid, size=st.size, blocks=st.blocks,
                                                     mtime_ns=st.mtime_ns) for oid, st in got])

    @_answers(opb.RecreateReply)
    def Recreate(self, request: opb.RecreateRequest, context: grpc.ServicerContext) -> opb.RecreateReply:
        self._same_ost(request.index)
        if len(request.object_ids) > LIST_MAX:
            raise LpError(errno.EINVAL, f"{len(request.object_ids)} objects exceed {LIST_MAX} a request")
        return opb.RecreateReply(hdr=rep_ok(), created=self.ofd.recreate(list(request.object_ids)))

    # -- mirrors: copies between OSSes (lustrepy.oss.replica) ------------------------

    replicas: Replicas | None = None       # set by start_serving

    @_answers(opb.PushReply)
    def Push(self, request: opb.PushRequest, context: grpc.ServicerContext) -> opb.PushReply:
        copied, size = self._replicas().push(request)
        return opb.PushReply(hdr=rep_ok(), copied=copied, size=size)

    @_answers(cpb.SimpleReply)
    def ReplicaWrite(self, request: opb.ReplicaWriteRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        self._replicas().write(request)
        return cpb.SimpleReply(hdr=rep_ok())

    @_answers(opb.ChecksumReply)
    def Checksum(self, request: opb.ChecksumRequest, context: grpc.ServicerContext) -> opb.ChecksumReply:
        size, crcs = self._replicas().checksums(request.object_id, request.block)
        return opb.ChecksumReply(hdr=rep_ok(), size=size, crcs=crcs)

    def _replicas(self) -> Replicas:
        """The copier, once recovery is over: a copy made before the clients replayed what the restart
        lost would read (or be overwritten by) bytes older than the ones they were answered for."""
        if self.replicas is None:
            raise LpError(errno.ENOTSUP, "this OSS copies no objects")
        if self.recovery.blocks():
            raise LpError(errno.EINPROGRESS, f"{self.ofd.ident.name} is recovering: copies wait for the replays")
        return self.replicas

    @_answers(opb.ScrubStatusReply)
    def ScrubStatus(self, request: opb.ScrubStatusRequest, context: grpc.ServicerContext) -> opb.ScrubStatusReply:
        """For admins: checksums at rest and the background scrub of this OST."""
        self._same_ost(request.index)
        if self.scrub is None:
            raise LpError(errno.ENOSYS, "this OSS runs no scrub")
        st = self.scrub.status()
        shown = request.max_bad or BAD_SHOWN
        return opb.ScrubStatusReply(
            hdr=rep_ok(), state=st.state, rate_mib=st.rate_mib, interval=st.interval, objects=st.objects,
            bytes=st.bytes, passes=st.passes, pass_start=st.pass_start, last_pass_end=st.last_pass_end,
            mismatches=st.mismatches, found_by_scrub=st.found_by_scrub, bad_count=len(st.bad),
            bad=[opb.BadBlock(object_id=o, block=b) for o, b in st.bad[:shown]], block_size=BLOCK,
            checksums=st.enabled, read_failures=self.ofd.integrity.read_failures)

    def _same_ost(self, index: int) -> None:
        if index != self.ofd.ident.index:
            raise LpError(errno.ENODEV, f"this OSS serves {self.ofd.ident.name}, not OST index {index}")

    # -- tunables (lfsctl get-param / set-param) ---------------------------------

    params: Registry | None = None       # the server's tunables, set by the daemon
    scrub: Scrubber | None = None        # the background scrub, set by start_serving

    @_answers(mpb.ParamReply)
    def GetParam(self, request: mpb.ParamGetRequest, context: grpc.ServicerContext) -> mpb.ParamReply:
        return self._params_reply(self._registry().get(list(request.patterns)))

    @_answers(mpb.ParamReply)
    def SetParam(self, request: mpb.ParamSetRequest, context: grpc.ServicerContext) -> mpb.ParamReply:
        return self._params_reply(self._registry().set(
            [(s.name, None if s.reset else s.value) for s in request.settings]))

    def _registry(self) -> Any:
        """For admins: no export needed."""
        if self.params is None:
            raise LpError(errno.ENOSYS, "this OSS serves no tunables")
        return self.params

    @staticmethod
    def _params_reply(values: list[Any]) -> mpb.ParamReply:
        return mpb.ParamReply(hdr=rep_ok(), params=[mpb.Param(**dataclasses.asdict(v)) for v in values])

    # -- statistics (lfsctl stats) -------------------------------------------------

    def Stats(self, request: spb.StatsRequest, context: grpc.ServicerContext) -> spb.StatsReply:
        """For admins: no export needed. Per op and per client counts, bytes and latency of this OST."""
        try:
            connected = sum(not e.evicted for e in self.exports.exports())
            return stats_reply(self.ofd.ident.name, self.stats.snapshot(), connected)
        except Exception:
            log.exception("Stats failed")
            return spb.StatsReply(hdr=rep_err(LpError(errno.EIO, "stats: internal error on the OSS")))


def _crc(data: Buf) -> int:
    return int(crc32c.crc32c(data))


_OSS = opb.DESCRIPTOR.services_by_name["Oss"]
OSS_LANE_PLAIN = ("Punch", "Getattr", "Sync")       # lane methods without data
_NOT_YOURS = LpError(errno.EPERM, "a lane carries its own client's requests only")


def _for_peer(fn: Callable[[Any, Any], Any], reply_cls: Any, req: Any, peer: str) -> Any:
    if req.hdr.client_id != peer:
        return reply_cls(hdr=rep_err(_NOT_YOURS))
    return fn(req, None)


def _fresh(n: int) -> memoryview:
    return memoryview(bytearray(n))


def _cut(data: memoryview, lengths: list[int]) -> Iterator[memoryview]:
    pos = 0
    for n in lengths:
        yield data[pos:pos + n]
        pos += n
