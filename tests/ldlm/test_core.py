"""The lock server's sans-I/O core driven by a fake clock: callback timers and eviction,
exports and their streams, glimpse collection, waiters' ends. No threads, no sleeps."""

from __future__ import annotations

import errno

import pytest

from lustrepy.common.errors import LpError
from lustrepy.common.records import Lvb
from lustrepy.ldlm import flags as fl
from lustrepy.ldlm.core import (Callback, CallbackKind, CloseStream, Connection, Effect, Evicted, Failed,
                                GlimpseDone, LockCore, Send)
from lustrepy.ldlm.extent import EOF, Extent
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import BlockingCallback, Granted, Lock, ResId
from lustrepy.ldlm.wire import callback_to_pb
from lustrepy.rpc.v1 import ldlm_pb2 as lpb

EX, PW, PR = LockMode.EX, LockMode.PW, LockMode.PR
INODE = ResId(0x200000400, 5, 0)
OBJ = ResId(0, 42, 0)
UPDATE = 2
TIMEOUT = 10.0


def sends(effects: list[Effect]) -> list[tuple[int, CallbackKind]]:
    return [(e.stream, e.callback.kind) for e in effects if isinstance(e, Send)]


def connected(core: LockCore, client_id: str, now: float = 0.0) -> tuple[int, int]:
    """Connect client_id and bind its callback stream: (conn_gen, stream id)."""
    conn, _ = core.connect(client_id, "peer", now)
    stream, effects = core.bind_stream(client_id, conn.conn_gen)
    assert sends(effects) == [(stream, CallbackKind.NONE)]
    return conn.conn_gen, stream


@pytest.fixture
def core() -> LockCore:
    return LockCore("t-MDT0000", callback_timeout=TIMEOUT)


def test_holder_is_evicted_only_once_its_callback_timer_runs_out(core: LockCore) -> None:
    gen, stream = connected(core, "c1")
    held, _ = core.enqueue("c1", INODE, PR, ibits=UPDATE, now=1.0)
    mine, effects = core.enqueue("mds", INODE, EX, ibits=UPDATE, local=True, now=2.0)
    assert not mine.granted
    [blocking, send] = effects
    assert blocking == BlockingCallback(held, mine)
    assert isinstance(send, Send) and send.stream == stream
    assert (send.callback.kind, send.callback.lock, send.callback.conflicting) == (CallbackKind.BLOCKING, held, mine)
    assert core.expire(2.0 + TIMEOUT) == []             # the timer has not run out yet
    assert core.lock(held.cookie) == held
    effects = core.expire(2.0 + TIMEOUT + 0.1)
    evicted = [e for e in effects if isinstance(e, Evicted)]
    assert [(e.client_id, e.dropped) for e in evicted] == [("c1", 1)]
    assert str(INODE) in evicted[0].reason and "after 10.1s" in evicted[0].reason
    assert sends(effects) == [(stream, CallbackKind.EVICTED)] and CloseStream(stream) in effects
    granted = core.lock(mine.cookie)
    assert granted is not None and granted.granted and Granted(granted) in effects
    assert core.expire(100.0) == [] and core.statistics()["evictions"] == 1
    # Refused until it connects again.
    with pytest.raises(LpError) as ei:
        core.check("c1", gen, 101.0)
    assert (ei.value.errno, ei.value.message) == (errno.ENOTCONN, "evicted")
    with pytest.raises(LpError) as ei:
        core.enqueue("c1", OBJ, PR, now=101.0)
    assert ei.value.errno == errno.ENOTCONN
    gen2, _ = connected(core, "c1", 102.0)
    core.check("c1", gen2, 102.0)
    assert core.enqueue("c1", OBJ, PR, now=102.0)[0].granted


def test_cancel_in_time_stops_the_timer_and_a_new_timeout_applies_at_once(core: LockCore) -> None:
    connected(core, "c1")
    held, _ = core.enqueue("c1", INODE, PR, ibits=UPDATE, now=0.0)
    mine, _ = core.enqueue("mds", INODE, EX, ibits=UPDATE, local=True, now=0.0)
    core.callback_timeout = 2.0                          # set-param at run time
    assert core.expire(1.9) == []
    effects = core.cancel("c1", [held.cookie], 1.95)
    assert [type(e) for e in effects] == [Granted] and effects[0].lock.cookie == mine.cookie
    assert core.expire(50.0) == [] and core.statistics()["evictions"] == 0


