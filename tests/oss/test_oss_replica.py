"""The OSS side of mirror copies (lustrepy.oss.replica) on a real OST directory and lock server:
a pushed range written under a PW lock, cut and made durable; checksums per block; bad requests
refused with one errno; and no copy in either direction while the OST recovers (a replay applied
after a copy would undo it)."""

from __future__ import annotations

import errno

import crc32c
import pytest

from lustrepy.common.errors import from_wire
from lustrepy.ldlm.lockd import LockServer
from lustrepy.oss.recovery import open_window
from lustrepy.oss.replica import PIECE, Replicas
from lustrepy.oss.service import OssService
from lustrepy.oss.tgt import Tgt
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from tests.oss.test_oss_ofd import make_ofd, read, write


@pytest.fixture
def oss(tmp_path):
    """An OSS service over a fresh OST whose last start left client `a` to replay (recovering)."""
    ofd = make_ofd(str(tmp_path / "ost"))
    first, _ = ofd.precreate(4)
    Tgt(ofd.osd, ofd.sync_objects, interval=3600).stamp("a", [first])       # a crash after this write
    tgt = Tgt(ofd.osd, ofd.sync_objects, interval=3600)
    lockd = LockServer(ofd.ident.name, callback_timeout=2.0, lvb_source=lambda res: ofd.lvb(res.n1))
    lockd.start()
    rw = open_window(ofd, tgt, window=30)
    svc = OssService(ofd, lockd, 1, tgt, rw)
    svc.replicas = Replicas(ofd, lockd, timeout=5.0)
    try:
        yield svc, ofd, first, rw
    finally:
        svc.replicas.close()
        lockd.stop()


def replica(oid: int, offset: int, data: bytes, truncate: int = -1, sync: bool = False, ost: int = 0):
    return opb.ReplicaWriteRequest(hdr=cpb.ReqHdr(client_id="OST0001-replica"), ost_index=ost, object_id=oid,
                                   offset=offset, data=data, crc32c=crc32c.crc32c(data), truncate=truncate,
                                   sync=sync)


def err(rep) -> int:
    return from_wire(rep.hdr.errno)


def end_recovery(rw) -> None:
    rw.connected("a", 0)                        # it comes back with nothing to replay
    assert rw.outcome("a", 10)[0] and not rw.blocks()


def test_no_copy_while_the_ost_recovers(oss):
    svc, _, first, rw = oss
    assert rw.blocks()
    assert err(svc.ReplicaWrite(replica(first, 0, b"new"), None)) == errno.EINPROGRESS
    push = opb.PushRequest(hdr=cpb.ReqHdr(client_id="mds"), object_id=first, target_address="127.0.0.1:1",
                           target_ost=1, target_object_id=9, offset=0, length=1 << 20)
    assert err(svc.Push(push, None)) == errno.EINPROGRESS
    end_recovery(rw)
    assert err(svc.ReplicaWrite(replica(first, 0, b"new"), None)) == 0


def test_a_pushed_range_is_written_cut_and_checksummed(oss):
    svc, ofd, first, rw = oss
    end_recovery(rw)
    write(ofd, first + 1, 0, b"x" * 300_000)
    data = bytes(range(256)) * 1024
    assert err(svc.ReplicaWrite(replica(first + 1, 4096, data), None)) == 0
    assert err(svc.ReplicaWrite(replica(first + 1, 4096 + len(data), b"", truncate=100_000, sync=True), None)) == 0
    got = read(ofd, first + 1, 0, 1 << 20)
    assert got == (b"x" * 4096 + data)[:100_000]
    rep = svc.Checksum(opb.ChecksumRequest(hdr=cpb.ReqHdr(), object_id=first + 1, block=65536), None)
    assert err(rep) == 0 and rep.size == 100_000
    assert list(rep.crcs) == [crc32c.crc32c(got[i:i + 65536]) for i in range(0, len(got), 65536)]


@pytest.mark.parametrize("bad, code", [
    (dict(ost=3), errno.ENODEV),                            # another OST's object
    (dict(data=b"y" * (PIECE + 1)), errno.EINVAL),          # more than one piece
])
def test_bad_replica_writes_are_refused(oss, bad, code):
    svc, _, first, rw = oss
    end_recovery(rw)
    args = {"oid": first, "offset": 0, "data": b"y", **bad}
    assert err(svc.ReplicaWrite(replica(**args), None)) == code


def test_bad_checksum_requests_and_pushes_are_refused(oss):
    svc, _, first, rw = oss
    end_recovery(rw)
    assert err(svc.Checksum(opb.ChecksumRequest(hdr=cpb.ReqHdr(), object_id=first, block=1000), None)) == errno.EINVAL
    assert err(svc.Push(opb.PushRequest(hdr=cpb.ReqHdr(), object_id=first, target_address="", target_object_id=1,
                                        length=10), None)) == errno.EINVAL
    assert err(svc.Push(opb.PushRequest(hdr=cpb.ReqHdr(), object_id=first, target_address="127.0.0.1:1",
                                        target_object_id=1, length=1 << 40), None)) == errno.EINVAL
