"""The object storage client: this client's connection to one OSS (one OST).

Connects lazily, keeps the OST's LockClient (extent locks and their
callback stream), and makes the bulk and attribute RPCs: writes and reads,
Punch, Getattr, Sync, and lock enqueues (also glimpses). Every piece of data
carries its crc32c both ways.

Bulk data goes on the OSS's request lane when its Connect reply offers one
(rpc/lane.py): a write is one frame whose pieces follow the message as they
lie in the cache, a read one frame per 16 MiB whose bytes land in one buffer,
neither copied through protobuf. Without a lane, or when the lane refuses (an
unknown token: the OSS restarted) or loses its connection, the same request
goes on gRPC (Write as a client stream, Read as a server stream), whose reply
says whether to connect again.

A reconnect (after ENOTCONN, an eviction, or the OST moving to a new
address) gets a new export: every lock of the old one is gone, `epoch` is
bumped and `on_lost` runs so the caller drops what those locks covered.

Every RPC has a deadline (`rpc_timeout`); transport trouble and POSIX errors
both leave as LpError. This module knows objects, offsets and locks, never
files or layouts, and never retries an operation on its own.
"""

from __future__ import annotations

import errno
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import crc32c
import grpc
from google.protobuf.message import Message

from lustrepy.client import oscreplay
from lustrepy.client.datacache import Buf, Segment, write_messages
from lustrepy.common.errors import BadData, LpError
from lustrepy.common.records import Lvb
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.request import Grant, LockClient
from lustrepy.ldlm.resource import ResId
from lustrepy.rpc.channel import call, make_channel, transport_errno
from lustrepy.rpc.lane import MAX_DATA, LaneClient, LaneLost, LaneRefused
from lustrepy.rpc.convert import check_rep, lvb_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc

log = logging.getLogger(__name__)

R = TypeVar("R")
_OSS = opb.DESCRIPTOR.services_by_name["Oss"]

MSG_MIN = 1 << 20           # on gRPC, smaller runs are joined up to MSG_MAX into one message
MSG_MAX = 4 << 20
LOCK_LRU = 1024             # unused extent locks kept per OST
LOCK_WORKERS = 8            # threads running blocking and glimpse callbacks, per OST
_COUNTERS = ("connects", "write_rpcs", "write_bytes", "read_rpcs", "read_bytes", "enqueues", "glimpsed",
             "punches", "getattrs", "syncs", "errors")