def test_a_callback_owed_while_the_stream_is_down_goes_out_when_it_binds(core: LockCore) -> None:
    conn, _ = core.connect("c1", "", 0.0)
    held, _ = core.enqueue("c1", INODE, PR, ibits=UPDATE, now=0.0)
    mine, effects = core.enqueue("mds", INODE, EX, ibits=UPDATE, local=True, now=1.0)
    assert effects == [BlockingCallback(held, mine)]     # for the server's hook; nothing to send on
    stream, effects = core.bind_stream("c1", conn.conn_gen)
    assert sends(effects) == [(stream, CallbackKind.NONE), (stream, CallbackKind.BLOCKING)]
    # A second stream replaces the first and gets the owed callback again.
    stream2, effects = core.bind_stream("c1", conn.conn_gen)
    assert effects[0] == CloseStream(stream) and sends(effects) == [(stream2, CallbackKind.NONE),
                                                                     (stream2, CallbackKind.BLOCKING)]
    core.unbind_stream("c1", stream)                    # the old stream's end changes nothing
    assert core.exports(2.0)[0].callback_stream
    core.unbind_stream("c1", stream2)
    assert not core.exports(2.0)[0].callback_stream
    # Its timer ran from the first callback, stream or not.
    assert any(isinstance(e, Evicted) for e in core.expire(1.0 + TIMEOUT + 0.1))
    with pytest.raises(LpError):
        core.bind_stream("c1", conn.conn_gen)           # an evicted export binds no stream


def test_reconnect_and_disconnect_drop_locks_and_fail_waiters(core: LockCore) -> None:
    _, stream = connected(core, "c1")
    core.enqueue("mds", INODE, EX, ibits=UPDATE, local=True, now=0.0)
    waiting, _ = core.enqueue("c1", INODE, PR, ibits=UPDATE, now=0.0)
    conn, effects = core.connect("c1", "peer2", 1.0)
    assert conn == Connection(conn.conn_gen, True, 1)
    assert effects[0] == CloseStream(stream)
    [failed] = [e for e in effects if isinstance(e, Failed)]
    assert (failed.cookie, failed.error.errno, failed.error.message) == (waiting.cookie, errno.ENOTCONN,
                                                                         "reconnected")
    waiting, _ = core.enqueue("c1", INODE, PR, ibits=UPDATE, now=2.0)
    known, effects = core.disconnect("c1", 3.0)
    assert known and [(e.cookie, e.error.message) for e in effects if isinstance(e, Failed)] == \
        [(waiting.cookie, "disconnected")]
    assert core.exports(3.0) == [] and core.locks("c1", 3.0) == []
    assert core.disconnect("c1", 4.0) == (False, [])
    assert core.evict("nobody", "test", 4.0) == []


def test_evicting_an_evicted_client_that_holds_nothing_does_nothing(core: LockCore) -> None:
    connected(core, "c1")
    assert [type(e) for e in core.evict("c1", "admin", 1.0)][0] is Evicted
    assert core.evict("c1", "admin", 2.0) == []
    assert core.statistics()["evictions"] == 1


def test_waiters_end_with_timeout_or_cancel(core: LockCore) -> None:
    core.enqueue("mds", INODE, EX, ibits=UPDATE, local=True, now=0.0)
    waiting, _ = core.enqueue("mds", INODE, PR, ibits=UPDATE, local=True, now=0.0)
    [failed] = core.give_up(waiting.cookie, 0.5, 0.5)
    assert isinstance(failed, Failed) and failed.cookie == waiting.cookie
    assert failed.error.errno == errno.ETIMEDOUT and "within 0.5s" in failed.error.message
    assert core.lock(waiting.cookie) is None and core.statistics()["enqueue_timeouts"] == 1
    waiting, _ = core.enqueue("mds", INODE, PR, ibits=UPDATE, local=True, now=1.0)
    assert core.cancel("someone-else", [waiting.cookie], 1.0) == []
    [failed] = core.cancel("mds", [waiting.cookie, 12345], 1.0)
    assert isinstance(failed, Failed) and failed.error.errno == errno.ECANCELED
    assert core.give_up(waiting.cookie, 1.0, 2.0) == []             # already gone
    free, _ = core.enqueue("mds", OBJ, PR, local=True, now=2.0)
    assert core.give_up(free.cookie, 1.0, 3.0) == []                # granted meanwhile
    assert core.statistics()["enqueue_timeouts"] == 1


def test_malformed_or_refused_enqueues(core: LockCore) -> None:
    with pytest.raises(LpError) as ei:
        core.enqueue("mds", INODE, PR, ibits=UPDATE, flags=0x100, local=True)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(LpError) as ei:
        core.enqueue("mds", OBJ, PR, extent=(9, 1), local=True)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(LpError) as ei:
        core.enqueue("c9", OBJ, PR, extent=(0, 1))
    assert ei.value.errno == errno.ENOTCONN
    core.enqueue("mds", OBJ, EX, local=True)
    with pytest.raises(LpError) as ei:
        core.enqueue("mds", OBJ, PR, flags=fl.BLOCK_NOWAIT, local=True)
    assert ei.value.errno == errno.EAGAIN and core.statistics()["enqueue_eagain"] == 1


