"""The Oss service over real gRPC on loopback, backed by a real directory."""

from __future__ import annotations

import errno
import os

import pytest
from oss_helpers import Chunk, MiB, OssClient, err

from lustrepy.common.layout import MAX_FILE_SIZE
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb

pytestmark = pytest.mark.timeout(30)


def test_connect_and_export_checks(ost):
    rep = ost.client.connect()
    assert rep.server_uuid == "testfs-OST0000_UUID" and rep.fsname == "testfs" and rep.boot_id
    stranger = OssClient(ost.address, "stranger")
    try:
        assert err(stranger.statfs().hdr) == errno.ENOTCONN          # never connected
        assert err(stranger.connect("otherfs").hdr) == errno.ENODEV
        assert err(stranger.connect().hdr) == 0
        assert err(stranger.statfs().hdr) == 0
        old = stranger.conn_gen
        assert err(stranger.connect().hdr) == 0 and stranger.conn_gen != old
        stranger.conn_gen = old                                       # a stale connection is refused
        assert err(stranger.precreate(1).hdr) == errno.ENOTCONN
        chunks = stranger.read_chunks(1, 0, 10)
        assert len(chunks) == 1 and err(chunks[0].hdr) == errno.ENOTCONN
        assert err(stranger.write(1, 0, b"x").hdr) == errno.ENOTCONN
    finally:
        stranger.close()
    c = ost.client
    assert err(c.disconnect().hdr) == 0
    assert err(c.statfs().hdr) == errno.ENOTCONN


def test_precreate_makes_real_objects(ost):
    c = ost.client
    rep = c.precreate(10)
    assert err(rep.hdr) == 0 and (rep.first_id, rep.last_id) == (1, 10)
    rep = c.precreate(5)
    assert (rep.first_id, rep.last_id) == (11, 15)
    for oid in range(1, 16):
        a = c.getattr(oid)
        assert err(a.hdr) == 0 and a.lvb.size == 0
    assert err(c.precreate(0).hdr) == errno.EINVAL
    assert c.statfs().objects == 15


def test_write_read_round_trip_several_objects_one_stream(ost):
    c = ost.client
    c.precreate(2)
    a, b = os.urandom(5 * MiB + 123), os.urandom(2 * MiB)
    chunks = [Chunk(1, i, a[i:i + MiB]) for i in range(0, len(a), MiB)]
    chunks += [Chunk(2, 4096 + i, b[i:i + MiB]) for i in range(0, len(b), MiB)]
    rep = c.write_chunks(chunks)
    assert err(rep.hdr) == 0
    assert rep.written == len(a) + len(b)
    assert rep.lvb.size == 4096 + len(b) and rep.lvb.mtime_ns > 0 and rep.lvb.blocks > 0
    got = c.read_chunks(1, 0, 10 * MiB)
    assert [len(x.data) for x in got] == [MiB] * 5 + [123]
    assert [x.eof for x in got] == [False] * 5 + [True]
    assert c.read(1, 0, 10 * MiB) == a
    assert c.read(1, 1000, 3 * MiB, chunk_size=256 * 1024) == a[1000:1000 + 3 * MiB]
    assert len(c.read_chunks(1, 0, MiB, chunk_size=256 * 1024)) == 4
    assert c.read(2, 0, 3 * MiB) == b"\0" * 4096 + b
    assert c.getattr(1).lvb.size == len(a)


def test_write_many_small_objects_in_one_message(ost):
    c = ost.client
    c.precreate(3)
    data = {1: os.urandom(1000), 2: os.urandom(5000), 3: b"x"}
    rep = c.write_many([Chunk(1, 0, data[1]), Chunk(2, 0, data[2][:4096]), Chunk(2, 4096, data[2][4096:]),
                        Chunk(3, 7, data[3])])
    assert err(rep.hdr) == 0 and rep.written == 6001
    lvbs = {o.object_id: o.lvb for o in rep.lvbs}
    assert sorted(lvbs) == [1, 2, 3]
    assert (lvbs[1].size, lvbs[2].size, lvbs[3].size) == (1000, 5000, 8)
    assert all(v.blocks > 0 for v in lvbs.values())
    assert c.read(1, 0, MiB) == data[1] and c.read(2, 0, MiB) == data[2] and c.read(3, 0, MiB) == b"\0" * 7 + b"x"
    bad = c.write_many([Chunk(1, 0, b"new"), Chunk(2, 0, b"lost", bad_crc=True)])
    assert err(bad.hdr) == errno.EBADMSG and bad.written == 3 and not bad.lvbs
    assert c.read(1, 0, 3) == b"new" and c.read(2, 0, 4) == data[2][:4]
    assert err(c.write_many([]).hdr) == errno.EINVAL


def test_holes_read_as_zeros_and_eof(ost):
    c = ost.client
    c.precreate(1)
    assert err(c.write(1, 3 * MiB + 5, b"tail").hdr) == 0
    assert c.read(1, 0, 8 * MiB) == b"\0" * (3 * MiB + 5) + b"tail"
    past = c.read_chunks(1, 10 * MiB, 100)
    assert len(past) == 1 and past[0].eof and past[0].data == b"" and err(past[0].hdr) == 0


