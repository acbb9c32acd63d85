"""Lock clients and a lock server over real gRPC on 127.0.0.1: revocation, eviction, glimpse, growth."""

from __future__ import annotations

import errno
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import grpc
import pytest

from lustrepy.common.errors import LpError
from lustrepy.ldlm import flags as fl
from lustrepy.ldlm.extent import EOF, Extent
from lustrepy.ldlm.lockd import LockServer
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import ResId
from lustrepy.ldlm.wire import lock_to_pb
from lustrepy.rpc.channel import call
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import ldlm_pb2 as lpb
from lustrepy.rpc.v1 import ldlm_pb2_grpc

from .conftest import CALLBACK_TIMEOUT, Peer

EX, PW, PR = LockMode.EX, LockMode.PW, LockMode.PR
OBJ = ResId(0, 42, 0)           # OST 0, object 42
INODE = ResId(0x200000400, 3, 0)
LOOKUP, UPDATE = 1, 2

MakePeer = Callable[..., Peer]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as p:
        yield p


def wait_for(cond: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_conflict_revokes_holder_then_grants(make_peer: MakePeer, lock_server: LockServer) -> None:
    a, b = make_peer("client-a"), make_peer("client-b")
    ga = a.client.enqueue(INODE, PR, ibits=LOOKUP | UPDATE)
    assert ga.lock is not None and ga.lock.granted and ga.lvb is not None
    assert a.client.match(INODE, PR, ibits=UPDATE) == ga.lock.cookie
    # Disjoint bits do not conflict.
    gb0 = b.client.enqueue(INODE, EX, ibits=16)
    assert a.blocking == []
    gb = b.client.enqueue(INODE, EX, ibits=UPDATE, timeout=5)
    assert gb.lock is not None and gb.lock.granted
    assert [d.cookie for d in a.blocking] == [ga.lock.cookie]
    wait_for(lambda: a.client.match(INODE, PR, ibits=UPDATE) is None)
    assert gb0.lock is not None
    assert sorted(i.lock.cookie for i in lock_server.locks()) == sorted([gb0.lock.cookie, gb.lock.cookie])
    assert lock_server.statistics()["evictions"] == 0


def test_ignored_callback_evicts_holder_then_reconnect_works(make_peer: MakePeer, lock_server: LockServer,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    a, b = make_peer("client-a"), make_peer("client-b")
    ga = a.client.enqueue(OBJ, PW, extent=(0, 4095), hold=True)    # held and never released: a hung user
    assert ga.lock is not None
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="lustrepy.ldlm.lockd"):
        gb = b.client.enqueue(OBJ, PR, extent=(0, 4095), timeout=5 * CALLBACK_TIMEOUT)
    waited = time.monotonic() - t0
    assert gb.lock is not None and gb.lock.granted
    assert waited > CALLBACK_TIMEOUT            # never before the callback timer ran out (see test_core)
    assert [d.cookie for d in a.blocking] == [ga.lock.cookie]     # flushed, but never let go
    assert a.evicted.wait(5)
    assert [r.getMessage() for r in caplog.records if "evicting" in r.getMessage() and "client-a" in r.getMessage()
            and str(OBJ) in r.getMessage()]
    with pytest.raises(LpError) as ei:
        a.client.enqueue(ResId(0, 43, 0), PR, extent=(0, 1))
    assert ei.value.errno == errno.ENOTCONN
    assert a.client.locks() == []
    a.client.release(ga.lock.cookie)      # the late release of an evicted lock is harmless
    a.connect()
    g = a.client.enqueue(ResId(0, 43, 0), PW, extent=(0, 1))
    assert g.lock is not None and g.lock.granted
    assert lock_server.statistics()["evictions"] == 1


def test_glimpse_returns_writer_size_without_revoking(make_peer: MakePeer, lock_server: LockServer) -> None:
    w, r = make_peer("writer"), make_peer("reader")
    w.size = 1 << 20
    gw = w.client.enqueue(OBJ, PW, extent=(0, 65535))
    assert gw.lock is not None
    g = r.client.enqueue(OBJ, PR, extent=(0, EOF), flags=fl.GLIMPSE)
    assert g.lock is None and g.lvb is not None
    assert g.lvb.size == 1 << 20 and g.lvb.mtime_ns == 7
    assert w.blocking == [] and w.client.match(OBJ, PW, extent=(0, 100)) == gw.lock.cookie
    # Without a conflicting writer, a glimpse enqueue is a plain enqueue.
    g2 = r.client.enqueue(ResId(0, 99, 0), PR, extent=(0, EOF), flags=fl.GLIMPSE)
    assert g2.lock is not None and g2.lvb is not None and g2.lvb.size == 100
    # Server-side API, too: the larger of the source and the holders' answers.
    w.size = 50
    assert lock_server.glimpse_lvb(OBJ, timeout=2).size == 100


def test_lone_writer_extent_grows_to_eof(make_peer: MakePeer) -> None:
    w = make_peer("writer")
    g = w.client.enqueue(OBJ, PW, extent=(1 << 20, (1 << 20) + 8191))
    assert g.lock is not None and g.lock.extent == Extent(1 << 20, EOF)
    # The grown lock serves later writes without a new request.
    assert w.client.match(OBJ, PW, extent=(5 << 20, (6 << 20) - 1)) == g.lock.cookie
    assert w.client.match(OBJ, PR, extent=(0, 10)) is None
    g2 = w.client.enqueue(OBJ, PW, extent=(0, 4095), flags=fl.NO_EXPANSION)
    assert g2.lock is not None and g2.lock.extent == Extent(0, 4095)


def test_lru_retires_unused_locks_as_early_cancels(make_peer: MakePeer, lock_server: LockServer) -> None:
    c = make_peer("client-a", lru_size=2)
    cookies = []
    for i in range(3):
        g = c.client.enqueue(ResId(0, 100 + i, 0), PR, extent=(0, 10))
        assert g.lock is not None
        cookies.append(g.lock.cookie)
    wait_for(lambda: c.client.statistics()["early_cancels"] == 1)
    assert [d.cookie for d in c.blocking] == [cookies[0]]      # flushed before it goes
    assert c.client.match(ResId(0, 100, 0), PR) is None
    assert len(lock_server.locks("client-a")) == 3               # not yet told
    c.client.enqueue(ResId(0, 200, 0), PR, extent=(0, 10))      # piggybacks the early cancel
    held = {i.lock.cookie for i in lock_server.locks("client-a")}
    assert cookies[0] not in held and cookies[2] in held
    # That enqueue pushed cookies[1] out in turn; it goes with the next request.
    wait_for(lambda: c.client.statistics()["early_cancels"] == 1)
    assert c.client.take_early_cancels() == [cookies[1]]


def test_lock_retired_by_lru_is_flushed_before_a_conflicting_grant(make_peer: MakePeer, pool: ThreadPoolExecutor,
                                                                   lock_server: LockServer) -> None:
    c, other = make_peer("client-a", lru_size=1), make_peer("client-b")
    c.flush_s = 0.3
    g = c.client.enqueue(OBJ, PW, extent=(0, 4095))
    assert g.lock is not None
    c.client.enqueue(ResId(0, 7, 0), PR, extent=(0, 1))         # pushes g out: its flush starts
    wait_for(lambda: c.blocking)
    granted = other.client.enqueue(OBJ, PR, extent=(0, 4095), timeout=5)
    granted_at = time.monotonic()
    assert granted.lock is not None and c.flushed_at and c.flushed_at[0] <= granted_at
    assert [d.cookie for d in c.blocking] == [g.lock.cookie] and lock_server.statistics()["evictions"] == 0


def test_adopted_intent_lock_is_revoked_even_if_callback_came_first(make_peer: MakePeer, lock_server: LockServer,
                                                                   pool: ThreadPoolExecutor) -> None:
    a, b = make_peer("client-a"), make_peer("client-b")
    # The server grants a lock inside another reply (an MDS intent) ...
    intent = lock_server.enqueue("client-a", INODE, PR, ibits=LOOKUP)
    # ... and a conflicting request revokes it before the client has registered it.
    fut = pool.submit(b.client.enqueue, INODE, EX, LOOKUP, None, 0, 5.0)
    wait_for(lambda: a.client.statistics()["blocking_callbacks"] == 1)
    assert a.client.adopt(lock_to_pb(intent))
    assert a.client.match(INODE, PR, ibits=LOOKUP) is None         # being revoked: never served
    gb = fut.result(timeout=5)
    assert gb.lock is not None and [d.cookie for d in a.blocking] == [intent.cookie]
    # A grant that arrives after the client already gave it back is refused.
    b.client.cancel([gb.lock.cookie])
    late = lock_server.enqueue("client-a", INODE, PR, ibits=LOOKUP)
    fut = pool.submit(b.client.enqueue, INODE, EX, LOOKUP, None, 0, 5.0)
    assert fut.result(timeout=5).lock is not None                  # a cancelled the unknown lock by itself
    assert not a.client.adopt(lock_to_pb(late))


def test_list_and_evict_rpcs(make_peer: MakePeer, channel: grpc.Channel, lock_server: LockServer) -> None:
    a = make_peer("client-a")
    g = a.client.enqueue(INODE, PR, ibits=UPDATE)
    assert g.lock is not None
    stub = ldlm_pb2_grpc.LdlmStub(channel)
    rep = call(stub.List, lpb.LockListRequest(), timeout=5)
    assert rep.hdr.errno == 0
    assert [(s.lock.cookie, s.granted, s.lock.owner) for s in rep.locks] == [(g.lock.cookie, True, "client-a")]
    assert [(e.client_id, e.callback_stream, e.granted_locks) for e in rep.exports] == [("client-a", True, 1)]
    rep = call(stub.Evict, lpb.EvictRequest(client_id="nobody"), timeout=5)
    assert rep.hdr.errno == errno.ENOENT
    rep = call(stub.Evict, lpb.EvictRequest(client_id="client-a"), timeout=5)
    assert rep.hdr.errno == 0
    assert a.evicted.wait(5) and a.client.locks() == []
    assert call(stub.List, lpb.LockListRequest(), timeout=5).evictions == 1


def test_malformed_and_stale_requests_get_errno(make_peer: MakePeer, channel: grpc.Channel) -> None:
    a = make_peer("client-a")
    stub = ldlm_pb2_grpc.LdlmStub(channel)
    hdr = cpb.ReqHdr(client_id="client-a", conn_gen=a.client.conn_gen)
    bad_mode = lpb.LockEnqueueRequest(hdr=hdr, res=cpb.ResId(n0=1), mode=3)
    assert call(stub.Enqueue, bad_mode, timeout=5).hdr.errno == errno.EINVAL
    bad_ext = lpb.LockEnqueueRequest(hdr=hdr, res=cpb.ResId(n0=1), mode=4, has_extent=True,
                                     extent=cpb.Extent(start=9, end=1))
    assert call(stub.Enqueue, bad_ext, timeout=5).hdr.errno == errno.EINVAL
    stale = lpb.LockEnqueueRequest(hdr=cpb.ReqHdr(client_id="client-a", conn_gen=1), res=cpb.ResId(n0=1), mode=4)
    assert call(stub.Enqueue, stale, timeout=5).hdr.errno == errno.ENOTCONN
    nowait_ok = lpb.LockEnqueueRequest(hdr=hdr, res=cpb.ResId(n0=1), mode=4, flags=fl.BLOCK_NOWAIT)
    assert call(stub.Enqueue, nowait_ok, timeout=5).lock.cookie != 0
