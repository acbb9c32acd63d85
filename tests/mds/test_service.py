"""The MDS over real gRPC: real lustrepy-mds and lustrepy-oss processes, real SQLite.

Covers intents, reint, resends answered from reply records, blocking callbacks,
eviction of a holder that does not answer, and destruction of unlinked files'
objects (also across an MDS restart).
"""

from __future__ import annotations

import errno
import os
import stat
import threading

import pytest

from lustrepy.common.errors import LpError
from lustrepy.common.layout import Layout, decode_lov, encode_lov
from lustrepy.common.protocol import SA
from lustrepy.common.records import Cred
from lustrepy.client.mdc import Mdc
from lustrepy.ldlm.inodebits import IBit
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import attr_from_pb, fid_from_pb, fid_to_pb, layout_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc
from tests.support.servers import Cluster, wait_for

IT_LOOKUP, IT_GETATTR, IT_OPEN, IT_CREAT, IT_LAYOUT = 1, 2, 4, 8, 16

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("svc"))
    try:
        c.start(2, mds_args=("--callback-timeout", "1.5"))
        m = Mdc(c.mds.address, c.fsname)
        m.connect()
        wait_for(lambda: all(o.active and o.precreated > 0 for o in m.statfs().osts) and len(m.statfs().osts) == 2,
                 what="2 active OSTs with precreated objects")
        m.close()
        yield c
    finally:
        c.stop()


@pytest.fixture
def mdc(cluster):
    m = Mdc(cluster.mds.address, cluster.fsname, with_locks=True)
    m.connect()
    yield m
    m.close()


def _mkdir(mdc, name: bytes):
    return fid_from_pb(mdc.mkdir(mdc.root, name).attr.fid)


def test_connect_refuses_unknown_fsname(cluster):
    m = Mdc(cluster.mds.address, "nosuchfs")
    with pytest.raises(LpError) as ei:
        m.connect()
    assert ei.value.errno == errno.ENOENT and "nosuchfs" in ei.value.message
    m.channel.close()


def test_request_without_connect_is_refused(cluster):
    m = Mdc(cluster.mds.address, cluster.fsname)
    with pytest.raises(LpError) as ei:
        m.intent(IT_LOOKUP | IT_GETATTR, fid=fid_from_pb(cpb.Fid(seq=0x200000007, oid=1)))
    assert ei.value.errno == errno.ENOTCONN
    m.channel.close()


def test_open_create_returns_layout_lock_and_handle_in_one_reply(mdc, cluster):
    d = _mkdir(mdc, b"oc")
    rep = mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_RDWR, mode=0o100640,
                     layout=Layout(stripe_size=65536, stripe_count=2))
    a = attr_from_pb(rep.attr)
    lo = layout_from_pb(rep.layout)
    assert stat.S_ISREG(a.mode) and a.mode & 0o777 == 0o640
    assert rep.lock.cookie != 0 and rep.open_handle != 0
    assert rep.has_layout and lo.stripe_size == 65536 and len(lo.objects) == 2
    assert {o.ost_index for o in lo.objects} == {0, 1}
    assert not rep.attr.size_valid                       # opened for writing
    f = fid_from_pb(rep.attr.fid)
    got = mdc.intent(IT_GETATTR, fid=f, ibits=int(IBit.LOOKUP | IBit.LAYOUT))
    assert got.has_layout and layout_from_pb(got.layout) == lo      # the reply's layout is the stored one
    assert got.attr == rep.attr                          # and so are its attributes
    ro = mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"r", open_flags=os.O_CREAT | os.O_RDONLY, mode=0o100640)
    assert ro.attr.size_valid and ro.attr.size == 0 and ro.has_layout
    mdc.close_handle(ro.open_handle)
    # O_EXCL on an existing name
    with pytest.raises(LpError) as ei:
        mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_EXCL | os.O_RDWR)
    assert ei.value.errno == errno.EEXIST
    mdc.close_handle(rep.open_handle)


