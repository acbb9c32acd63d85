"""LockServer in-process (no gRPC): blocking enqueue, timeouts, exports and eviction.

The shell around the core, with its real threads and clock: waits are on the
condition itself (a lock waiting in the server), never a sleep; the timing
rules are tested in test_core with a fake clock.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest

from lustrepy.common.errors import LpError
from lustrepy.common.records import Lvb
from lustrepy.ldlm import flags as fl
from lustrepy.ldlm.lockd import LockServer
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import ResId
from tests.support.servers import wait_for

EX, PW, PR = LockMode.EX, LockMode.PW, LockMode.PR
R = ResId(0x200000400, 5, 0)
UPDATE = 2


@pytest.fixture
def ls() -> Iterator[LockServer]:
    server = LockServer("t-MDT0000", callback_timeout=0.3, lvb_source=lambda res: Lvb(size=10))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as p:
        yield p


def waiting(ls: LockServer, owner: str) -> bool:
    """Does owner have a lock request waiting in the server?"""
    return any(not i.lock.granted for i in ls.locks(owner))


def test_local_lock_waits_for_local_cancel(ls: LockServer, pool: ThreadPoolExecutor) -> None:
    first = ls.enqueue("mds", R, EX, ibits=UPDATE, local=True)
    fut = pool.submit(ls.enqueue, "mds", R, EX, ibits=UPDATE, local=True, timeout=5)
    wait_for(lambda: waiting(ls, "mds"), 5.0, 0.01, "a waiting request")
    assert not fut.done()
    ls.cancel("mds", [first.cookie])
    second = fut.result(timeout=5)
    assert second.granted and second.cookie != first.cookie
    ls.cancel("mds", [second.cookie, second.cookie, 12345])     # idempotent
    assert ls.locks() == []


def test_nowait_and_timeout(ls: LockServer) -> None:
    held = ls.enqueue("mds", R, EX, ibits=UPDATE, local=True)
    with pytest.raises(LpError) as ei:
        ls.enqueue("mds", R, PR, ibits=UPDATE, flags=fl.BLOCK_NOWAIT, local=True)
    assert ei.value.errno == errno.EAGAIN
    t0 = time.monotonic()
    with pytest.raises(LpError) as ei:
        ls.enqueue("mds", R, PR, ibits=UPDATE, timeout=0.1, local=True)
    assert ei.value.errno == errno.ETIMEDOUT and time.monotonic() - t0 >= 0.1
    # The timed-out request left the queue: it holds nobody back.
    assert [i.lock.cookie for i in ls.locks()] == [held.cookie]
    assert ls.statistics()["enqueue_timeouts"] == 1
    with pytest.raises(LpError) as ei:
        ls.enqueue("mds", R, PR, ibits=UPDATE, flags=0x100, local=True)
    assert ei.value.errno == errno.EINVAL


def test_exports_check_and_reconnect(ls: LockServer) -> None:
    with pytest.raises(LpError) as ei:
        ls.enqueue("c1", R, PR, ibits=UPDATE)
    assert ei.value.errno == errno.ENOTCONN
    gen = ls.connect("c1", "127.0.0.1:999")
    ls.check("c1", gen)
    with pytest.raises(LpError) as ei:
        ls.check("c1", gen + 1)
    assert ei.value.errno == errno.ENOTCONN
    ls.enqueue("c1", R, PR, ibits=UPDATE)
    gen2 = ls.connect("c1")
    assert gen2 != gen
    assert ls.locks("c1") == []                     # a reconnect drops the old export's locks
    with pytest.raises(LpError):
        ls.check("c1", gen)
    [exp] = ls.exports()
    assert (exp.client_id, exp.conn_gen, exp.evicted, exp.callback_stream) == ("c1", gen2, False, False)
    ls.disconnect("c1")
    assert ls.exports() == []


def test_evict_fails_waiters_and_refuses_until_reconnect(ls: LockServer, pool: ThreadPoolExecutor) -> None:
    gen = ls.connect("c1")
    ls.enqueue("mds", R, EX, ibits=UPDATE, local=True)
    fut = pool.submit(ls.enqueue, "c1", R, PR, ibits=UPDATE, timeout=5)
    wait_for(lambda: waiting(ls, "c1"), 5.0, 0.01, "a waiting request")
    ls.evict("c1", "test")
    with pytest.raises(LpError) as ei:
        fut.result(timeout=5)
    assert ei.value.errno == errno.ENOTCONN
    with pytest.raises(LpError) as ei:
        ls.check("c1", gen)
    assert ei.value.message == "evicted"
    with pytest.raises(LpError):
        ls.enqueue("c1", ResId(9), PR)
    gen2 = ls.connect("c1")
    ls.check("c1", gen2)
    assert ls.enqueue("c1", ResId(9), PR).granted


def test_holder_without_stream_is_evicted_by_the_timer(ls: LockServer, caplog: pytest.LogCaptureFixture) -> None:
    ls.connect("c1")
    held = ls.enqueue("c1", R, PR, ibits=UPDATE)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="lustrepy.ldlm.lockd"):
        mine = ls.enqueue("mds", R, EX, ibits=UPDATE, local=True, timeout=5)
    waited = time.monotonic() - t0
    assert mine.granted and waited > 0.3         # never before the callback timer ran out
    assert ls.locks("c1") == [] and ls.statistics()["evictions"] == 1
    [rec] = [r for r in caplog.records if "evicting" in r.getMessage()]
    assert "c1" in rec.getMessage() and str(held.res) in rec.getMessage()


def test_stop_fails_waiters(pool: ThreadPoolExecutor) -> None:
    server = LockServer("t-OST0000", callback_timeout=5)
    server.start()
    server.enqueue("oss", R, EX, local=True)
    fut = pool.submit(server.enqueue, "oss", R, EX, local=True)
    wait_for(lambda: waiting(server, "oss"), 5.0, 0.01, "a waiting request")
    server.stop()
    with pytest.raises(LpError) as ei:
        fut.result(timeout=5)
    assert ei.value.errno == errno.ESHUTDOWN


def test_glimpse_without_writers_is_the_lvb_source(ls: LockServer) -> None:
    assert ls.glimpse_lvb(R, timeout=0.1) == Lvb(size=10)
    assert ls.glimpse_if_conflicting("c1", R, PR, extent=(0, 10)) is None


def test_many_threads_never_share_an_exclusive_lock(ls: LockServer) -> None:
    inside = {EX: 0, PR: 0}
    guard = threading.Lock()
    bad: list[str] = []

    def work(i: int) -> None:
        mode = EX if i % 2 else PR
        for _ in range(15):
            lk = ls.enqueue(f"t{i}", R, mode, ibits=UPDATE, local=True, timeout=10)
            with guard:
                inside[mode] += 1
                if inside[EX] > 1 or (inside[EX] and inside[PR]):
                    bad.append(f"{inside}")
            time.sleep(0.001)
            with guard:
                inside[mode] -= 1
            ls.cancel(f"t{i}", [lk.cookie])

    with ThreadPoolExecutor(6) as p:
        list(p.map(work, range(6)))
    assert bad == [] and ls.locks() == []
