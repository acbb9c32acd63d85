"""Bulk data on an OSS's request lane: the bytes travel beside the messages, checked by crc32c both
ways; bad fields are refused with an errno; a cut lane connection or a restarted OSS sends the
request on gRPC instead, and no byte is lost."""

from __future__ import annotations

import errno
import os
import socket

import crc32c
import pytest

from lustrepy.client.osc import Osc
from lustrepy.common.errors import LpError
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.channel import make_channel
from lustrepy.rpc.v1 import oss_pb2_grpc
from lustrepy.rpc.v1 import stats_pb2 as spb
from tests.client.conftest import addresses_of, create_file, start_cluster
from tests.support.servers import wait_for

pytestmark = pytest.mark.timeout(90)

MiB = 1 << 20
OSS = opb.DESCRIPTOR.services_by_name["Oss"]


def _osc(mdc, index: int, name: str) -> Osc:
    addrs = addresses_of(mdc)
    return Osc(index, f"{name}-{os.getpid()}", "testfs", lambda refresh: addrs().get(index), rpc_timeout=5.0,
               on_blocking=lambda desc: None, on_glimpse=lambda desc: None, on_lost=lambda: None)


def _ops(address: str, client_id: str) -> dict[str, tuple[int, int]]:
    """The OSS's own account of one client's requests: op -> (count, bytes)."""
    with make_channel(address) as ch:
        rep = oss_pb2_grpc.OssStub(ch).Stats(spb.StatsRequest(), timeout=5)
    for c in rep.clients:
        if c.client_id == client_id:
            return {o.op: (o.count, o.bytes) for o in c.ops}
    return {}


@pytest.fixture
def one(cluster, new_file, request):
    """(mdc, a new one-object file's object, an Osc on its OST named for the test)."""
    _, mdc = cluster
    obj = new_file(1)[1].objects[0]
    osc = _osc(mdc, obj.ost_index, request.node.name[5:30])
    yield mdc, obj, osc
    osc.close()


def test_writes_and_reads_go_on_the_lane_and_read_back(one):
    mdc, obj, osc = one
    a, b = os.urandom(3 * MiB + 5), os.urandom(4096)
    assert osc.write(obj.object_id, [(0, a), (20 * MiB, b)]).size == 20 * MiB + 4096
    lvbs = osc.write_many([(obj.object_id, 3 * MiB + 5, b"tail")])
    assert lvbs[obj.object_id].size == 20 * MiB + 4096
    parts = osc.read(obj.object_id, 0, 64 * MiB)
    data = b"".join(parts)
    assert len(parts) == 2                          # at most 16 MiB a message
    assert data[:3 * MiB + 5] == a and data[3 * MiB + 5:3 * MiB + 9] == b"tail"
    assert data[3 * MiB + 9:20 * MiB] == bytes(20 * MiB - 3 * MiB - 9) and data[20 * MiB:] == b
    assert osc.read(obj.object_id, 30 * MiB, 10) == []
    ops = _ops(addresses_of(mdc)()[obj.ost_index], osc.client_id)
    # the OSS saw them as lane requests (WriteMany with data beside it), none as a gRPC write stream
    assert ops["write_many"] == (2, 3 * MiB + 5 + 4096 + 4) and "write" not in ops
    assert ops["read"][1] == len(data)


def _lane_call(osc: Osc, name: str, req, data=()):
    assert osc._lane is not None
    return osc._lane.bulk_method(OSS, name)(req, data=data, timeout=5)


def _hdr(osc: Osc, client_id: str | None = None) -> cpb.ReqHdr:
    return cpb.ReqHdr(client_id=client_id or osc.client_id, conn_gen=osc._conn_gen, xid=1)


def test_bad_fields_on_the_lane_get_an_errno_and_write_nothing(one):
    mdc, obj, osc = one
    osc.write(obj.object_id, [(0, b"good")])

    def write(chunks, data, client_id=None):
        rep, _ = _lane_call(osc, "WriteMany", opb.WriteManyRequest(hdr=_hdr(osc, client_id), chunks=chunks),
                            data)
        return rep.hdr.errno
    piece = opb.WriteChunk(object_id=obj.object_id, offset=0, length=4, crc32c=crc32c.crc32c(b"evil"))
    assert write([piece], [b"evil!"]) == errno.EINVAL                   # lengths do not add up
    assert write([opb.WriteChunk(object_id=obj.object_id, offset=0, length=4, crc32c=1)],
                 [b"evil"]) == errno.EBADMSG                             # checksum
    assert write([piece], [b"evil"], client_id="someone-else") == errno.EPERM
    assert write([opb.WriteChunk(object_id=10**9, offset=0, length=4, crc32c=crc32c.crc32c(b"evil"))],
                 [b"evil"]) == errno.ENOENT                              # no such object
    assert write([opb.WriteChunk(object_id=obj.object_id, offset=2**63, length=4,
                                 crc32c=crc32c.crc32c(b"evil"))], [b"evil"]) == errno.EFBIG
    rep, data = _lane_call(osc, "ReadOne", opb.ReadRequest(hdr=_hdr(osc), object_id=10**9, length=10))
    assert rep.hdr.errno == errno.ENOENT and not data
    rep, data = _lane_call(osc, "ReadOne", opb.ReadRequest(hdr=_hdr(osc, "someone-else"),
                                                           object_id=obj.object_id, length=10))
    assert rep.hdr.errno == errno.EPERM and not data
    assert b"".join(osc.read(obj.object_id, 0, 100)) == b"good"          # nothing of the above landed


def test_a_cut_lane_connection_sends_the_request_on_grpc(one):
    mdc, obj, osc = one
    osc.write(obj.object_id, [(0, b"a" * 1000)])
    lane = osc._lane
    assert lane is not None
    for s in lane._idle:
        s.shutdown(socket.SHUT_RDWR)            # the link under the pooled connection is gone
    data = os.urandom(2 * MiB)
    osc.write(obj.object_id, [(0, data)])       # on gRPC, once
    assert b"".join(osc.read(obj.object_id, 0, 4 * MiB)) == data       # the lane again, a new connection
    ops = _ops(addresses_of(mdc)()[obj.ost_index], osc.client_id)
    assert ops["write"] == (1, 2 * MiB) and ops["write_many"] == (1, 1000)
    assert osc.statistics()["connects"] == 1    # no reconnect: the export and its locks stay


def test_a_restarted_oss_gets_a_new_lane_and_the_data_is_there(tmp_path):
    c, mdc = start_cluster(tmp_path, 1)
    try:
        _, layout = create_file(mdc, 1)
        obj = layout.objects[0]
        osc = _osc(mdc, 0, "lane-restart")
        data = os.urandom(MiB)
        osc.write(obj.object_id, [(0, data)], sync=True)
        old_token = osc._lane._token if osc._lane else b""
        c.osts[0].stop(sig=9)
        c.osts[0] = c.oss_proc(0).start()
        with pytest.raises(LpError) as ei:
            osc.read(obj.object_id, 0, MiB)         # the old export is gone: the caller retries
        assert ei.value.errno == errno.ENOTCONN
        got = []

        def read_again() -> bool:           # as the data path does: again until the OSS answers
            try:
                got.append(b"".join(osc.read(obj.object_id, 0, 2 * MiB)))
            except LpError as e:
                assert e.errno == errno.ENOTCONN
                return False
            return True
        wait_for(read_again, what="a read from the restarted OSS")
        assert got == [data]
        assert osc._lane is not None and osc._lane._token != old_token     # a lane of the new OSS
        osc.close()
    finally:
        mdc.close()
        c.stop()
