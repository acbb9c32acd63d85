"""MDS recovery with real processes: after a replay barrier and kill -9, the MDS comes back
with everything after the barrier lost, and the clients it knew replay what it had answered,
in transno order, with the FIDs, open handles, objects and sequences their replies gave.
A client that does not come back holds the others up for the window only; a replay that
no longer applies fails alone; a clean restart runs nothing twice."""

from __future__ import annotations

import errno
import os
import signal
import time

import pytest

from lustrepy.client.mdc import Mdc
from lustrepy.common.errors import LpError
from lustrepy.common.layout import Layout
from lustrepy.ctl import query
from lustrepy.rpc.convert import fid_from_pb, layout_from_pb
from tests.mds.test_service import _object_exists
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(120)

IT_OPEN = 4
IT_OPEN_CREATE = IT_OPEN | 8    # IT_OPEN | IT_CREATE
IT_GETATTR = 1


def _client(c: Cluster, n_osts: int = 0) -> Mdc:
    m = Mdc(c.mds.address, c.fsname, with_locks=True)
    wait_for(lambda: _connects(m), what="MDS connect")
    if n_osts:
        wait_for(lambda: sum(o.active and o.precreated > 0 for o in m.statfs().osts) == n_osts, what="OSTs ready")
    return m


def _connects(m: Mdc) -> bool:
    try:
        m.connect()
        return True
    except LpError:
        return False


def _restart_after_kill(c: Cluster, window: float) -> None:
    c.mds.stop(signal.SIGKILL)
    c.mds = c.mds_proc("--recovery-window", str(window)).start()


def test_replays_give_back_the_same_fids_handles_objects_and_sequences(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start(2, mds_args=("--recovery-window", "30"))
        a, b = _client(c, 2), _client(c, 2)
        top = fid_from_pb(a.mkdir(a.root, b"top").attr.fid)
        a.sync()
        barrier = query.replay_barrier(c.mds.address)
        dirs = {i: fid_from_pb((a if i % 2 else b).mkdir(top, b"d%d" % i).attr.fid) for i in range(10)}
        made = a.intent(IT_OPEN_CREATE, parent=top, name=b"striped", open_flags=os.O_CREAT | os.O_RDWR,
                        layout=Layout(stripe_count=2))
        lo = layout_from_pb(made.layout)
        assert len(lo.objects) == 2
        a.rename(top, b"d1", dirs[2], b"under")
        b.rmdir(top, b"d4")
        a.setattr(dirs[3], mode=0o700, valid=1)
        b.setxattr(dirs[5], b"user.k", b"v")
        seq, _ = b.alloc_seq()
        assert a.kept() == 8 and b.kept() == 8          # every update since the barrier
        for m in (a, b):
            assert all(it.transno > barrier for it in m.replay.items())

        _restart_after_kill(c, 30)
        names = sorted(e.name for e in a.listdir(top))      # waits until both have replayed
        assert names == sorted([b"d0", b"d2", b"d3", b"d5", b"d6", b"d7", b"d8", b"d9", b"striped"])
        assert [e.name for e in b.listdir(dirs[2])] == [b"under"]
        for i in (0, 2, 3, 5):
            assert fid_from_pb(b.intent(IT_GETATTR, parent=top, name=b"d%d" % i).attr.fid) == dirs[i]
        got = b.intent(IT_OPEN, parent=top, name=b"striped", open_flags=os.O_RDONLY)
        assert fid_from_pb(got.attr.fid) == fid_from_pb(made.attr.fid)
        assert layout_from_pb(got.layout).objects == lo.objects
        b.close_handle(got.open_handle)
        assert all(_object_exists(c, o.ost_index, o.object_id) for o in lo.objects)
        assert b.intent(IT_GETATTR, parent=top, name=b"d3").attr.mode & 0o777 == 0o700
        assert b.getxattr(dirs[5], b"user.k") == b"v"
        a.close_handle(made.open_handle)                    # the handle the replay gave back
        fresh = _client(c)
        assert fresh.alloc_seq()[0] != seq                  # b's sequence stayed b's
        other = fresh.intent(IT_OPEN_CREATE, parent=top, name=b"new", open_flags=os.O_CREAT | os.O_RDWR,
                             layout=Layout(stripe_count=2))
        assert not set(layout_from_pb(other.layout).objects) & set(lo.objects)
        assert fid_from_pb(other.attr.fid) not in set(dirs.values())
        fresh.close_handle(other.open_handle)
        rec = query.mds_info(c.mds.address).recovery
        assert rec is not None and rec.state == "complete" and rec.replays_failed == 0
        assert rec.clients_expected == 2 and rec.clients_recovered == 2
        for m in (a, b, fresh):
            m.close()
    finally:
        c.stop()


def test_a_client_that_does_not_come_back_holds_the_others_for_the_window_only(tmp_path):
    window = 4.0
    c = Cluster(tmp_path)
    try:
        c.start(0, mds_args=("--recovery-window", str(window)))
        a = _client(c)
        gone = Mdc(c.mds.address, c.fsname)             # no lock client: it never notices the restart
        gone.connect()
        top = fid_from_pb(a.mkdir(a.root, b"top").attr.fid)
        query.replay_barrier(c.mds.address)
        x = fid_from_pb(gone.mkdir(top, b"x").attr.fid)        # lost with its client
        a.rename(top, b"x", top, b"y")                          # depends on it: cannot apply
        a.mkdir(top, b"z")                                      # applies
        _restart_after_kill(c, window)
        t0 = time.monotonic()
        names = sorted(e.name for e in a.listdir(top))
        waited = time.monotonic() - t0
        assert names == [b"z"]
        assert window - 1.5 <= waited < window + 10
        failed = list(a.replay.failed.values())
        assert [e for e, _ in failed] == [errno.ENOENT]
        rec = query.mds_info(c.mds.address).recovery
        assert rec is not None and (rec.clients_expected, rec.clients_recovered, rec.clients_evicted) == (2, 1, 1)
        assert (rec.replays_applied, rec.replays_failed) == (1, 1)
        with pytest.raises(LpError) as e:                       # its FID was never made again
            a.intent(IT_GETATTR, fid=x)
        assert e.value.errno in (errno.ENOENT, errno.ESTALE)
        late = _client(c)                                       # a new client is served at once now
        assert sorted(e.name for e in late.listdir(top)) == [b"z"]
        a.close()
        late.close()
    finally:
        c.stop()


def test_a_clean_restart_runs_nothing_twice(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start(0, mds_args=("--recovery-window", "30"))
        a = _client(c)
        top = fid_from_pb(a.mkdir(a.root, b"top").attr.fid)
        a.mkdir(top, b"p")
        a.rename(top, b"p", top, b"q")
        a.mkdir(top, b"p")                      # run again, the rename would fail or move this one
        assert a.kept() >= 3
        c.mds.stop()                            # SIGTERM: everything is synced before it exits
        c.mds = c.mds_proc("--recovery-window", "30").start()
        assert sorted(e.name for e in a.listdir(top)) == [b"p", b"q"]
        rec = query.mds_info(c.mds.address).recovery
        assert rec is not None and rec.state == "complete"
        assert (rec.replays_applied, rec.replays_failed) == (0, 0) and not a.replay.failed
        a.close()
    finally:
        c.stop()