def test_lookup_intent_returns_attributes_and_negative_lock(mdc):
    d = _mkdir(mdc, b"lk")
    mdc.create(d, b"x", 0o100600)
    rep = mdc.intent(IT_LOOKUP | IT_GETATTR, parent=d, name=b"x")
    assert attr_from_pb(rep.attr).mode == 0o100600 and rep.lock.cookie
    req = mpb.IntentRequest(hdr=mdc.hdr(), ops=IT_LOOKUP, parent=fid_to_pb(d), name=b"missing")
    neg = call(mdc.stub.Intent, req)
    assert neg.hdr.errno == errno.ENOENT and neg.lock.cookie != 0     # negative entry lock on the parent
    assert fid_from_pb(cpb.Fid(seq=neg.lock.res.n0, oid=neg.lock.res.n1)) == d


def test_reint_operations_and_errnos(mdc):
    d = _mkdir(mdc, b"ops")
    f = fid_from_pb(mdc.create(d, b"a").attr.fid)
    mdc.link(f, d, b"b")
    assert attr_from_pb(mdc.intent(IT_GETATTR, fid=f).attr).nlink == 2
    mdc.symlink(d, b"s", b"a")
    s = fid_from_pb(mdc.intent(IT_LOOKUP, parent=d, name=b"s").attr.fid)
    assert mdc.readlink(s) == b"a"
    mdc.rename(d, b"a", d, b"c")
    names = sorted(e.name for e in mdc.listdir(d))
    assert names == [b"b", b"c", b"s"]
    with pytest.raises(LpError) as ei:
        mdc.rename(d, b"b", d, b"c", flags=1)        # RENAME_NOREPLACE
    assert ei.value.errno == errno.EEXIST
    mdc.setattr(f, valid=1, mode=0o600)
    assert attr_from_pb(mdc.intent(IT_GETATTR, fid=f).attr).mode & 0o7777 == 0o600
    mdc.setxattr(f, b"user.k", b"v")
    assert mdc.getxattr(f, b"user.k") == b"v" and b"user.k" in mdc.listxattr(f)
    for bad, err in ((b"x" * 256, errno.ENAMETOOLONG), (b"a/b", errno.EINVAL)):
        with pytest.raises(LpError) as ei:
            mdc.mkdir(d, bad)
        assert ei.value.errno == err
    with pytest.raises(LpError) as ei:
        mdc.rmdir(mdc.root, b"ops")
    assert ei.value.errno == errno.ENOTEMPTY
    with pytest.raises(LpError) as ei:
        mdc.mkdir(d, b"c")
    assert ei.value.errno == errno.EEXIST


def test_unknown_fid_and_bad_layouts(mdc):
    bogus = fid_from_pb(cpb.Fid(seq=0x200000999, oid=77))
    with pytest.raises(LpError) as ei:
        mdc.intent(IT_GETATTR, fid=bogus)
    assert ei.value.errno == errno.ESTALE
    d = _mkdir(mdc, b"badlo")
    for lo in (Layout(stripe_size=1000), Layout(stripe_count=3), Layout(stripe_count=0)):
        with pytest.raises(LpError) as ei:
            mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_RDWR, layout=lo)
        assert ei.value.errno == errno.EINVAL
    with pytest.raises(LpError) as ei:
        mdc.setxattr(d, b"lustrepy.lov", b"{not json")
    assert ei.value.errno == errno.EINVAL


def test_directory_default_layout_is_inherited(mdc):
    d = _mkdir(mdc, b"striped")
    mdc.setxattr(d, b"lustrepy.lov", encode_lov(Layout(stripe_size=131072, stripe_count=-1)))
    assert decode_lov(mdc.getxattr(d, b"lustrepy.lov")).stripe_count == -1
    rep = mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_RDWR)
    lo = layout_from_pb(rep.layout)
    assert lo.stripe_size == 131072 and len(lo.objects) == 2      # -1 = all active OSTs
    mdc.close_handle(rep.open_handle)