def test_bad_crc_refused_nothing_of_that_chunk_written(ost):
    c = ost.client
    c.precreate(1)
    good = os.urandom(MiB)
    rep = c.write_chunks([Chunk(1, 0, good), Chunk(1, MiB, os.urandom(MiB), bad_crc=True)])
    assert err(rep.hdr) == errno.EBADMSG
    assert rep.written == MiB
    assert c.getattr(1).lvb.size == MiB
    assert c.read(1, 0, 4 * MiB) == good


def test_efbig_and_enoent(ost):
    c = ost.client
    c.precreate(1)
    assert err(c.write(1, MAX_FILE_SIZE - 2, b"abcd").hdr) == errno.EFBIG
    assert err(c.punch(1, MAX_FILE_SIZE + 1).hdr) == errno.EFBIG
    assert c.getattr(1).lvb.size == 0
    assert err(c.write(99, 0, b"x").hdr) == errno.ENOENT
    assert err(c.getattr(99).hdr) == errno.ENOENT
    assert err(c.punch(99, 0).hdr) == errno.ENOENT
    assert err(c.sync(99).hdr) == errno.ENOENT
    chunks = c.read_chunks(99, 0, 10)
    assert len(chunks) == 1 and err(chunks[0].hdr) == errno.ENOENT


def test_punch_destroy_sync(ost):
    c = ost.client
    c.precreate(3)
    data = os.urandom(MiB)
    assert err(c.write(1, 0, data, sync=True).hdr) == 0
    assert err(c.sync(1).hdr) == 0 and err(c.sync(0).hdr) == 0
    rep = c.punch(1, 1000)
    assert err(rep.hdr) == 0 and rep.lvb.size == 1000
    assert c.read(1, 0, MiB) == data[:1000]
    assert c.punch(1, 5000).lvb.size == 5000
    assert c.read(1, 0, MiB) == data[:1000] + b"\0" * 4000
    rep = c.destroy([1, 2])
    assert err(rep.hdr) == 0 and rep.destroyed == 2
    rep = c.destroy([1, 2, 3, 12345])
    assert err(rep.hdr) == 0 and rep.destroyed == 1
    assert err(c.getattr(1).hdr) == errno.ENOENT


def test_statfs(ost):
    rep = ost.client.statfs()
    assert err(rep.hdr) == 0
    assert rep.index == 0 and rep.uuid == "testfs-OST0000_UUID"
    sv = os.statvfs(ost.ofd.osd.root)
    assert rep.statfs.bsize == sv.f_frsize and rep.statfs.blocks == sv.f_blocks
    assert 0 < rep.statfs.bavail <= rep.statfs.bfree <= rep.statfs.blocks


def test_capacity_enospc_keeps_earlier_data(make_ost):
    o = make_ost(capacity=4 * MiB)
    c = o.client
    sf = c.statfs().statfs
    assert sf.blocks * sf.bsize == 4 * MiB and sf.bavail * sf.bsize == 4 * MiB
    c.precreate(2)
    first = os.urandom(3 * MiB)
    assert err(c.write(1, 0, first).hdr) == 0
    sf = c.statfs().statfs
    assert sf.bavail * sf.bsize <= MiB
    rep = c.write(2, 0, os.urandom(2 * MiB))
    assert err(rep.hdr) == errno.ENOSPC
    assert rep.written <= MiB                       # only whole chunks that fitted
    rep = c.write(1, 3 * MiB, os.urandom(2 * MiB))
    assert err(rep.hdr) == errno.ENOSPC
    assert c.read(1, 0, 8 * MiB)[:3 * MiB] == first
    assert c.getattr(1).lvb.size == 3 * MiB + rep.written
    assert err(c.destroy([2]).hdr) == 0


def test_write_stream_without_chunks_is_einval(ost):
    from lustrepy.rpc.channel import call
    rep = call(ost.client.stub.Write, iter([]), 5.0)
    assert err(rep.hdr) == errno.EINVAL


def test_unused_header_fields_are_harmless(ost):
    c = ost.client
    c.precreate(1)
    req = opb.ObjRequest(hdr=cpb.ReqHdr(client_id=c.client_id, conn_gen=c.conn_gen, uid=1000, gid=1000,
                                        groups=[1, 2], cancel_cookies=[77]), object_id=1)
    from lustrepy.rpc.channel import call
    assert err(call(c.stub.Getattr, req, 5.0).hdr) == 0


def test_locks_on_the_same_server_carry_the_object_lvb_and_share_exports(ost):
    from lustrepy.rpc.channel import call
    from lustrepy.rpc.v1 import ldlm_pb2 as lpb
    from lustrepy.rpc.v1 import ldlm_pb2_grpc

    c = ost.client
    c.precreate(1)
    c.write(1, 0, b"q" * 12345)
    ldlm = ldlm_pb2_grpc.LdlmStub(c.channel)
    rep = call(ldlm.Enqueue, lpb.LockEnqueueRequest(hdr=c.hdr(), res=cpb.ResId(n0=0, n1=1, n2=0),
                                                    mode=cpb.LCK_PR, extent=cpb.Extent(start=0, end=2**64 - 1),
                                                    has_extent=True), 5.0)
    assert err(rep.hdr) == 0 and rep.lock.cookie != 0
    assert rep.lvb_valid and rep.lvb.size == 12345
    assert err(call(ldlm.Evict, lpb.EvictRequest(client_id=c.client_id), 5.0).hdr) == 0
    assert err(c.getattr(1).hdr) == errno.ENOTCONN               # evicted until it reconnects
    assert err(c.connect().hdr) == 0 and err(c.getattr(1).hdr) == 0