class Osc:
    """One OST as this client sees it. Thread-safe."""

    def __init__(self, index: int, client_id: str, fsname: str, address_of: Callable[[bool], str | None], *,
                 rpc_timeout: float, on_blocking: Callable[[cpb.LockDesc], None],
                 on_glimpse: Callable[[cpb.LockDesc], Lvb | None], on_lost: Callable[[], None],
                 use_lane: bool = True, max_unstable: int = oscreplay.DEFAULT_LIMIT,
                 capas: Callable[[Iterable[int], bool], list[cpb.Capa]] = lambda oids, write: [],
                 drop_capas: Callable[[], None] = lambda: None) -> None:
        self.index = index
        self._capas, self._drop_capas = capas, drop_capas   # object capabilities (client.capas)
        self.client_id = client_id
        self.fsname = fsname
        self.rpc_timeout = rpc_timeout
        self._address_of = address_of
        self._on_blocking = on_blocking
        self._on_glimpse = on_glimpse
        self._on_lost = on_lost
        self._mu = threading.Lock()
        self._connect_mu = threading.Lock()
        self._address: str | None = None
        self._channel: grpc.Channel | None = None
        self._stub: oss_pb2_grpc.OssStub | None = None
        self._locks: LockClient | None = None
        self._conn_gen = 0
        self._connected = False
        self._holds_locks = False       # an export of ours may hold locks: losing it must run on_lost
        self._refresh = False           # ask for the address again before the next connect
        self._closed = False
        self.epoch = 0                  # bumped each time this client's locks on the OST are lost
        self._xids = itertools.count(1)
        self._stats = dict.fromkeys(_COUNTERS, 0)
        self._lane: LaneClient | None = None   # the OSS's request lane, from the last Connect
        self.use_lane = use_lane
        self.kept = oscreplay.KeptWrites(max_unstable)     # answered, not yet committed: replayed after a restart
        self._boot = 0                          # the OSS start connected to

    @property
    def name(self) -> str:
        return f"OST{self.index:04x}"

    # -- connection ------------------------------------------------------------

    def _ready(self) -> tuple[oss_pb2_grpc.OssStub, LockClient, int]:
        with self._mu:
            if self._connected and self._stub is not None and self._locks is not None:
                return self._stub, self._locks, self._conn_gen
        return self._connect()

    def _connect(self) -> tuple[oss_pb2_grpc.OssStub, LockClient, int]:
        with self._connect_mu:
            with self._mu:
                if self._closed:
                    raise LpError(errno.ESHUTDOWN, "data path closed")
                if self._connected and self._stub is not None and self._locks is not None:
                    return self._stub, self._locks, self._conn_gen
                refresh = self._refresh
            address = self._address_of(refresh)
            if not address:
                raise LpError(errno.ENOTCONN, f"{self.name} has no known address")
            if address != self._address or self._stub is None:
                self._new_channel(address)
            stub, locks = self._stub, self._locks
            assert stub is not None and locks is not None
            try:
                rep = oscreplay.connect(stub, cpb.ConnectRequest(client_id=self.client_id, fsname=self.fsname,
                                                                 replays=len(self.kept)), self.rpc_timeout)
                check_rep(rep.hdr)
                oscreplay.recover(stub, self.name, self.kept, rep, self._boot not in (0, rep.boot_id),
                                  lambda: self._hdr(rep.conn_gen), self.rpc_timeout)
                self._boot = rep.boot_id
            except LpError as e:
                with self._mu:
                    self._refresh = True
                self._count("errors")
                raise LpError(e.errno, f"{self.name} at {address}: {e.message}") from None
            self._forget_locks()                # a new export never has the old one's locks
            self._set_lane(address, rep)
            locks.attach(rep.conn_gen)
            if not locks.wait_attached(self.rpc_timeout):
                raise LpError(errno.ETIMEDOUT, f"{self.name}: lock callback stream not bound in time")
            with self._mu:
                self._conn_gen = rep.conn_gen
                self._connected = True
                self._holds_locks = True
                self._refresh = False
                self._stats["connects"] += 1
            log.info("%s: connected to %s (%s, gen %#x)", self.name, address, rep.server_uuid, rep.conn_gen)
            return stub, locks, rep.conn_gen

    def _set_lane(self, address: str, rep: cpb.ConnectReply) -> None:
        lane = None
        if rep.lane_port and self.use_lane:
            host = address.rpartition(":")[0].strip("[]")
            lane = LaneClient(host, rep.lane_port, rep.lane_token, _OSS, connect_timeout=self.rpc_timeout)
        with self._mu:
            old, self._lane = self._lane, lane
        if old is not None:
            old.close()

    def _on_lane(self, what: str, fn: Callable[[LaneClient], R]) -> R | None:
        """fn(the lane), or None when there is no lane or it failed in a way gRPC should retry."""
        lane = self._lane
        if lane is None:
            return None
        try:
            return fn(lane)
        except (LaneRefused, LaneLost) as e:
            log.info("%s: %s: %s on gRPC", self.name, e.message, what)
        return None

    def _new_channel(self, address: str) -> None:
        old_channel, old_locks = self._channel, self._locks
        channel = make_channel(address, "oss")
        locks = LockClient(channel, self.client_id, on_blocking=self._on_blocking, on_glimpse=self._on_glimpse,
                           on_evicted=self._evicted, lru_size=LOCK_LRU, rpc_timeout=self.rpc_timeout,
                           enqueue_timeout=self.rpc_timeout, workers=LOCK_WORKERS)
        with self._mu:
            self._address, self._channel, self._locks = address, channel, locks
            self._stub = oss_pb2_grpc.OssStub(channel)
            self._connected = False
        if old_locks is not None:
            old_locks.close()
        if old_channel is not None:
            old_channel.close()

    def _forget_locks(self) -> None:
        """Every lock of the current export is gone: tell the owner once."""
        with self._mu:
            if not self._holds_locks:
                return
            self._holds_locks = False
            self.epoch += 1
        try:
            self._on_lost()
        except Exception:
            log.exception("%s: dropping what lost locks covered failed", self.name)

    def _evicted(self) -> None:
        locks = self._locks
        if locks is None or not locks.evicted:
            return      # an old export's news, already handled by a reconnect
        log.warning("%s: evicted; dropping every lock and cache of this OST", self.name)
        with self._mu:
            self._connected = False
        self._forget_locks()
        if len(self.kept):      # the OST may have restarted and wait for our replays: do not wait for I/O
            oscreplay.in_background(self.name, self._ready)

    def _note(self, method: str, hdr: cpb.RepHdr, nbytes: int, *, pieces: Sequence[tuple[int, int, Buf]] = (),
              request: Message | None = None) -> None:
        """A change the OST answered: kept until committed; past the limit, ask for a commit."""
        if self.kept.keep(method, hdr.transno, hdr.last_committed, nbytes, pieces=pieces, request=request):
            self.sync(0)

    def _down(self, gen: int, e: LpError) -> LpError:
        """Note a failed RPC; ENOTCONN means the export is gone: connect again next time."""
        self._count("errors")
        if e.errno == errno.EKEYEXPIRED:
            self._drop_capas()
        if e.errno == errno.ENOTCONN:
            with self._mu:
                if self._conn_gen == gen:
                    self._connected = False
                    self._refresh = True
        return e

    def _hdr(self, gen: int, oids: Iterable[int] = (), write: bool = False) -> cpb.ReqHdr:
        return cpb.ReqHdr(client_id=self.client_id, conn_gen=gen, xid=next(self._xids),
                          capas=self._capas(oids, write) if oids else ())

    def _count(self, name: str, n: int = 1) -> None:
        with self._mu:
            self._stats[name] += n

    def close(self) -> None:
        """Leave the OSS (its locks go with the export) and stop the callback stream."""
        with self._connect_mu:
            with self._mu:
                self._closed = True
                stub, locks, channel, gen = self._stub, self._locks, self._channel, self._conn_gen
                connected = self._connected
                self._connected = False
            if stub is not None and connected:
                try:
                    call(stub.Disconnect, cpb.DisconnectRequest(hdr=self._hdr(gen)),
                         timeout=min(5.0, self.rpc_timeout))
                except LpError as e:
                    log.debug("%s: disconnect failed: %s", self.name, e)
            for part in (locks, channel, self._lane):
                if part is not None:
                    part.close()

    # -- locks -------------------------------------------------------------------

    def res(self, object_id: int) -> ResId:
        return ResId(self.index, object_id, 0)

    def enqueue(self, object_id: int, mode: LockMode, extent: tuple[int, int], flags: int = 0,
                hold: bool = False) -> tuple[Grant, int]:
        """An extent lock on the object (or a glimpsed LVB); returns it with the epoch it belongs to."""
        _, locks, gen = self._ready()
        epoch = self.epoch
        self._count("enqueues")
        try:
            grant = locks.enqueue(self.res(object_id), mode, extent=extent, flags=flags,
                                  timeout=self.rpc_timeout, hold=hold)
        except LpError as e:
            if e.errno == errno.EAGAIN:
                raise
            raise self._down(gen, e) from None
        if grant.lock is None:
            self._count("glimpsed")
        return grant, epoch

    def hold(self, cookie: int) -> bool:
        locks = self._locks
        return locks is not None and locks.hold(cookie)

    def release(self, cookie: int) -> None:
        locks = self._locks
        if locks is not None:
            locks.release(cookie)

    # -- data ------------------------------------------------------------------------

    def write(self, object_id: int, runs: Sequence[tuple[int, Buf]], sync: bool = False) -> Lvb:
        """Write (offset, data) runs to one object in one request; returns the object's LVB after.
        On the lane the runs go as they are; on gRPC small ones are joined into messages of MSG_MIN
        to MSG_MAX bytes."""
        stub, _, gen = self._ready()
        total = sum(len(d) for _, d in runs)
        if total <= MAX_DATA:
            lvbs = self._on_lane("write", lambda lane: self._send_many(
                None, lane, gen, [(object_id, off, d) for off, d in runs], total, sync))
            if lvbs is not None:
                return lvbs[object_id]
        messages = write_messages([Segment(off, d) for off, d in runs], MSG_MIN, MSG_MAX)
        hdr = self._hdr(gen, [object_id], True)

        def chunks() -> Iterator[opb.WriteChunk]:
            h: cpb.ReqHdr | None = hdr
            for off, data in messages:
                yield opb.WriteChunk(hdr=h, object_id=object_id, offset=off, data=data,
                                     crc32c=crc32c.crc32c(data), sync=sync)
                h = None

        try:
            rep = call(stub.Write, chunks(), timeout=self.rpc_timeout)
            check_rep(rep.hdr)
        except LpError as e:
            raise self._down(gen, LpError(e.errno, f"{self.name} object {object_id}: {e.message}")) from None
        if rep.written != total:
            raise self._down(gen, LpError(errno.EIO, f"{self.name} object {object_id}: wrote {rep.written} "
                                                     f"of {total} bytes"))
        with self._mu:
            self._stats["write_rpcs"] += 1
            self._stats["write_bytes"] += total
        self._note("WriteMany", rep.hdr, total, pieces=[(object_id, off, d) for off, d in runs])
        return lvb_from_pb(rep.lvb)

    def write_many(self, pieces: Sequence[tuple[int, int, bytes]]) -> dict[int, Lvb]:
        """Write (object_id, offset, data) pieces, of any objects, in one unary RPC; returns each
        object's LVB after. For many small writes, where a stream per object costs a thread."""
        stub, _, gen = self._ready()
        total = sum(len(d) for _, _, d in pieces)
        if total <= MAX_DATA:
            lvbs = self._on_lane("write", lambda lane: self._send_many(None, lane, gen, pieces, total))
            if lvbs is not None:
                return lvbs
        return self._send_many(stub, None, gen, pieces, total)

    def _send_many(self, stub: oss_pb2_grpc.OssStub | None, lane: LaneClient | None, gen: int,
                   pieces: Sequence[tuple[int, int, Buf]], total: int, sync: bool = False) -> dict[int, Lvb]:
        """One WriteMany: on the lane with the bytes after the message, else on gRPC inside it."""
        req = opb.WriteManyRequest(hdr=self._hdr(gen, [p[0] for p in pieces], True), chunks=[
            opb.WriteChunk(object_id=oid, offset=off, crc32c=crc32c.crc32c(d), sync=sync,
                           length=len(d) if lane is not None else 0, data=b"" if lane is not None else bytes(d))
            for oid, off, d in pieces])
        try:
            if lane is not None:
                rep, _ = lane.bulk_method(_OSS, "WriteMany")(req, data=[d for _, _, d in pieces],
                                                             timeout=self.rpc_timeout)
            else:
                assert stub is not None
                rep = call(stub.WriteMany, req, timeout=self.rpc_timeout)
            check_rep(rep.hdr)
        except (LaneRefused, LaneLost):
            raise
        except LpError as e:
            raise self._down(gen, LpError(e.errno, f"{self.name}: writing {len(pieces)} pieces: {e.message}")) from None
        if rep.written != total:
            raise self._down(gen, LpError(errno.EIO, f"{self.name}: wrote {rep.written} of {total} bytes"))
        with self._mu:
            self._stats["write_rpcs"] += 1
            self._stats["write_bytes"] += total
        self._note("WriteMany", rep.hdr, total, pieces=pieces)
        return {o.object_id: lvb_from_pb(o.lvb) for o in rep.lvbs}

    def _lane_read(self, lane: LaneClient, gen: int, object_id: int, offset: int, length: int) -> list[Buf]:
        out: list[Buf] = []
        pos, end = offset, offset + length
        call = lane.bulk_method(_OSS, "ReadOne")
        while True:
            req = opb.ReadRequest(hdr=self._hdr(gen, [object_id]), object_id=object_id, offset=pos,
                                  length=end - pos)
            try:
                rep, data = call(req, timeout=self.rpc_timeout)
                check_rep(rep.hdr)
                if rep.offset != pos:
                    raise LpError(errno.EIO, f"read reply at {rep.offset}, expected {pos}")
                if crc32c.crc32c(data) != rep.crc32c:
                    raise LpError(errno.EIO, f"checksum mismatch reading at {pos}")
            except (LaneRefused, LaneLost):
                raise
            except LpError as e:
                raise self._down(gen, _read_error(self.name, object_id, e)) from None
            if data:
                out.append(data)
                pos += len(data)
            if rep.eof or pos >= end or not data:
                break
        with self._mu:
            self._stats["read_rpcs"] += 1
            self._stats["read_bytes"] += pos - offset
        return out

    def read(self, object_id: int, offset: int, length: int, chunk_size: int = 0) -> list[Buf]:
        """The object's bytes in [offset, offset+length), cut short at its end, as the messages came."""
        stub, _, gen = self._ready()
        got = self._on_lane("read", lambda lane: self._lane_read(lane, gen, object_id, offset, length))
        if got is not None:
            return got
        req = opb.ReadRequest(hdr=self._hdr(gen, [object_id]), object_id=object_id, offset=offset, length=length,
                              chunk_size=chunk_size)
        stream = stub.Read(req, timeout=self.rpc_timeout)
        try:
            out, pos = _collect(stream, offset)
        except grpc.RpcError as e:
            err = LpError(transport_errno(e), f"{self.name} object {object_id}: read failed: {e.code()}")
            raise self._down(gen, err) from None
        except LpError as e:
            raise self._down(gen, _read_error(self.name, object_id, e)) from None
        finally:
            stream.cancel()
        with self._mu:
            self._stats["read_rpcs"] += 1
            self._stats["read_bytes"] += pos - offset
        return out

    def _unary(self, what: str, method_name: str, request_cls, write: bool = False, **fields) -> object:
        stub, _, gen = self._ready()
        oids = [fields["object_id"]] if fields.get("object_id") else []
        try:
            rep = call(getattr(stub, method_name), request_cls(hdr=self._hdr(gen, oids, write), **fields),
                       timeout=self.rpc_timeout)
            check_rep(rep.hdr)
        except LpError as e:
            raise self._down(gen, LpError(e.errno, f"{self.name} {what}: {e.message}")) from None
        return rep

    def punch(self, object_id: int, size: int) -> Lvb:
        rep = self._unary(f"punch of object {object_id}", "Punch", opb.PunchRequest, True, object_id=object_id,
                          size=size)
        self._count("punches")
        self._note("Punch", rep.hdr, 0, request=opb.PunchRequest(object_id=object_id, size=size))  # type: ignore[attr-defined]
        return lvb_from_pb(rep.lvb)     # type: ignore[attr-defined]

    def getattr(self, object_id: int) -> Lvb:
        rep = self._unary(f"getattr of object {object_id}", "Getattr", opb.ObjRequest, object_id=object_id)
        self._count("getattrs")
        return lvb_from_pb(rep.lvb)     # type: ignore[attr-defined]

    def sync(self, object_id: int) -> None:
        """Make the object durable (0: everything written to this OST) and forget what is committed."""
        rep = self._unary(f"sync of object {object_id}", "Sync", opb.ObjRequest, object_id=object_id)
        self.kept.committed(rep.hdr.last_committed)     # type: ignore[attr-defined]
        self._count("syncs")

    connect_now = _ready    # connect (again) when not connected; LpError when the OST does not answer

    def statistics(self) -> dict[str, int | str | bool]:
        with self._mu:
            out: dict[str, int | str | bool] = {"address": self._address or "", "connected": self._connected,
                                                "epoch": self.epoch, **self._stats}
            locks = self._locks
        out["unstable_bytes"] = self.kept.nbytes
        if locks is not None:
            ls = locks.statistics()
            out.update({"locks": ls["locks"], "blocking_callbacks": ls["blocking_callbacks"],
                        "glimpse_callbacks": ls["glimpses"], "lru_cancels": ls["lru_cancels"],
                        "evictions": ls["evictions"]})
        return out


def _collect(stream: Iterable[opb.ReadChunk], offset: int) -> tuple[list[Buf], int]:
    """The data of a Read reply stream from `offset` (checked: offsets, checksums), and where it ends."""
    out: list[Buf] = []
    pos = offset
    for msg in stream:
        if msg.hdr.errno:
            check_rep(msg.hdr)
        data = msg.data
        if data:
            if msg.offset != pos:
                raise LpError(errno.EIO, f"read reply at {msg.offset}, expected {pos}")
            if crc32c.crc32c(data) != msg.crc32c:
                raise LpError(errno.EIO, f"checksum mismatch reading at {pos}")
            out.append(data)
            pos += len(data)
        if msg.eof:
            break
    return out, pos


def _read_error(ost: str, object_id: int, e: LpError) -> LpError:
    """A failed read as the layers above see it: EBADMSG (the OST's bytes fail their checksum at
    rest) becomes BadData, EIO to the application; anything else keeps its errno."""
    text = f"{ost} object {object_id}: {e.message}"
    if e.errno == errno.EBADMSG:
        return BadData(text)
    return LpError(e.errno, text)