def test_permissions_follow_the_caller(mdc):
    d = _mkdir(mdc, b"perm")
    mdc.setattr(d, valid=1, mode=0o755)
    alice = Cred(uid=1000, gid=1000)
    with pytest.raises(LpError) as ei:
        mdc.create(d, b"nope", cred=alice)
    assert ei.value.errno == errno.EACCES
    mdc.setattr(d, valid=1 | 2 | 4, mode=0o755, uid=1000, gid=1000)
    a = attr_from_pb(mdc.create(d, b"mine", cred=alice).attr)
    assert (a.uid, a.gid) == (1000, 1000)


def test_resent_update_is_answered_from_its_record_not_run_twice(mdc, cluster):
    d = _mkdir(mdc, b"resend")
    mdc.create(d, b"victim")
    hdr = mdc.hdr()
    req = mpb.ReintRequest(hdr=hdr, op=mpb.ReintOp(unlink=mpb.UnlinkOp(parent=fid_to_pb(d), name=b"victim")))
    first = call(mdc.stub.Reint, req)
    req.hdr.resent = True                               # the reply was "lost": same xid again, marked
    again = call(mdc.stub.Reint, req)
    assert first.hdr.errno == 0 and again.hdr.errno == 0   # a second execution would say ENOENT
    assert first.hdr.transno == again.hdr.transno != 0
    # a new request (new xid) does execute, and fails as it should
    with pytest.raises(LpError) as ei:
        mdc.unlink(d, b"victim")
    assert ei.value.errno == errno.ENOENT
    # mkdir resent: no EEXIST, same FID
    req = mpb.ReintRequest(hdr=mdc.hdr(), op=mpb.ReintOp(mkdir=mpb.MkdirOp(parent=fid_to_pb(d), name=b"m", mode=0o755)))
    r1 = call(mdc.stub.Reint, req)
    req.hdr.resent = True
    r2 = call(mdc.stub.Reint, req)
    assert r1.hdr.errno == r2.hdr.errno == 0 and r1.attr.fid == r2.attr.fid


def test_transno_and_last_committed(mdc):
    d = _mkdir(mdc, b"tn")
    r1 = mdc.create(d, b"a")
    r2 = mdc.create(d, b"b")
    assert r2.hdr.transno > r1.hdr.transno > 0
    committed = mdc.sync()
    assert committed >= r2.hdr.transno


def test_conflicting_update_sends_blocking_callback_to_holder(cluster, mdc):
    d = _mkdir(mdc, b"cb")
    f = fid_from_pb(mdc.create(d, b"f").attr.fid)
    seen: list[int] = []
    got = threading.Event()

    def on_blocking(lock):
        seen.append(lock.cookie)
        got.set()

    holder = Mdc(cluster.mds.address, cluster.fsname, on_blocking=on_blocking)
    holder.connect()
    try:
        rep = holder.intent(IT_LOOKUP | IT_GETATTR, parent=d, name=b"f")
        mdc.setattr(f, valid=1, mode=0o600)            # needs EX PERM|UPDATE on f
        assert got.wait(10) and seen == [rep.lock.cookie]
        assert attr_from_pb(holder.intent(IT_GETATTR, fid=f).attr).mode & 0o777 == 0o600
    finally:
        holder.close()


def test_holder_that_ignores_callbacks_is_evicted_then_reconnects(cluster, mdc):
    d = _mkdir(mdc, b"evict")
    f = fid_from_pb(mdc.create(d, b"f").attr.fid)
    silent = Mdc(cluster.mds.address, cluster.fsname, auto_reconnect=False)
    silent.connect()
    try:
        silent.intent(IT_LOOKUP | IT_GETATTR, parent=d, name=b"f")   # holds PR, has no callback stream
        mdc.setattr(f, valid=1, mode=0o640)            # waits for the callback timeout (1.5 s), then evicts
        with pytest.raises(LpError) as ei:
            silent.intent(IT_GETATTR, fid=f)
        assert ei.value.errno == errno.ENOTCONN
        silent.auto_reconnect = True                   # the next request reconnects by itself
        old_gen = silent.conn_gen
        assert attr_from_pb(silent.intent(IT_GETATTR, fid=f).attr).mode & 0o777 == 0o640
        assert silent.conn_gen != old_gen
    finally:
        silent.close()


