"""A small synchronous Oss client for tests: connect, then typed calls with deadlines."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable

import crc32c

from lustrepy.common.errors import from_wire
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc

MiB = 1024 * 1024
TIMEOUT = 10.0


@dataclass(frozen=True)
class Chunk:
    object_id: int
    offset: int
    data: bytes
    sync: bool = False
    bad_crc: bool = False


class OssClient:
    def __init__(self, address: str, client_id: str = "test-client") -> None:
        self.channel = make_channel(address)
        self.stub = oss_pb2_grpc.OssStub(self.channel)
        self.client_id = client_id
        self.conn_gen = 0
        self._xids = itertools.count(1)

    def close(self) -> None:
        self.channel.close()

    def connect(self, fsname: str = "testfs") -> cpb.ConnectReply:
        rep = call(self.stub.Connect, cpb.ConnectRequest(client_id=self.client_id, fsname=fsname), TIMEOUT)
        if rep.hdr.errno == 0:
            self.conn_gen = rep.conn_gen
        return rep

    def hdr(self) -> cpb.ReqHdr:
        return cpb.ReqHdr(client_id=self.client_id, conn_gen=self.conn_gen, xid=next(self._xids))

    def precreate(self, count: int) -> opb.PrecreateReply:
        return call(self.stub.Precreate, opb.PrecreateRequest(hdr=self.hdr(), count=count), TIMEOUT)

    def write_chunks(self, chunks: Iterable[Chunk]) -> opb.WriteReply:
        def gen():
            for i, c in enumerate(chunks):
                crc = crc32c.crc32c(c.data) ^ (1 if c.bad_crc else 0)
                yield opb.WriteChunk(hdr=self.hdr() if i == 0 else None, object_id=c.object_id, offset=c.offset,
                                     data=c.data, crc32c=crc, sync=c.sync)
        return call(self.stub.Write, gen(), TIMEOUT)

    def write_many(self, chunks: Iterable[Chunk]) -> opb.WriteManyReply:
        req = opb.WriteManyRequest(hdr=self.hdr(), chunks=[
            opb.WriteChunk(object_id=c.object_id, offset=c.offset, data=c.data,
                           crc32c=crc32c.crc32c(c.data) ^ (1 if c.bad_crc else 0)) for c in chunks])
        return call(self.stub.WriteMany, req, TIMEOUT)

    def write(self, oid: int, offset: int, data: bytes, chunk: int = MiB, sync: bool = False) -> opb.WriteReply:
        pieces = [Chunk(oid, offset + i, data[i:i + chunk], sync) for i in range(0, len(data), chunk)]
        return self.write_chunks(pieces or [Chunk(oid, offset, b"", sync)])

    def read_chunks(self, oid: int, offset: int, length: int, chunk_size: int = 0) -> list[opb.ReadChunk]:
        req = opb.ReadRequest(hdr=self.hdr(), object_id=oid, offset=offset, length=length, chunk_size=chunk_size)
        return list(self.stub.Read(req, timeout=TIMEOUT))

    def read(self, oid: int, offset: int, length: int, chunk_size: int = 0) -> bytes:
        """The bytes read; raises AssertionError on an errno, a bad crc or a gap."""
        out = []
        pos = offset
        for c in self.read_chunks(oid, offset, length, chunk_size):
            assert c.hdr.errno == 0, c.hdr.message
            assert crc32c.crc32c(c.data) == c.crc32c
            assert c.offset == pos
            pos += len(c.data)
            out.append(c.data)
        return b"".join(out)

    def getattr(self, oid: int) -> opb.ObjAttrReply:
        return call(self.stub.Getattr, opb.ObjRequest(hdr=self.hdr(), object_id=oid), TIMEOUT)

    def punch(self, oid: int, size: int) -> opb.ObjAttrReply:
        return call(self.stub.Punch, opb.PunchRequest(hdr=self.hdr(), object_id=oid, size=size), TIMEOUT)

    def destroy(self, oids: list[int]) -> opb.DestroyReply:
        return call(self.stub.Destroy, opb.DestroyRequest(hdr=self.hdr(), object_ids=oids), TIMEOUT)

    def statfs(self) -> opb.OssStatfsReply:
        return call(self.stub.Statfs, opb.OssStatfsRequest(hdr=self.hdr()), TIMEOUT)

    def sync(self, oid: int) -> cpb.SimpleReply:
        return call(self.stub.Sync, opb.ObjRequest(hdr=self.hdr(), object_id=oid), TIMEOUT)

    def disconnect(self) -> cpb.SimpleReply:
        return call(self.stub.Disconnect, cpb.DisconnectRequest(hdr=self.hdr()), TIMEOUT)


def err(hdr: cpb.RepHdr) -> int:
    """The host errno a reply header carries (0 on success)."""
    return from_wire(hdr.errno)
