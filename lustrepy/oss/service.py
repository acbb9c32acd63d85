"""The gRPC servicer of the Oss service: wire messages in, Ofd calls, wire messages out.

Every request but Connect is checked against the caller's export (client id
and connection generation) through the OSS's lock server, so an evicted
client is refused (ENOTCONN) until it reconnects. POSIX results travel in
RepHdr.errno; this module never raises a gRPC status for them, and never
touches files itself (that is ofd's job).
"""

from __future__ import annotations

import errno
import functools
import logging
from typing import Any, Callable, Iterator, Protocol, TypeVar

import crc32c
import grpc

import lustrepy
from lustrepy.common.errors import LpError
from lustrepy.oss.ofd import Ofd
from lustrepy.rpc.convert import lvb_to_pb, rep_err, rep_ok, statfs_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc

log = logging.getLogger(__name__)

R = TypeVar("R")


class Exports(Protocol):
    """What the service needs of the lock server's export table."""

    def connect(self, client_id: str, peer: str = "") -> int: ...

    def check(self, client_id: str, conn_gen: int) -> None: ...

    def disconnect(self, client_id: str) -> None: ...


def _answers(reply_cls: Callable[..., R]) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Turn LpError (and any unexpected failure, as EIO) into `reply_cls(hdr=errno)`."""

    def deco(fn: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(fn)
        def wrapper(self: OssService, request: Any, context: grpc.ServicerContext) -> R:
            try:
                return fn(self, request, context)
            except LpError as e:
                log.debug("%s: %s", fn.__name__, e)
                return reply_cls(hdr=rep_err(e))
            except Exception:
                log.exception("%s failed", fn.__name__)
                return reply_cls(hdr=rep_err(LpError(errno.EIO, f"{fn.__name__}: internal error on the OSS")))

        return wrapper

    return deco


class OssService(oss_pb2_grpc.OssServicer):
    """One per OSS process; handlers run in the gRPC server's thread pool."""

    def __init__(self, ofd: Ofd, exports: Exports, boot_id: int) -> None:
        self.ofd = ofd
        self.exports = exports
        self.boot_id = boot_id

    def _check(self, hdr: cpb.ReqHdr) -> None:
        if not hdr.client_id:
            raise LpError(errno.ENOTCONN, "request carries no client id; connect first")
        self.exports.check(hdr.client_id, hdr.conn_gen)

    # -- connections -----------------------------------------------------------

    def Connect(self, request: cpb.ConnectRequest, context: grpc.ServicerContext) -> cpb.ConnectReply:
        ident = self.ofd.ident
        try:
            if not request.client_id:
                raise LpError(errno.EINVAL, "connect without a client id")
            if request.fsname and request.fsname != ident.fsname:
                raise LpError(errno.ENODEV, f"this OSS serves {ident.fsname!r}, not {request.fsname!r}")
            gen = self.exports.connect(request.client_id, peer=context.peer() or "")
        except LpError as e:
            return cpb.ConnectReply(hdr=rep_err(e), server_uuid=ident.uuid, fsname=ident.fsname)
        except Exception:
            log.exception("Connect failed")
            return cpb.ConnectReply(hdr=rep_err(LpError(errno.EIO, "connect: internal error on the OSS")))
        return cpb.ConnectReply(hdr=rep_ok(), conn_gen=gen, server_uuid=ident.uuid, fsname=ident.fsname,
                                boot_id=self.boot_id, server_version=lustrepy.__version__)

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
        first, last = self.ofd.precreate(request.count)
        return opb.PrecreateReply(hdr=rep_ok(), first_id=first, last_id=last)

    def Write(self, request_iterator: Iterator[opb.WriteChunk], context: grpc.ServicerContext) -> opb.WriteReply:
        session = self.ofd.write_session()
        try:
            first = True
            for chunk in request_iterator:
                if first:
                    self._check(chunk.hdr)
                    first = False
                session.write(chunk.object_id, chunk.offset, chunk.data, chunk.crc32c, chunk.sync)
            if first:
                raise LpError(errno.EINVAL, "empty write stream")
            written, lvb = session.finish()
            return opb.WriteReply(hdr=rep_ok(), written=written, lvb=lvb_to_pb(lvb))
        except LpError as e:
            log.debug("Write: %s", e)
            return opb.WriteReply(hdr=rep_err(e), written=session.written)
        except Exception:
            log.exception("Write failed")
            return opb.WriteReply(hdr=rep_err(LpError(errno.EIO, "write: internal error on the OSS")),
                                  written=session.written)
        finally:
            session.close()

    def Read(self, request: opb.ReadRequest, context: grpc.ServicerContext) -> Iterator[opb.ReadChunk]:
        pieces = None
        try:
            self._check(request.hdr)
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

    @_answers(opb.ObjAttrReply)
    def Punch(self, request: opb.PunchRequest, context: grpc.ServicerContext) -> opb.ObjAttrReply:
        self._check(request.hdr)
        lvb = self.ofd.punch(request.object_id, request.size)
        return opb.ObjAttrReply(hdr=rep_ok(), lvb=lvb_to_pb(lvb))

    @_answers(opb.ObjAttrReply)
    def Getattr(self, request: opb.ObjRequest, context: grpc.ServicerContext) -> opb.ObjAttrReply:
        self._check(request.hdr)
        return opb.ObjAttrReply(hdr=rep_ok(), lvb=lvb_to_pb(self.ofd.getattr(request.object_id)))

    @_answers(opb.DestroyReply)
    def Destroy(self, request: opb.DestroyRequest, context: grpc.ServicerContext) -> opb.DestroyReply:
        self._check(request.hdr)
        n = self.ofd.destroy(list(request.object_ids))
        log.debug("destroyed %d of %d objects", n, len(request.object_ids))
        return opb.DestroyReply(hdr=rep_ok(), destroyed=n)

    @_answers(opb.OssStatfsReply)
    def Statfs(self, request: opb.OssStatfsRequest, context: grpc.ServicerContext) -> opb.OssStatfsReply:
        self._check(request.hdr)
        ident = self.ofd.ident
        return opb.OssStatfsReply(hdr=rep_ok(), statfs=statfs_to_pb(self.ofd.statfs()), index=ident.index,
                                  uuid=ident.uuid, objects=self.ofd.object_count())

    @_answers(cpb.SimpleReply)
    def Sync(self, request: opb.ObjRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        self._check(request.hdr)
        self.ofd.sync(request.object_id)
        return cpb.SimpleReply(hdr=rep_ok())

    @_answers(opb.ListObjectsReply)
    def ListObjects(self, request: opb.ListObjectsRequest, context: grpc.ServicerContext) -> opb.ListObjectsReply:
        self._check(request.hdr)
        page = self.ofd.list_objects(request.after, request.max)
        return opb.ListObjectsReply(hdr=rep_ok(), object_ids=page.ids, eof=page.eof, last_id=page.last_id)


def _crc(data: bytes) -> int:
    return int(crc32c.crc32c(data))