def _object_exists(cluster, ost_index: int, oid: int) -> bool:
    ch = make_channel(cluster.osts[ost_index].address)
    try:
        stub = oss_pb2_grpc.OssStub(ch)
        con = call(stub.Connect, cpb.ConnectRequest(client_id="probe", fsname=cluster.fsname), timeout=5)
        rep = call(stub.Getattr, opb.ObjRequest(hdr=cpb.ReqHdr(client_id="probe", conn_gen=con.conn_gen, xid=1),
                                               object_id=oid), timeout=5)
        return rep.hdr.errno == 0
    finally:
        ch.close()


def test_unlinked_files_objects_are_destroyed(mdc, cluster):
    d = _mkdir(mdc, b"destroy")
    rep = mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_RDWR,
                     layout=Layout(stripe_count=2))
    objs = layout_from_pb(rep.layout).objects
    assert all(_object_exists(cluster, o.ost_index, o.object_id) for o in objs)
    mdc.unlink(d, b"f")                                # still open: the data must stay
    # a closed file unlinked after it goes: the destroys have run past the open one
    rep_g = mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"g", open_flags=os.O_CREAT | os.O_RDWR,
                       layout=Layout(stripe_count=2))
    mdc.close_handle(rep_g.open_handle)
    mdc.unlink(d, b"g")
    wait_for(lambda: not any(_object_exists(cluster, o.ost_index, o.object_id)
                             for o in layout_from_pb(rep_g.layout).objects), what="the closed file's objects destroyed")
    assert all(_object_exists(cluster, o.ost_index, o.object_id) for o in objs)
    mdc.close_handle(rep.open_handle)                  # last close of an orphan
    wait_for(lambda: not any(_object_exists(cluster, o.ost_index, o.object_id) for o in objs),
             what="objects destroyed")


def test_eviction_closes_the_clients_opens_so_orphans_are_destroyed(cluster, mdc):
    d = _mkdir(mdc, b"evict-open")
    silent = Mdc(cluster.mds.address, cluster.fsname)
    silent.connect()
    try:
        rep = silent.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_RDWR)
        (obj,) = layout_from_pb(rep.layout).objects
        mdc.unlink(d, b"f")          # revokes silent's lock on f: it never answers, so it is evicted
        wait_for(lambda: not _object_exists(cluster, obj.ost_index, obj.object_id), what="orphan destroyed")
    finally:
        silent.close()


def test_new_objects_come_with_a_lock(mdc):
    d = _mkdir(mdc, b"newlock")
    for rep in (mdc.mkdir(d, b"sub"), mdc.create(d, b"f"), mdc.symlink(d, b"s", b"f")):
        assert rep.lock.cookie != 0 and rep.lock.res.n1 == rep.attr.fid.oid
    assert mdc.unlink(d, b"s").lock.cookie == 0


def test_several_handles_close_in_one_request(mdc):
    d = _mkdir(mdc, b"batchclose")
    reps = [mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f%d" % i, open_flags=os.O_CREAT | os.O_WRONLY)
            for i in range(3)]
    before = dict(mdc.info().counters).get("close", 0)
    mdc.close_handles([(reps[0].open_handle, 10), (reps[1].open_handle, None), (reps[2].open_handle, 30),
                       (999_999_999, None)])           # an unknown handle is a no-op
    assert dict(mdc.info().counters)["close"] == before + 1
    sizes = [mdc.intent(IT_GETATTR, fid=fid_from_pb(r.attr.fid)).attr for r in reps]
    assert [(a.size_valid, a.size) for a in sizes] == [(True, 10), (True, 0), (True, 30)]


