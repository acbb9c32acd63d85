"""The request lane (lustrepy/rpc/lane.py) on real sockets: authorisation, answers, refusals, cuts, deadlines."""

from __future__ import annotations

import errno
import os
import socket
import ssl
import struct
import threading
import time

import pytest

from lustrepy.common.errors import LpError
from lustrepy.rpc import lane as lanemod
from lustrepy.rpc import tls
from lustrepy.rpc.lane import Handler, LaneClient, LaneLost, LaneRefused, LaneServer
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

pytestmark = pytest.mark.timeout(60)

SVC = mpb.DESCRIPTOR.services_by_name["Mds"]


def _info(req: mpb.MdsInfoRequest, peer: str) -> mpb.MdsInfoReply:
    if req.hdr.uid == 99:
        raise RuntimeError("a bug in a handler")
    if req.hdr.uid == 98:
        time.sleep(1.5)
    return mpb.MdsInfoReply(hdr=cpb.RepHdr(), uuid=f"peer={peer} xid={req.hdr.xid}",
                            fsname=threading.current_thread().name)


@pytest.fixture
def server():
    srv = LaneServer("t", SVC, {"Info": Handler(mpb.MdsInfoRequest, _info)})
    srv.start("127.0.0.1")
    yield srv
    srv.stop()


def _client(srv: LaneServer, token: bytes) -> LaneClient:
    return LaneClient("127.0.0.1", srv.port, token, SVC)


def _req(xid: int, uid: int = 0) -> mpb.MdsInfoRequest:
    return mpb.MdsInfoRequest(hdr=cpb.ReqHdr(client_id="c1", xid=xid, uid=uid))


def test_a_request_is_answered_on_the_connection_that_carried_it_for_its_peer(server):
    cl = _client(server, server.issue("c1"))
    info = cl.method(SVC, "Info")
    for x in range(1, 20):
        rep = info(_req(x), timeout=5)
        assert rep.uuid == f"peer=c1 xid={x}"
    # one caller at a time: one connection, served by one thread that runs the handler itself
    assert server.connections() == 1
    assert rep.fsname.startswith("lane-t-")
    cl.close()


def test_concurrent_callers_each_get_their_own_answer(server):
    cl = _client(server, server.issue("c1"))
    info = cl.method(SVC, "Info")
    got: dict[int, str] = {}

    def run(k: int) -> None:
        for i in range(50):
            x = k * 1000 + i
            got[x] = info(_req(x), timeout=5).uuid
    ths = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    assert got == {x: f"peer=c1 xid={x}" for x in got} and len(got) == 200
    cl.close()


def test_an_unknown_token_is_refused(server):
    server.issue("c1")
    cl = _client(server, b"\0" * 16)
    with pytest.raises(LaneRefused) as ei:
        cl.method(SVC, "Info")(_req(1), timeout=5)
    assert ei.value.errno == errno.ENOTCONN and "unknown lane token" in ei.value.message


def test_a_client_of_another_service_version_is_refused(server, monkeypatch):
    token = server.issue("c1")
    cl = _client(server, token)
    cl._digest = b"12345678"
    with pytest.raises(LaneRefused, match="another version"):
        cl.method(SVC, "Info")(_req(1), timeout=5)


def test_a_new_token_retires_the_old_one(server):
    old = server.issue("c1")
    new = server.issue("c1")
    with pytest.raises(LaneRefused):
        _client(server, old).method(SVC, "Info")(_req(1), timeout=5)
    assert _client(server, new).method(SVC, "Info")(_req(2), timeout=5).uuid == "peer=c1 xid=2"


def test_revoking_a_peer_cuts_its_connections_and_its_token(server):
    cl = _client(server, server.issue("c1"))
    info = cl.method(SVC, "Info")
    info(_req(1), timeout=5)
    server.revoke("c1")
    with pytest.raises(LpError) as ei:
        info(_req(2), timeout=5)        # the pooled connection was cut
    assert ei.value.errno == errno.ENOTCONN
    with pytest.raises(LaneRefused):
        info(_req(3), timeout=5)        # and the token opens no new one


def test_a_failing_handler_answers_an_error_and_the_connection_serves_on(server):
    cl = _client(server, server.issue("c1"))
    info = cl.method(SVC, "Info")
    with pytest.raises(LpError) as ei:
        info(_req(1, uid=99), timeout=5)
    assert ei.value.errno == errno.EIO and "internal error" in ei.value.message
    assert info(_req(2), timeout=5).uuid == "peer=c1 xid=2"
    assert server.connections() == 1


def test_a_late_answer_is_a_timeout_and_the_next_call_works(server):
    cl = _client(server, server.issue("c1"))
    info = cl.method(SVC, "Info")
    with pytest.raises(LpError) as ei:
        info(_req(1, uid=98), timeout=0.3)
    assert ei.value.errno == errno.ETIMEDOUT
    assert info(_req(2), timeout=5).uuid == "peer=c1 xid=2"


