"""Blocking RPC code on the trio thread (lustrepy/rpc/inline.py) against a real request lane:
its waits yield to other tasks, deadlines and cancellation leave no stale reply behind,
and calls that would block go to worker threads."""

from __future__ import annotations

import errno
import threading
import time

import pytest
import trio

from lustrepy.common.errors import LpError
from lustrepy.rpc import inline
from lustrepy.rpc.channel import call
from lustrepy.rpc.lane import Handler, LaneClient, LaneServer
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

pytestmark = pytest.mark.timeout(60)

SVC = mpb.DESCRIPTOR.services_by_name["Mds"]
SLOW = 7        # uid of a request whose handler waits for the gate


class Gate:
    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()

    def handler(self, req: mpb.MdsInfoRequest, peer: str) -> mpb.MdsInfoReply:
        if req.hdr.uid == SLOW:
            self.entered.set()
            self.opened.wait(20)
        return mpb.MdsInfoReply(hdr=cpb.RepHdr(), uuid=f"xid={req.hdr.xid}",
                                fsname=threading.current_thread().name)


@pytest.fixture
def lane():
    gate = Gate()
    srv = LaneServer("t", SVC, {"Info": Handler(mpb.MdsInfoRequest, gate.handler)})
    srv.start("127.0.0.1")
    cl = LaneClient("127.0.0.1", srv.port, srv.issue("c1"), SVC)
    yield cl, gate
    gate.opened.set()
    cl.close()
    srv.stop()


def _req(xid: int, uid: int = 0) -> mpb.MdsInfoRequest:
    return mpb.MdsInfoRequest(hdr=cpb.ReqHdr(client_id="c1", xid=xid, uid=uid))


def test_a_request_waiting_for_its_reply_lets_other_tasks_run(lane):
    cl, gate = lane
    info = cl.method(SVC, "Info")
    done: list[str] = []

    async def slow() -> None:
        rep = await inline.run(info, _req(1, SLOW), timeout=30)
        done.append(rep.uuid)

    async def fast() -> None:
        await trio.to_thread.run_sync(gate.entered.wait, 10)
        rep = await inline.run(info, _req(2), timeout=30)     # the slow one is still waiting
        done.append(rep.uuid)
        gate.opened.set()

    async def main() -> None:
        async with trio.open_nursery() as n:
            n.start_soon(slow)
            n.start_soon(fast)

    t0 = time.monotonic()
    trio.run(main)
    assert done == ["xid=2", "xid=1"]
    assert time.monotonic() - t0 < 10       # the slow request did not hold the thread until the gate's timeout


def test_a_deadline_passed_is_etimedout_and_the_next_call_gets_its_own_reply(lane):
    cl, gate = lane
    info = cl.method(SVC, "Info")

    async def main() -> list[str]:
        with pytest.raises(LpError) as ei:
            await inline.run(info, _req(1, SLOW), timeout=0.3)
        assert ei.value.errno == errno.ETIMEDOUT
        gate.opened.set()                   # the late reply to xid 1 goes to a closed connection
        return [(await inline.run(info, _req(x), timeout=5, spin=0.01)).uuid for x in (2, 3)]

    assert trio.run(main) == ["xid=2", "xid=3"]


def test_a_cancelled_call_leaves_no_reply_for_the_next(lane):
    cl, gate = lane
    info = cl.method(SVC, "Info")

    async def main() -> str:
        with trio.move_on_after(0.3) as scope:
            await inline.run(info, _req(1, SLOW), timeout=30)
        assert scope.cancelled_caught
        gate.opened.set()
        return (await inline.run(info, _req(2), timeout=5)).uuid

    assert trio.run(main) == "xid=2"


def test_a_call_that_would_block_runs_in_a_worker_thread_and_the_lane_on_the_trio_thread(lane):
    cl, _ = lane
    info = cl.method(SVC, "Info")
    seen: dict[str, threading.Thread] = {}

    def grpc_like(request: mpb.MdsInfoRequest, timeout: float) -> str:
        seen["grpc"] = threading.current_thread()
        return "answered"

    def mdc_like() -> str:
        seen["mdc"] = threading.current_thread()
        call(info, _req(1), timeout=5)
        inline.sleep(0.01)
        return call(grpc_like, _req(2), timeout=5)

    async def main() -> str:
        seen["trio"] = threading.current_thread()
        return await inline.run(mdc_like)

    assert trio.run(main) == "answered"
    assert seen["mdc"] is seen["trio"]
    assert seen["grpc"] is not seen["trio"]
    # outside trio nothing changes: the same call blocks in the caller's thread
    assert mdc_like() == "answered" and seen["grpc"] is threading.current_thread()