def test_size_on_mds_is_valid_only_without_writers(mdc, cluster):
    d = _mkdir(mdc, b"som")
    rep = mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_WRONLY)
    f = fid_from_pb(rep.attr.fid)
    assert not rep.attr.size_valid                       # open for writing
    mdc.close_handle(rep.open_handle, size=12345)        # the writer's last close reports the size
    got = mdc.intent(IT_GETATTR, fid=f).attr
    assert got.size_valid and got.size == 12345
    r = mdc.intent(IT_OPEN, fid=f, open_flags=os.O_RDONLY)
    assert r.attr.size_valid                             # readers do not make it stale
    mdc.close_handle(r.open_handle, size=1)              # ... and cannot report a size
    assert mdc.intent(IT_GETATTR, fid=f).attr.size == 12345
    # a writer elsewhere calls back cached attributes of other clients
    other = Mdc(cluster.mds.address, cluster.fsname, with_locks=True)
    other.connect()
    try:
        w = other.intent(IT_OPEN, fid=f, open_flags=os.O_RDWR)
        assert not mdc.intent(IT_GETATTR, fid=f).attr.size_valid
        other.close_handle(w.open_handle, size=7)
        assert mdc.intent(IT_GETATTR, fid=f).attr.size == 7
    finally:
        other.close()


def test_a_truncate_leaves_the_size_to_the_objects_until_a_writer_reports_one(mdc):
    """A truncate reaches the MDS before its client cuts the objects, and that client may die
    in between: the size it set counts only once a writer reports one."""
    d = _mkdir(mdc, b"trunc")
    rep = mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_WRONLY)
    f = fid_from_pb(rep.attr.fid)
    mdc.close_handle(rep.open_handle, size=5000)
    assert mdc.intent(IT_GETATTR, fid=f).attr.size_valid
    got = mdc.setattr(f, valid=int(SA.SIZE), size=100).attr
    assert (got.size, got.size_valid) == (100, False)
    got = mdc.intent(IT_GETATTR, fid=f).attr
    assert (got.size, got.size_valid) == (100, False)                # clients glimpse the objects
    got = mdc.setattr(f, valid=int(SA.SIZE | SA.SIZE_KNOWN), size=100).attr     # a writer's report
    assert (got.size, got.size_valid) == (100, True)
    mdc.setattr(f, valid=int(SA.SIZE), size=7)
    w = mdc.intent(IT_OPEN, fid=f, open_flags=os.O_RDWR)
    mdc.close_handle(w.open_handle, size=7)                          # a writer's close reports it too
    assert mdc.intent(IT_GETATTR, fid=f).attr.size_valid
    # a writer's close that comes after a truncate (the kernel sends a release after close(2)
    # returned, and the next call may be that truncate) reports a size from before it
    w = mdc.intent(IT_OPEN, fid=f, open_flags=os.O_RDWR)
    mdc.setattr(f, valid=int(SA.SIZE), size=3)
    mdc.close_handle(w.open_handle, size=7)
    got = mdc.intent(IT_GETATTR, fid=f).attr
    assert (got.size, got.size_valid) == (3, False)                  # the objects say
    w = mdc.intent(IT_OPEN, fid=f, open_flags=os.O_RDWR)             # ftruncate through a handle
    mdc.setattr(f, valid=int(SA.SIZE), size=2, open_handle=w.open_handle)
    mdc.close_handle(w.open_handle, size=2)
    got = mdc.intent(IT_GETATTR, fid=f).attr
    assert (got.size, got.size_valid) == (2, True)
    # a file without objects takes the size set here when they are made: it stays the file's
    e = fid_from_pb(mdc.reint(None, create=mpb.CreateOp(parent=fid_to_pb(d), name=b"e", mode=0o100644,
                                                         delay_layout=True)).attr.fid)
    got = mdc.setattr(e, valid=int(SA.SIZE), size=35040).attr
    assert (got.size, got.size_valid) == (35040, True)


