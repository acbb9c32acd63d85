"""Remote directories on real servers, through the metadata protocol: a directory whose name is on
MDT0 and whose inode and entries are on MDT1, made and removed as one operation across both."""

from __future__ import annotations

import errno
import signal
import sqlite3

import pytest

from lustrepy.client.mdc import Mdc
from lustrepy.common.errors import LpError
from lustrepy.common.fid import ROOT_FID
from lustrepy.common.protocol import IT, SA
from lustrepy.common.records import Cred
from lustrepy.rpc.convert import fid_from_pb
from tests.support.dne import all_active, fld
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(180)


def _rows(c, mdt: str, sql: str):
    db = sqlite3.connect(c.root / mdt / "mdt.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_remote_directory_lives_on_its_mdt(two):
    c, m0, m1 = two
    rep = m0.mkdir(ROOT_FID, b"far", 0o777, mdt_index=1)
    fid = fid_from_pb(rep.attr.fid)
    assert fld(c.mds.address).mdt_of(fid) == 1
    assert rep.parent_attr.nlink == 3                       # root counts the remote subdirectory
    # the name on MDT0 says where the inode is
    look = m0.intent_raw(int(IT.LOOKUP | IT.GETATTR), parent=ROOT_FID, name=b"far")
    assert look.hdr.errno == 0 and look.remote and look.remote_mdt == 1 and fid_from_pb(look.attr.fid) == fid
    assert not look.lock.cookie
    # MDT1 holds its attributes and serves its entries
    got = m1.intent(int(IT.GETATTR), fid=fid)
    assert (got.attr.mode & 0o7777, got.attr.uid, got.attr.nlink) == (0o777, 0, 2)
    m1.create(fid, b"f", cred=Cred(1000, 1000))
    assert [e.name for e in m1.listdir(fid)] == [b"f"]
    # removal: refused while not empty (nothing changes anywhere), then whole
    with pytest.raises(LpError) as ei:
        m0.rmdir(ROOT_FID, b"far")
    assert ei.value.errno == errno.ENOTEMPTY
    assert m0.intent_raw(int(IT.LOOKUP), parent=ROOT_FID, name=b"far").remote
    m1.unlink(fid, b"f", Cred(1000, 1000))
    with pytest.raises(LpError) as ei:                     # root's directory: not a user's to remove
        m0.rmdir(ROOT_FID, b"far", Cred(1000, 1000))
    assert ei.value.errno == errno.EACCES
    rep = m0.rmdir(ROOT_FID, b"far")
    assert rep.parent_attr.nlink == 2
    assert m0.intent_raw(int(IT.LOOKUP), parent=ROOT_FID, name=b"far").hdr.errno == errno.ENOENT
    assert m1.intent_raw(int(IT.GETATTR), fid=fid).hdr.errno == errno.ESTALE
    assert _rows(c, "mdt", "SELECT count(*) FROM dne_log") == [(0,)]
    assert _rows(c, "mdt1", "SELECT count(*) FROM remote_names") == [(0,)]


def test_remote_mkdir_checks_like_a_local_one(two):
    c, m0, m1 = two
    m0.mkdir(ROOT_FID, b"taken", 0o755, mdt_index=1)
    for name, cred, mdt, err in ((b"taken", Cred(), 1, errno.EEXIST), (b"x", Cred(1000, 1000), 1, errno.EACCES),
                                 (b"y", Cred(), 7, errno.EINVAL), (b"a/b", Cred(), 1, errno.EINVAL)):
        with pytest.raises(LpError) as ei:
            m0.mkdir(ROOT_FID, name, 0o755, cred, mdt_index=mdt)
        assert ei.value.errno == err, name
    # MDT1 made exactly one directory, named on MDT0
    assert _rows(c, "mdt1", "SELECT name, mdt FROM remote_names") == [(b"taken", 0)]
    # a remote directory renamed, in its directory and to another one: MDT1 holds its name as it is
    here = fid_from_pb(m0.mkdir(ROOT_FID, b"here", 0o755).attr.fid)
    m0.rename(ROOT_FID, b"taken", ROOT_FID, b"moved")
    assert m0.intent_raw(int(IT.LOOKUP), parent=ROOT_FID, name=b"moved").remote
    assert _rows(c, "mdt1", "SELECT name, mdt FROM remote_names") == [(b"moved", 0)]
    m0.rename(ROOT_FID, b"moved", here, b"in")
    assert m0.intent_raw(int(IT.LOOKUP), parent=here, name=b"in").remote
    assert _rows(c, "mdt1", "SELECT name, mdt, parent_oid FROM remote_names") == [(b"in", 0, here.oid)]
    assert _rows(c, "mdt", f"SELECT nlink FROM inodes WHERE seq = {here.seq} AND oid = {here.oid}") == [(3,)]
    assert _rows(c, "mdt", "SELECT count(*) FROM rename_lock") == [(0,)]
    assert _rows(c, "mdt", "SELECT count(*) FROM dne_log") == [(0,)]


def test_a_remote_mkdir_waits_out_a_dead_mdt_and_completes_after_restarts(tmp_path):
    """The other MDT down: the request gives up waiting, the operation stays logged (nothing applied),
    and completes once that MDT is back, also across a crash of the coordinator."""
    c = Cluster(tmp_path).start(1, mds_args=("--dne-wait", "1.5"), n_mdts=2)
    m0 = None
    try:
        wait_for(lambda: all_active(c.mds.address, 2), what="MDT1 active")
        m0 = Mdc(c.mds.address, c.fsname, client_id="admin:t0", with_locks=True, resend_for=2)
        m0.connect()
        c.mdts[0].stop(signal.SIGKILL)
        with pytest.raises(LpError) as ei:
            m0.mkdir(ROOT_FID, b"later", 0o755, mdt_index=1)
        assert ei.value.errno == errno.ETIMEDOUT
        assert m0.intent_raw(int(IT.LOOKUP), parent=ROOT_FID, name=b"later").hdr.errno == errno.ENOENT
        assert _rows(c, "mdt", "SELECT count(*) FROM dne_log") == [(1,)]
        m0.close()
        m0 = None
        c.mds.stop(signal.SIGKILL)                      # the coordinator dies with the operation logged
        c.mds = c.mds_proc("--dne-wait", "1.5", "--recovery-window", "1").start()
        c.mdts[0] = c.mdt_proc(1, "--dne-wait", "1.5").start()
        m0 = Mdc(c.mds.address, c.fsname, client_id="admin:t2", with_locks=True)
        m0.connect()
        look = wait_for(lambda: (lambda r: r if r.remote else None)(
            m0.intent_raw(int(IT.LOOKUP), parent=ROOT_FID, name=b"later")), timeout=30, what="the redo")
        assert look.remote_mdt == 1
        assert _rows(c, "mdt", "SELECT count(*) FROM dne_log") == [(0,)]
        assert _rows(c, "mdt1", "SELECT name FROM remote_names") == [(b"later",)]
    finally:
        if m0 is not None:
            m0.close()
        c.stop()


def test_an_owner_change_reaches_a_dead_mdts_stub_after_restarts(tmp_path):
    """chown of MDT1's inode named on MDT0 while MDT0 is down: MDT1 logs it and, once MDT0 is back
    (MDT1 killed meanwhile too), MDT0's stub of the inode takes the new owner."""
    c = Cluster(tmp_path).start(1, mds_args=("--dne-wait", "1.5"), n_mdts=2)
    m0 = m1 = None
    stub = ("SELECT i.uid, i.gid FROM inodes i JOIN remote_inodes r ON r.inode = i.id "
            "JOIN dentries d ON d.child = i.id WHERE d.name = X'6C6E'")       # "ln"
    try:
        wait_for(lambda: all_active(c.mds.address, 2), what="MDT1 active")
        m0 = Mdc(c.mds.address, c.fsname, client_id="admin:t0", with_locks=True)
        m0.connect()
        m1 = Mdc(c.mdts[0].address, c.fsname, client_id="admin:t1", with_locks=True, resend_for=2)
        m1.connect()
        far = fid_from_pb(m0.mkdir(ROOT_FID, b"far", 0o777, mdt_index=1).attr.fid)
        f = fid_from_pb(m1.create(far, b"f").attr.fid)
        m0.link(f, ROOT_FID, b"ln")                         # MDT0's name of MDT1's file: a stub there
        assert _rows(c, "mdt", stub) == [(0, 0)]
        m0.close()
        m0 = None
        c.mds.stop(signal.SIGKILL)
        m1.setattr(f, valid=int(SA.UID | SA.GID), uid=2000, gid=2001)
        m1.sync()
        assert _rows(c, "mdt1", "SELECT count(*) FROM dne_log") == [(1,)]
        m1.close()
        m1 = None
        c.mdts[0].stop(signal.SIGKILL)                      # the inode's MDS dies with the change logged
        c.mds = c.mds_proc("--dne-wait", "1.5", "--recovery-window", "1").start()
        c.mdts[0] = c.mdt_proc(1, "--dne-wait", "1.5", "--recovery-window", "1").start()
        wait_for(lambda: _rows(c, "mdt", stub) == [(2000, 2001)], timeout=30, what="the stub's new owner")
        wait_for(lambda: _rows(c, "mdt1", "SELECT count(*) FROM dne_log") == [(0,)], timeout=10, what="the log")
    finally:
        for m in (m0, m1):
            if m is not None:
                m.close()
        c.stop()


def test_a_resent_part_is_applied_once(two):
    c, m0, m1 = two
    from lustrepy.rpc.v1 import mds_pb2 as mpb
    from lustrepy.rpc.convert import fid_to_pb
    req = mpb.DneUpdateRequest(coordinator="testfs-MDT0000_UUID", op_id=777, kind=mpb.DneUpdateRequest.MKDIR,
                               parent=fid_to_pb(ROOT_FID), name=b"x", mode=0o755)
    a = m1.grpc_stub.DneUpdate(req, timeout=10)
    b = m1.grpc_stub.DneUpdate(req, timeout=10)
    assert a.hdr.errno == 0 and a.attr.fid == b.attr.fid
    assert _rows(c, "mdt1", "SELECT count(*) FROM remote_names") == [(1,)]
    # taken back as the coordinator would when its name went elsewhere
    undo = mpb.DneUpdateRequest(coordinator="testfs-MDT0000_UUID", op_id=777, kind=mpb.DneUpdateRequest.UNMAKE,
                                fid=a.attr.fid)
    assert m1.grpc_stub.DneUpdate(undo, timeout=10).hdr.errno == 0
    assert _rows(c, "mdt1", "SELECT count(*) FROM remote_names") == [(0,)]
    # a part must name an MDT as its coordinator
    bad = mpb.DneUpdateRequest(coordinator="nobody", op_id=1, kind=mpb.DneUpdateRequest.MKDIR,
                               parent=fid_to_pb(ROOT_FID), name=b"y")
    assert m1.grpc_stub.DneUpdate(bad, timeout=10).hdr.errno == errno.EINVAL


def test_a_directory_cannot_be_moved_under_itself_through_another_mdt(two):
    """/y (MDT0) holds r (MDT1), which holds x (MDT0 again): moving y into x, a rename MDT0 sees
    as local, would close a loop through MDT1; the ancestors over both MDTs say EINVAL (as Linux
    says of a move into itself) and nothing moves."""
    c, m0, m1 = two
    y = fid_from_pb(m0.mkdir(ROOT_FID, b"y", 0o755).attr.fid)
    r = fid_from_pb(m0.mkdir(y, b"r", 0o755, mdt_index=1).attr.fid)
    x = fid_from_pb(m1.mkdir(r, b"x", 0o755, mdt_index=0).attr.fid)
    assert fld(c.mds.address).mdt_of(x) == 0
    with pytest.raises(LpError) as ei:
        m0.rename(ROOT_FID, b"y", x, b"y")
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(LpError) as ei:                     # r (MDT1) into x, below itself
        m0.rename(y, b"r", x, b"r")
    assert ei.value.errno == errno.EINVAL
    assert _rows(c, "mdt", "SELECT count(*) FROM rename_lock") == [(0,)]
    assert m0.intent_raw(int(IT.LOOKUP), parent=ROOT_FID, name=b"y").hdr.errno == 0
    m0.mkdir(ROOT_FID, b"plain", 0o755)
    m0.rename(ROOT_FID, b"plain", x, b"plain")              # no loop possible: it moves
    assert [e.name for e in m0.listdir(x)] == [b"plain"]