def test_glimpse_asks_one_lock_per_writer_and_merges_the_answers(core: LockCore) -> None:
    _, s1 = connected(core, "w1")
    _, s2 = connected(core, "w2")
    core.connect("w3", "", 0.0)                                     # no stream: not asked
    connected(core, "reader")
    core.enqueue("w1", OBJ, PW, extent=(0, 4095), flags=fl.NO_EXPANSION)
    far, _ = core.enqueue("w1", OBJ, PW, extent=(1 << 20, (1 << 20) + 4095), flags=fl.NO_EXPANSION)
    w2, _ = core.enqueue("w2", OBJ, PW, extent=(8192, 12287), flags=fl.NO_EXPANSION)
    core.enqueue("w3", OBJ, PW, extent=(16384, 20479), flags=fl.NO_EXPANSION)
    core.enqueue("reader", OBJ, PR, extent=(1 << 30, (1 << 30) + 1), flags=fl.NO_EXPANSION)
    core.enqueue("oss", OBJ, PW, extent=(1 << 31, (1 << 31) + 1), local=True, flags=fl.NO_EXPANSION)
    assert core.writer_conflicts("reader", OBJ, PR, extent=(0, EOF))
    assert not core.writer_conflicts("w1", OBJ, PR, extent=(0, 4095))     # its own lock only
    gid, effects = core.glimpse(OBJ)
    asked = {e.stream: e.callback for e in effects if isinstance(e, Send)}
    assert set(asked) == {s1, s2} and not any(isinstance(e, GlimpseDone) for e in effects)
    assert asked[s1].kind == CallbackKind.GLIMPSE and asked[s1].lock == far and asked[s2].lock == w2
    assert core.answer(asked[s1].callback_id, Lvb(size=5000, mtime_ns=9)) == []
    assert core.answer(987654, Lvb(size=1 << 40)) == []                # not a glimpse callback
    result = core.end_glimpse(gid, Lvb(size=100, mtime_ns=20))
    assert result.lvb == Lvb(size=5000, mtime_ns=20) and result.silent == 1
    assert core.answer(asked[s2].callback_id, Lvb(size=1 << 40)) == []   # too late: ignored
    # Every holder answers (one with nothing to say): done before the asker's deadline.
    gid, effects = core.glimpse(OBJ)
    ids = [e.callback.callback_id for e in effects if isinstance(e, Send)]
    assert core.answer(ids[0], None) == []
    assert core.answer(ids[1], Lvb(size=7)) == [GlimpseDone(gid)]
    assert core.end_glimpse(gid, Lvb(size=1)).lvb.size == 7
    assert core.statistics()["glimpses_sent"] == 4


def test_glimpse_without_writers_is_done_at_once(core: LockCore) -> None:
    gid, effects = core.glimpse(OBJ)
    assert effects == [GlimpseDone(gid)]
    assert core.end_glimpse(gid, Lvb(size=10)).lvb == Lvb(size=10)


def test_stop_closes_streams_fails_waiters_and_ends_glimpses(core: LockCore) -> None:
    _, stream = connected(core, "w1")
    core.enqueue("w1", OBJ, PW, extent=(0, 10))
    waiting, _ = core.enqueue("oss", OBJ, EX, local=True)
    gid, _ = core.glimpse(OBJ)
    effects = core.stop()
    assert CloseStream(stream) in effects and GlimpseDone(gid) in effects
    [failed] = [e for e in effects if isinstance(e, Failed)]
    assert failed.cookie == waiting.cookie and failed.error.errno == errno.ESHUTDOWN
    assert core.end_glimpse(gid, Lvb()).silent == 1


def test_listings_follow_the_clock_handed_in(core: LockCore) -> None:
    gen, _ = connected(core, "c1", now=100.0)
    lk, _ = core.enqueue("c1", INODE, PR, ibits=UPDATE, now=101.0)
    core.check("c1", gen, 104.0)
    [exp] = core.exports(110.0)
    assert (exp.client_id, exp.conn_gen, exp.peer, exp.granted_locks) == ("c1", gen, "peer", 1)
    assert (exp.connected_s, exp.idle_s, exp.callback_stream, exp.evicted) == (10.0, 6.0, True, False)
    [info] = core.locks("c1", 111.0)
    assert info.lock == lk and info.age_s == 10.0 and not info.blocking_sent
    assert core.statistics()["exports"] == 1


def test_callbacks_go_on_the_wire_with_the_protocols_values() -> None:
    for kind in CallbackKind:
        assert lpb.CallbackKind.Name(callback_to_pb(Callback(kind)).kind) == f"CB_{kind.name}"
    holder = Lock(7, "c1", OBJ, PW, extent=Extent(0, 9), granted=True)
    waiter = Lock(8, "c2", OBJ, PR, extent=Extent(0, 9))
    msg = callback_to_pb(Callback(CallbackKind.BLOCKING, 3, holder, waiter))
    assert (msg.callback_id, msg.kind, msg.lock.cookie, msg.conflicting.cookie) == (3, lpb.CB_BLOCKING, 7, 8)
    assert msg.lock.extent.end == 9
    bare = callback_to_pb(Callback(CallbackKind.EVICTED, 4))
    assert bare.kind == lpb.CB_EVICTED and not bare.HasField("lock")