def test_a_write_back_cache_file_made_with_objects_takes_their_size_until_its_size_record(mdc):
    """A client whose cache kept a file's bytes creates it with objects, writes the bytes,
    then sends its size: if it dies between, the objects' size must count, not the 0 the
    create left."""
    d = _mkdir(mdc, b"wbcsize")
    seq, _ = mdc.alloc_seq()
    fid = cpb.Fid(seq=seq, oid=1)

    def record(n: int, **op) -> mpb.UpdateRecord:
        return mpb.UpdateRecord(seq=n, op=mpb.ReintOp(**op), time_ns=1, uid=0, gid=0)

    rep = mdc.reint_batch([record(1, create=mpb.CreateOp(parent=fid_to_pb(d), name=b"f", mode=0o100644,
                                                         fid=fid))])
    assert rep.hdr.errno == 0 and rep.layouts and rep.layouts[0].layout.objects
    got = mdc.intent(IT_GETATTR, fid=fid_from_pb(fid)).attr
    assert (got.size, got.size_valid) == (0, False)
    rep = mdc.reint_batch([record(2, setattr=mpb.SetattrOp(fid=fid, valid=int(SA.SIZE | SA.SIZE_KNOWN),
                                                           size=3000, blocks=8))])
    assert rep.hdr.errno == 0
    got = mdc.intent(IT_GETATTR, fid=fid_from_pb(fid)).attr
    assert (got.size, got.size_valid) == (3000, True)


def test_open_with_o_trunc_sets_size_and_times_in_the_open(mdc):
    d = _mkdir(mdc, b"otrunc")
    rep = mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_WRONLY, mode=0o100666)
    f = fid_from_pb(rep.attr.fid)
    mdc.close_handle(rep.open_handle, size=4096)
    before = mdc.intent(IT_GETATTR, fid=f).attr
    assert before.size == 4096
    # by FID: the size is 0 and mtime/ctime move in the open's own transaction
    r = mdc.intent(IT_OPEN, fid=f, open_flags=os.O_WRONLY | os.O_TRUNC)
    assert r.attr.size == 0 and r.attr.mtime_ns > before.mtime_ns and r.attr.ctime_ns > before.ctime_ns
    mdc.close_handle(r.open_handle)
    assert mdc.intent(IT_GETATTR, fid=f).attr.size == 0
    # by name, O_CREAT on an existing file: truncated the same way
    mdc.setattr(f, valid=mpb.SA_SIZE, size=100)
    r = mdc.intent(IT_OPEN | IT_CREAT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_RDWR | os.O_TRUNC)
    assert not r.disposition & mpb.DISP_OPEN_CREATE and r.attr.size == 0
    mdc.close_handle(r.open_handle)
    # O_RDONLY|O_TRUNC truncates too (Linux), and needs write permission
    mdc.setattr(f, valid=mpb.SA_SIZE, size=100)
    r = mdc.intent(IT_OPEN, fid=f, open_flags=os.O_RDONLY | os.O_TRUNC)
    assert r.attr.size == 0
    mdc.close_handle(r.open_handle)
    mdc.setattr(f, valid=mpb.SA_SIZE | mpb.SA_MODE, size=100, mode=0o100644)
    with pytest.raises(LpError) as ei:
        mdc.intent(IT_OPEN, Cred(4242, 4242), fid=f, open_flags=os.O_RDONLY | os.O_TRUNC)
    assert ei.value.errno == errno.EACCES
    assert mdc.intent(IT_GETATTR, fid=f).attr.size == 100
    # without O_TRUNC nothing changes
    r = mdc.intent(IT_OPEN, fid=f, open_flags=os.O_RDWR)
    assert r.attr.size == 100
    mdc.close_handle(r.open_handle)