def _connect(server: LaneServer) -> socket.socket:
    """A connection to the lane, in TLS when the process has an identity (as the suite's has)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    ident = tls.current()
    return s if ident is None else ident.ssl_context(False).wrap_socket(s, server_hostname="mds.lustrepy")


def _hung_up(s: socket.socket) -> bool:
    """The server closed the connection (TLS may say so with an abrupt end)."""
    try:
        return s.recv(16) == b""
    except (ssl.SSLEOFError, ConnectionResetError):
        return True


def _raw(server: LaneServer, token: bytes) -> socket.socket:
    s = _connect(server)
    s.sendall(lanemod.frame(lanemod.HELLO, 0, token + server.digest))
    assert lanemod.read_frame(s).method == lanemod.HELLO
    return s


def test_bad_frames_get_an_error_or_lose_their_connection_only(server):
    token = server.issue("c1")
    s = _raw(server, token)
    s.sendall(lanemod.frame(999, 7, b""))                  # no such method
    f = lanemod.read_frame(s)
    assert (f.method, f.tag) == (lanemod.ERROR, 7) and b"no method" in f.payload
    info = 1 + lanemod.method_table(SVC)[0].index("Info")
    s.sendall(lanemod.frame(info, 8, b"\xff\xff\xff"))
    f = lanemod.read_frame(s)
    assert (f.method, f.tag, f.payload) == (lanemod.ERROR, 8, b"undecodable request")
    s.sendall(lanemod.frame(info, 9, _req(9).SerializeToString(), 3) + b"abc")   # data for a method without
    f = lanemod.read_frame(s)
    assert (f.method, f.tag, f.payload) == (lanemod.ERROR, 9, b"this method takes no data")
    s.sendall(struct.pack("!IIHQ", 10, lanemod.MAX_DATA + 1, 1, 9))     # data past the limit
    assert _hung_up(s)                                     # the server hung up
    s.close()
    s = _raw(server, token)
    s.sendall(struct.pack("!IIHQ", lanemod.MAX_PAYLOAD + 1, 0, 1, 9))   # a length past the limit
    assert _hung_up(s)                                     # the server hung up
    s.close()
    # others are served as before
    assert _client(server, token).method(SVC, "Info")(_req(3), timeout=5).uuid == "peer=c1 xid=3"


def test_a_connection_without_a_hello_is_refused(server):
    s = _connect(server)
    s.sendall(lanemod.frame(1, 1, b""))
    f = lanemod.read_frame(s)
    assert f.method == lanemod.ERROR and b"hello" in f.payload
    assert _hung_up(s)
    s.close()


def test_a_stopped_server_refuses_connections():
    srv = LaneServer("t", SVC, {"Info": Handler(mpb.MdsInfoRequest, _info)})
    srv.start("127.0.0.1")
    cl = _client(srv, srv.issue("c1"))
    info = cl.method(SVC, "Info")
    info(_req(1), timeout=5)
    srv.stop()
    with pytest.raises(LpError) as ei:
        info(_req(2), timeout=2)
    assert ei.value.errno == errno.ENOTCONN


def _echo_reversed(req: mpb.MdsInfoRequest, peer: str, data: memoryview, out) -> tuple[mpb.MdsInfoReply, memoryview]:
    if req.hdr.uid == 97:
        raise LpError(errno.ENOSPC, "no room for it")
    buf = out(len(data))
    buf[:] = data[::-1]
    return mpb.MdsInfoReply(hdr=cpb.RepHdr(), uuid=f"{peer}:{len(data)}"), buf


def test_bulk_data_travels_beside_the_message_both_ways():
    srv = LaneServer("t", SVC, {"Info": Handler(mpb.MdsInfoRequest, _echo_reversed, bulk=True)})
    srv.start("127.0.0.1")
    try:
        cl = _client(srv, srv.issue("c1"))
        echo = cl.bulk_method(SVC, "Info")
        # sizes up and down: a connection's reused buffers never show an earlier request's bytes
        for n in (3, 1 << 20, 5, 20 << 20, 4096, 0):
            parts = [os.urandom(n // 2), memoryview(os.urandom(n - n // 2))]
            rep, data = echo(_req(1), data=parts, timeout=10)
            assert rep.uuid == f"c1:{n}"
            assert bytes(data) == (bytes(parts[0]) + bytes(parts[1]))[::-1]
        with pytest.raises(LpError) as ei:
            echo(_req(2, uid=97), data=[b"x"], timeout=5)
        assert ei.value.errno == errno.EIO and "no room for it" in ei.value.message
        assert echo(_req(3), data=[b"ab"], timeout=5)[1].tobytes() == b"ba"
        assert srv.connections() == 1
        with pytest.raises(LpError) as ei:
            echo(_req(4), data=[memoryview(bytearray(lanemod.MAX_DATA + 1))], timeout=5)
        assert ei.value.errno == errno.EINVAL
    finally:
        srv.stop()


def test_a_hello_with_data_loses_its_connection(server):
    token = server.issue("c1")
    s = _connect(server)
    s.sendall(lanemod.frame(lanemod.HELLO, 0, token + server.digest, 4) + b"junk")
    try:
        assert _hung_up(s)                # hung up ...
    except ConnectionResetError:
        pass                                    # ... with "junk" unread
    s.close()


def test_a_pair_reaches_the_host_that_serves_and_a_failed_connect_rests_the_lane(server):
    cl = LaneClient(["127.0.0.3", "127.0.0.1"], server.port, server.issue("c1"), SVC)
    info = cl.method(SVC, "Info")
    assert info(_req(1), timeout=5).uuid == "peer=c1 xid=1"     # nothing on 127.0.0.3: the next host
    assert cl.host == "127.0.0.1"
    port = server.port
    server.stop()
    cl.close()
    dead = LaneClient(["127.0.0.1", "127.0.0.3"], port, b"x" * 16, SVC)
    call = dead.method(SVC, "Info")
    with pytest.raises(LaneLost, match="lane connect to 127.0.0.1"):
        call(_req(2), timeout=5)
    with pytest.raises(LaneLost, match="resting"):   # no connect now: its callers use gRPC meanwhile
        call(_req(3), timeout=5)
