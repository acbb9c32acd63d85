"""Copies of objects from one OSS to another, for mirrored files: resync and re-replication.

The MDS asks the OSS that holds an in-sync mirror's object to push a range of
it to the OSS that holds the object being rebuilt (`Replicas.push`); that OSS
writes it (`Replicas.write`). No client takes part. Each side holds an
extent lock of its own OST's lock server while it reads or writes the range:
PR on the source, then PW on the copy, the order in which clients lock a
mirrored file's objects (in-sync mirrors first, the mirror being rebuilt
last). Clients write the mirror being rebuilt too, so within a range a
client's write lands on both objects either before the copy (its dirty data
is written back when the source's PR lock calls its PW lock back, and the
copy reads it) or after it: never between the read and the write of the copy.

Neither side copies while its OST recovers (the service refuses with
EINPROGRESS until the clients' replays are in), so a copy never reads bytes
a replay is about to change, nor is overwritten by a replay after it.

The last push of a copy locks the source from its offset to the end, sets
the copy's size to the source's and makes the copy durable before it
answers. `checksums` gives the crc32c of an object's bytes per block, for
`lfsctl mirror verify`. Every RPC has a deadline.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterator

import crc32c
import grpc

from lustrepy.common.errors import LpError
from lustrepy.ldlm.lockd import LockServer
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import ResId
from lustrepy.oss.ofd import Ofd
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import check_rep
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc

log = logging.getLogger(__name__)

OWNER = "replica"                   # the local owner of the copy's extent locks
PIECE = 4 << 20                     # bytes per ReplicaWrite
MAX_PUSH = 256 << 20                # bytes one Push may ask for
MAX_BLOCKS = 1 << 16                # checksums one Checksum reply may carry
EOF = 2**64 - 1
RPC_TIMEOUT = 30.0


class Replicas:
    """Pushing object ranges to other OSSes and writing the ranges pushed here. Thread-safe."""

    def __init__(self, ofd: Ofd, lockd: LockServer, *, timeout: float = RPC_TIMEOUT) -> None:
        self.ofd = ofd
        self.lockd = lockd
        self.timeout = timeout
        self._mu = threading.Lock()
        self._stubs: dict[str, tuple[grpc.Channel, oss_pb2_grpc.OssStub]] = {}   # guarded by _mu

    def close(self) -> None:
        with self._mu:
            stubs, self._stubs = self._stubs, {}
        for ch, _ in stubs.values():
            ch.close()

    def _stub(self, address: str) -> oss_pb2_grpc.OssStub:
        with self._mu:
            got = self._stubs.get(address)
            if got is None:
                ch = make_channel(address, "oss")
                got = self._stubs[address] = (ch, oss_pb2_grpc.OssStub(ch))
            return got[1]

    def _locked(self, oid: int, mode: LockMode, start: int, last: int) -> int:
        lk = self.lockd.enqueue(OWNER, ResId(self.ofd.ident.index, oid, 0), mode, extent=(start, last), local=True,
                                timeout=self.timeout)
        return lk.cookie

    def push(self, req: opb.PushRequest) -> tuple[int, int]:
        """Copy [offset, offset+length) of a local object to the target (to the object's end and
        then the size, when `last`); returns (bytes copied, the source object's size)."""
        if req.length > MAX_PUSH or req.offset + req.length > EOF:
            raise LpError(errno.EINVAL, f"push of {req.length} bytes at {req.offset}: at most {MAX_PUSH} at once")
        if not req.target_address or not req.target_object_id:
            raise LpError(errno.EINVAL, "push without a target")
        last = EOF if req.last else req.offset + max(req.length, 1) - 1
        cookie = self._locked(req.object_id, LockMode.PR, req.offset, last)
        try:
            size = self.ofd.getattr(req.object_id).size
            end = size if req.last else min(req.offset + req.length, size)
            copied = 0
            stub = self._stub(req.target_address)
            for off, data in self._pieces(req.object_id, req.offset, end):
                self._send(stub, req, off, data, -1, False)
                copied += len(data)
            if req.last:
                self._send(stub, req, end, b"", size, True)
            return copied, size
        finally:
            self.lockd.cancel(OWNER, [cookie])

    def _pieces(self, oid: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        pos = start
        while pos < end:
            n = min(PIECE, end - pos)
            for p in self.ofd.read(oid, pos, n, chunk_size=n):
                if p.data:
                    yield p.offset, p.data
            pos += n

    def _send(self, stub: oss_pb2_grpc.OssStub, req: opb.PushRequest, off: int, data: bytes, truncate: int,
              sync: bool) -> None:
        rep = call(stub.ReplicaWrite, opb.ReplicaWriteRequest(
            hdr=cpb.ReqHdr(client_id=f"{self.ofd.ident.name}-replica"), ost_index=req.target_ost,
            object_id=req.target_object_id, offset=off, data=data, crc32c=crc32c.crc32c(data), truncate=truncate,
            sync=sync), timeout=self.timeout)
        check_rep(rep.hdr)

    def write(self, req: opb.ReplicaWriteRequest) -> None:
        """Write a pushed range into a local object under a PW lock; then cut it to `truncate`
        (>= 0) and make it durable (`sync`)."""
        if req.ost_index != self.ofd.ident.index:
            raise LpError(errno.ENODEV, f"this OSS serves {self.ofd.ident.name}, not OST index {req.ost_index}")
        if len(req.data) > PIECE:
            raise LpError(errno.EINVAL, f"{len(req.data)} bytes in one replica write: at most {PIECE}")
        cut = req.truncate >= 0
        start = min(req.offset, req.truncate) if cut else req.offset
        cookie = self._locked(req.object_id, LockMode.PW, start, EOF if cut else req.offset + max(len(req.data), 1) - 1)
        try:
            if req.data:
                with self.ofd.write_session() as session:
                    session.write(req.object_id, req.offset, req.data, req.crc32c)
                    session.finish()
            if req.truncate >= 0:
                self.ofd.punch(req.object_id, req.truncate)
            if req.sync:
                self.ofd.sync(req.object_id)
        finally:
            self.lockd.cancel(OWNER, [cookie])

    def checksums(self, oid: int, block: int) -> tuple[int, list[int]]:
        """The object's size and the crc32c of each `block` bytes of it (the last one short)."""
        if block <= 0 or block % 4096:
            raise LpError(errno.EINVAL, f"checksum block {block} is not a positive multiple of 4096")
        size = self.ofd.getattr(oid).size
        if (size + block - 1) // block > MAX_BLOCKS:
            raise LpError(errno.EINVAL, f"object {oid} has more than {MAX_BLOCKS} blocks of {block} bytes")
        crcs = []
        for off in range(0, size, block):
            crc = 0
            for p in self.ofd.read(oid, off, block, chunk_size=block):
                crc = crc32c.crc32c(p.data, crc)
            crcs.append(crc)
        return size, crcs
