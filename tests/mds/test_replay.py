"""Replay of write-back cache update records (ReintBatch) over real gRPC against a
real lustrepy-mds process: records apply in order with their own credentials and
times, exactly once (resends, overlapping batches and MDS restarts skip what was
done), a refused record stops its batch and is consumed, gaps are refused whole,
and creations must name FIDs from a sequence handed out to clients."""

from __future__ import annotations

import errno
import signal
import sqlite3
import stat
import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest

from lustrepy.client.mdc import Mdc
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.records import Cred
from lustrepy.mds.lfsck import check_invariants
from lustrepy.mds.store import Store
from lustrepy.rpc.channel import call
from lustrepy.rpc.convert import attr_from_pb, fid_from_pb, fid_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(120)

IT_GETATTR = 2
SA_MODE = 1
ROOT = Cred(0, 0)
ALICE = Cred(1000, 1000, (1000, 2000))
T0 = 1_500_000_000_000_000_000          # record times, far from the MDS's clock


# ---- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("replay"))
    try:
        c.start(0)
        yield c
    finally:
        c.stop()


def _client(address: str, fsname: str, client_id: str | None = None) -> Mdc:
    m = Mdc(address, fsname, client_id=client_id or f"wbc-{uuid.uuid4()}", timeout=60)
    wait_for(lambda: _try_connect(m), what="MDS connect")
    return m


def _try_connect(m: Mdc) -> bool:
    try:
        m.connect()
        return True
    except LpError:
        return False


@pytest.fixture
def mdc(cluster):
    m = _client(cluster.mds.address, cluster.fsname)
    yield m
    m.close()


class Fids:
    """FIDs from a sequence the MDS handed to the client, as its write-back cache names files."""

    def __init__(self, m: Mdc) -> None:
        self.seq, _ = m.alloc_seq()
        self.next = 1

    def __call__(self) -> Fid:
        self.next += 1
        return Fid(self.seq, self.next - 1)


def rec(seq: int, t: int, cred: Cred = ROOT, **op) -> mpb.UpdateRecord:
    return mpb.UpdateRecord(seq=seq, op=mpb.ReintOp(**op), time_ns=t, uid=cred.uid, gid=cred.gid,
                            groups=list(cred.groups))


def create(parent: Fid, name: bytes, fid: Fid, mode: int = 0o100644) -> dict:
    return {"create": mpb.CreateOp(parent=fid_to_pb(parent), name=name, mode=mode, fid=fid_to_pb(fid),
                                   delay_layout=True)}


def mkdir(parent: Fid, name: bytes, fid: Fid, mode: int = 0o755) -> dict:
    return {"mkdir": mpb.MkdirOp(parent=fid_to_pb(parent), name=name, mode=mode, fid=fid_to_pb(fid))}


def symlink(parent: Fid, name: bytes, target: bytes, fid: Fid) -> dict:
    return {"symlink": mpb.SymlinkOp(parent=fid_to_pb(parent), name=name, target=target, fid=fid_to_pb(fid))}


def unlink(parent: Fid, name: bytes) -> dict:
    return {"unlink": mpb.UnlinkOp(parent=fid_to_pb(parent), name=name)}


def rename(sp: Fid, sn: bytes, dp: Fid, dn: bytes) -> dict:
    return {"rename": mpb.RenameOp(src_parent=fid_to_pb(sp), src_name=sn, dst_parent=fid_to_pb(dp), dst_name=dn)}


def setmode(fid: Fid, mode: int) -> dict:
    return {"setattr": mpb.SetattrOp(fid=fid_to_pb(fid), valid=SA_MODE, mode=mode)}


def top_dir(m: Mdc, name: bytes, mode: int = 0o777) -> Fid:
    d = fid_from_pb(m.mkdir(m.root, name).attr.fid)
    m.setattr(d, valid=SA_MODE, mode=mode)
    return d


def listing(m: Mdc, d: Fid) -> dict[bytes, mpb.DirEntry]:
    out: dict[bytes, mpb.DirEntry] = {}
    cookie = 0
    while True:
        rep = m.readdir(d, cookie, max_entries=1024, with_attrs=True)
        out.update((e.name, e) for e in rep.entries)
        if rep.eof or not rep.entries:
            return out
        cookie = rep.entries[-1].cookie


def getattr_(m: Mdc, fid: Fid):
    return attr_from_pb(m.intent(IT_GETATTR, fid=fid).attr)


def errno_of(fn) -> int:
    with pytest.raises(LpError) as ei:
        fn()
    return ei.value.errno


def counters(m: Mdc) -> Counter[str]:
    return Counter(dict(m.info().counters))


def check_ok(rep: mpb.ReintBatchReply, applied: int, applied_seq: int) -> None:
    assert rep.hdr.errno == 0, rep.hdr.message
    assert (rep.applied, rep.applied_seq, rep.failed_seq) == (applied, applied_seq, 0)


# ---- applying ----------------------------------------------------------------------------------


def test_batch_applies_with_the_records_fids_creds_and_times(mdc):
    top = top_dir(mdc, b"apply")
    fid = Fids(mdc)
    sub, a, b, ln, fifo, sub2 = (fid() for _ in range(6))
    t = [T0 + i * 1_000_003 for i in range(10)]
    records = [
        rec(1, t[1], ALICE, **mkdir(top, b"sub", sub, 0o750)),
        rec(2, t[2], ALICE, **create(sub, b"a", a, 0o100640)),
        rec(3, t[3], ALICE, **create(sub, b"b", b, 0o100600)),
        rec(4, t[4], ALICE, **symlink(sub, b"ln", b"a", ln)),
        rec(5, t[5], ALICE, **create(sub, b"fifo", fifo, stat.S_IFIFO | 0o644)),
        rec(6, t[6], ALICE, **setmode(a, 0o444)),
        rec(7, t[7], ALICE, **unlink(sub, b"b")),
        rec(8, t[8], ALICE, **rename(sub, b"a", sub, b"c")),
        rec(9, t[9], ALICE, **mkdir(sub, b"sub2", sub2, 0o700)),
    ]
    rep = mdc.reint_batch(records)
    check_ok(rep, applied=9, applied_seq=9)
    assert rep.hdr.transno > 0

    ents = listing(mdc, sub)
    assert sorted(ents) == [b"c", b"fifo", b"ln", b"sub2"]
    assert {n: fid_from_pb(e.fid) for n, e in ents.items()} == {b"c": a, b"fifo": fifo, b"ln": ln, b"sub2": sub2}
    for e in ents.values():
        assert (e.attr.uid, e.attr.gid) == (1000, 1000)
    c = attr_from_pb(ents[b"c"].attr)
    assert c.mode == 0o100444 and c.nlink == 1
    assert (c.atime_ns, c.mtime_ns, c.ctime_ns) == (t[2], t[2], t[8])     # created, chmod, renamed
    lnk = attr_from_pb(ents[b"ln"].attr)
    assert lnk.mode == stat.S_IFLNK | 0o777 and mdc.readlink(ln) == b"a"
    assert (lnk.atime_ns, lnk.mtime_ns, lnk.ctime_ns) == (t[4], t[4], t[4])
    assert attr_from_pb(ents[b"fifo"].attr).mode == stat.S_IFIFO | 0o644
    s2 = attr_from_pb(ents[b"sub2"].attr)
    assert s2.mode == stat.S_IFDIR | 0o700 and s2.ctime_ns == t[9]

    sa = getattr_(mdc, sub)
    assert sa.fid == sub and sa.mode == stat.S_IFDIR | 0o750 and (sa.uid, sa.gid) == (1000, 1000)
    assert sa.nlink == 3 and (sa.atime_ns, sa.mtime_ns, sa.ctime_ns) == (t[1], t[9], t[9])
    ta = getattr_(mdc, top)
    assert ta.nlink == 3 and ta.mtime_ns == ta.ctime_ns == t[1]
    assert errno_of(lambda: getattr_(mdc, b)) == errno.ESTALE
    # creations delay their layout: no objects were allocated at replay
    assert errno_of(lambda: mdc.getxattr(a, b"lustrepy.lov")) == errno.ENODATA


def test_resent_and_overlapping_batches_apply_only_new_records(mdc):
    top = top_dir(mdc, b"overlap")
    fid = Fids(mdc)
    fids = [fid() for _ in range(6)]
    records = [rec(i + 1, T0 + i, **create(top, b"f%d" % i, f)) for i, f in enumerate(fids[:5])]
    records.append(rec(6, T0 + 6, **rename(top, b"f0", top, b"g0")))
    before = counters(mdc)
    first = mdc.reint_batch(records[:3])
    check_ok(first, applied=3, applied_seq=3)
    snap = {n: e.attr for n, e in listing(mdc, top).items()}
    gen = getattr_(mdc, top).generation

    again = mdc.reint_batch(records[:3])                                   # the same batch again
    check_ok(again, applied=0, applied_seq=3)
    assert again.hdr.transno >= first.hdr.transno > 0       # the client drops them only once committed
    assert {n: e.attr for n, e in listing(mdc, top).items()} == snap
    assert getattr_(mdc, top).generation == gen

    rep = mdc.reint_batch(records[1:6])                                    # overlaps records 2 and 3
    check_ok(rep, applied=3, applied_seq=6)
    assert sorted(listing(mdc, top)) == [b"f1", b"f2", b"f3", b"f4", b"g0"]

    # a resend with the same XID (its reply was lost) is answered from the seqs, not run again
    req = mpb.ReintBatchRequest(hdr=mdc.hdr(), records=records)
    check_ok(call(mdc.stub.ReintBatch, req), applied=0, applied_seq=6)
    check_ok(call(mdc.stub.ReintBatch, req), applied=0, applied_seq=6)
    assert sorted(listing(mdc, top)) == [b"f1", b"f2", b"f3", b"f4", b"g0"]
    after = counters(mdc)
    assert after["batch_records"] - before["batch_records"] == 6
    assert after["batch_skipped"] - before["batch_skipped"] == 3 + 2 + 6 + 6


def test_refused_record_stops_the_batch_and_is_consumed(mdc):
    top = top_dir(mdc, b"refuse", mode=0o755)          # root's: ALICE may not create in it
    fid = Fids(mdc)
    x, y, z, w = fid(), fid(), fid(), fid()
    before = counters(mdc)
    records = [
        rec(1, T0 + 1, **create(top, b"x", x)),
        rec(2, T0 + 2, **create(top, b"y", y)),
        rec(3, T0 + 3, **create(top, b"x", z)),            # the name exists
        rec(4, T0 + 4, **create(top, b"z", z)),
    ]
    rep = mdc.reint_batch(records)
    assert rep.hdr.errno == errno.EEXIST and b"x" in rep.hdr.message.encode()
    assert (rep.applied, rep.applied_seq, rep.failed_seq) == (2, 3, 3)
    assert rep.hdr.transno > 0                  # consuming the refused record is a transaction too
    assert sorted(listing(mdc, top)) == [b"x", b"y"]
    assert fid_from_pb(listing(mdc, top)[b"x"].fid) == x
    with pytest.raises(LpError) as ei:
        Mdc.raise_for(rep)
    assert ei.value.errno == errno.EEXIST

    # the client goes on after the refused record: the same batch again applies only record 4
    check_ok(mdc.reint_batch(records), applied=1, applied_seq=4)
    assert sorted(listing(mdc, top)) == [b"x", b"y", b"z"]

    # a caller without write permission on the directory: EACCES, and nothing after it runs
    rep = mdc.reint_batch([rec(5, T0 + 5, ALICE, **create(top, b"w", w)),
                           rec(6, T0 + 6, **unlink(top, b"y"))])
    assert rep.hdr.errno == errno.EACCES
    assert (rep.applied, rep.applied_seq, rep.failed_seq) == (0, 5, 5)
    assert sorted(listing(mdc, top)) == [b"x", b"y", b"z"]
    check_ok(mdc.reint_batch([rec(6, T0 + 6, **unlink(top, b"y"))]), applied=1, applied_seq=6)
    assert sorted(listing(mdc, top)) == [b"x", b"z"]
    after = counters(mdc)
    assert after["batch_refused"] - before["batch_refused"] == 2
    assert after["batch_records"] - before["batch_records"] == 4


def test_gaps_are_refused_whole_and_an_empty_batch_tells_the_last_seq(mdc):
    top = top_dir(mdc, b"gaps")
    fid = Fids(mdc)
    f = [fid() for _ in range(6)]
    empty = mdc.reint_batch([])
    assert empty.hdr.errno == 0 and empty.applied_seq == 0 and empty.applied == 0
    before = counters(mdc)

    rep = mdc.reint_batch([rec(2, T0, **create(top, b"a", f[0]))])          # record 1 never came
    assert rep.hdr.errno == errno.EPROTO and (rep.applied, rep.applied_seq, rep.failed_seq) == (0, 0, 0)
    assert "missing" in rep.hdr.message and "\n" not in rep.hdr.message
    assert listing(mdc, top) == {}

    check_ok(mdc.reint_batch([rec(1, T0, **create(top, b"a", f[0])), rec(2, T0, **create(top, b"b", f[1]))]),
             applied=2, applied_seq=2)
    assert mdc.reint_batch([]).applied_seq == 2
    for bad in ([rec(4, T0, **create(top, b"d", f[3])), rec(5, T0, **create(top, b"e", f[4]))],
                [rec(3, T0, **create(top, b"c", f[2])), rec(5, T0, **create(top, b"e", f[4]))],
                [rec(3, T0, **create(top, b"c", f[2])), rec(3, T0, **create(top, b"e", f[4]))]):
        rep = mdc.reint_batch(bad)
        assert rep.hdr.errno == errno.EPROTO and rep.applied == 0 and rep.applied_seq == 2, rep
    assert sorted(listing(mdc, top)) == [b"a", b"b"]
    assert mdc.reint_batch([]).applied_seq == 2
    assert counters(mdc)["batch_gaps"] - before["batch_gaps"] == 4


def test_chained_batches_skip_other_mdts_seqs_and_refuse_a_broken_chain(mdc):
    """A client of several MDTs numbers its records once: this MDT sees 2, 5, 6, 9 (the others'
    seqs skipped), each batch saying which record of its own came before."""
    top = top_dir(mdc, b"chain")
    fid = Fids(mdc)
    f = [fid() for _ in range(5)]
    before = counters(mdc)
    check_ok(mdc.reint_batch([rec(2, T0, **create(top, b"a", f[0])), rec(5, T0, **create(top, b"b", f[1]))],
                             after_seq=0), applied=2, applied_seq=5)
    assert mdc.reint_batch([]).applied_seq == 5
    # a resend from further back skips what was done and goes on after it
    check_ok(mdc.reint_batch([rec(5, T0, **create(top, b"b", f[1])), rec(6, T0, **create(top, b"c", f[2]))],
                             after_seq=2), applied=1, applied_seq=6)
    for after, bad in ((4, [rec(9, T0, **create(top, b"d", f[3]))]),           # follows 4, not 6
                       (6, [rec(9, T0, **create(top, b"d", f[3])), rec(8, T0, **create(top, b"e", f[4]))]),
                       (0, [rec(0, T0, **create(top, b"d", f[3]))])):
        rep = mdc.reint_batch(bad, after_seq=after)
        assert rep.hdr.errno == errno.EPROTO and rep.applied == 0 and rep.applied_seq == 6, rep
        assert "\n" not in rep.hdr.message
    assert sorted(listing(mdc, top)) == [b"a", b"b", b"c"]
    check_ok(mdc.reint_batch([rec(9, T0, **create(top, b"d", f[3]))], after_seq=6), applied=1, applied_seq=9)
    assert counters(mdc)["batch_gaps"] - before["batch_gaps"] == 3
    assert counters(mdc)["batch_records"] - before["batch_records"] == 4


def test_a_refused_connection_consumes_nothing(mdc):
    top = top_dir(mdc, b"stale")
    fid = Fids(mdc)
    a = fid()
    req = mpb.ReintBatchRequest(hdr=mdc.hdr(), records=[rec(1, T0, **create(top, b"a", a))])
    req.hdr.conn_gen += 1                                # not this client's connection
    rep = call(mdc.stub.ReintBatch, req)
    assert rep.hdr.errno == errno.ENOTCONN and rep.applied == 0 and rep.failed_seq == 0
    assert listing(mdc, top) == {} and mdc.reint_batch([]).applied_seq == 0
    check_ok(mdc.reint_batch(list(req.records)), applied=1, applied_seq=1)


def test_creations_must_name_a_fid_handed_out_to_clients(mdc):
    top = top_dir(mdc, b"fids")
    mds_own = fid_from_pb(mdc.mkdir(top, b"byserver").attr.fid)       # named by the MDS itself
    fid = Fids(mdc)
    ok = fid()
    cases = [
        (create(top, b"n1", Fid(0, 0)), errno.EINVAL),                     # no FID
        (create(top, b"n2", Fid(fid.seq + 1000, 1)), errno.EINVAL),         # a sequence never handed out
        (mkdir(top, b"n3", Fid(mds_own.seq, mds_own.oid + 100)), errno.EINVAL),   # the MDS's own sequence
        (symlink(top, b"n4", b"t", Fid(fid.seq, 0)), errno.EINVAL),         # not a FID at all
        (create(top, b"n5", mds_own), errno.EINVAL),
    ]
    for i, (op, err) in enumerate(cases, start=1):
        rep = mdc.reint_batch([rec(i, T0, **op)])
        assert rep.hdr.errno == err and rep.failed_seq == i and rep.applied == 0, (i, rep)
    n = len(cases)
    check_ok(mdc.reint_batch([rec(n + 1, T0, **create(top, b"ok", ok))]), applied=1, applied_seq=n + 1)
    rep = mdc.reint_batch([rec(n + 2, T0, **mkdir(top, b"again", ok))])     # the FID is in use
    assert rep.hdr.errno == errno.EEXIST and rep.failed_seq == n + 2
    assert sorted(listing(mdc, top)) == [b"byserver", b"ok"]


def test_creations_must_name_a_fid_of_the_clients_own_sequence(mdc, cluster):
    top = top_dir(mdc, b"ownseq")
    other = _client(cluster.mds.address, cluster.fsname)
    try:
        theirs = Fids(other)()
        rep = mdc.reint_batch([rec(1, T0, **create(top, b"stolen", theirs))])
        assert rep.hdr.errno == errno.EPERM and rep.failed_seq == 1
        check_ok(other.reint_batch([rec(1, T0, **create(top, b"owned", theirs))]), applied=1, applied_seq=1)
    finally:
        other.close()
    assert sorted(listing(mdc, top)) == [b"owned"]


def test_2000_creates_in_batches_of_500_take_4_rpcs(mdc):
    top = top_dir(mdc, b"many")
    fid = Fids(mdc)
    records = [rec(i + 1, T0 + i, **create(top, b"f%05d" % i, fid())) for i in range(2000)]
    before = counters(mdc)
    for k in range(0, 2000, 500):
        check_ok(mdc.reint_batch(records[k:k + 500]), applied=500, applied_seq=k + 500)
    after = counters(mdc)
    assert after["reint_batch"] - before["reint_batch"] == 4
    assert after["batch_records"] - before["batch_records"] == 2000
    ents = listing(mdc, top)
    assert len(ents) == 2000 and ents[b"f01999"].attr.mtime_ns == T0 + 1999
    assert getattr_(mdc, top).mtime_ns == T0 + 1999


# ---- the record seqs in the MDT --------------------------------------------------------------


def test_record_seqs_move_one_at_a_time_and_older_mdts_get_the_table(tmp_path):
    d = tmp_path / "mdt"
    Store.format(d, "lptest")
    conn = sqlite3.connect(d / "mdt.db")
    conn.execute("DROP TABLE replay_seqs")              # as formatted before the table existed
    conn.commit()
    conn.close()
    with Store(d) as s:
        assert s.read().replay_seq("c1") == 0
        assert s.write(lambda tx: tx.advance_replay_seq("c1", 2))[0] is False    # not the next one
        assert s.write(lambda tx: tx.advance_replay_seq("c1", 1))[0] is True
        assert s.write(lambda tx: tx.advance_replay_seq("c1", 1))[0] is False    # done already
        assert s.write(lambda tx: tx.advance_replay_seq("c1", 2), now_ns=T0)[0] is True
        assert (s.read().replay_seq("c1"), s.read().replay_seq("c2")) == (2, 0)

        def fails(tx) -> None:
            assert tx.advance_replay_seq("c1", 3)
            raise LpError(errno.EEXIST, "the record's change failed")
        with pytest.raises(LpError):
            s.write(fails)                               # the seq rolls back with the change
        assert s.read().replay_seq("c1") == 2
        assert s.read().conn.execute("SELECT updated_ns FROM replay_seqs").fetchone()[0] == T0
    assert check_invariants(d) == []


# ---- restarts -----------------------------------------------------------------------------------


def _restart(c: Cluster, sig: int) -> None:
    c.mds.stop(sig)
    c.mds = c.mds_proc().start()


def test_resend_after_mds_restart_applies_each_record_once(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start(0)
        m = _client(c.mds.address, c.fsname)
        top = top_dir(m, b"restart")
        fid = Fids(m)
        a, b, d = fid(), fid(), fid()
        records = [
            rec(1, T0 + 1, **create(top, b"a", a)),
            rec(2, T0 + 2, **rename(top, b"a", top, b"a2")),     # run twice, it would fail (ENOENT)
            rec(3, T0 + 3, **mkdir(top, b"d", d)),
            rec(4, T0 + 4, **create(d, b"b", b)),
            rec(5, T0 + 5, **unlink(d, b"b")),
        ]
        records += [rec(6 + i, T0 + 6 + i, **create(d, b"n%d" % i, fid())) for i in range(10)]
        first = mpb.ReintBatchRequest(hdr=m.hdr(), records=records[:5])
        check_ok(call(m.stub.ReintBatch, first), applied=5, applied_seq=5)

        _restart(c, signal.SIGKILL)                      # killed after it replied
        m2 = _client(c.mds.address, c.fsname, client_id=m.client_id)
        first.hdr.conn_gen = m2.conn_gen                 # the same request, resent on the new connection
        check_ok(call(m2.stub.ReintBatch, first), applied=0, applied_seq=5)
        check_ok(m2.reint_batch(records), applied=10, applied_seq=15)        # the rest of a longer batch

        _restart(c, signal.SIGTERM)
        m3 = _client(c.mds.address, c.fsname, client_id=m.client_id)
        check_ok(m3.reint_batch(records), applied=0, applied_seq=15)
        assert sorted(listing(m3, top)) == [b"a2", b"d"]
        assert sorted(listing(m3, d)) == [b"n%d" % i for i in range(10)]
        assert getattr_(m3, d).nlink == 2 and errno_of(lambda: getattr_(m3, b)) == errno.ESTALE
        m3.close()
        m.channel.close()
        m2.channel.close()
        assert check_invariants(Path(tmp_path) / "mdt") == []
    finally:
        c.stop()


def test_mds_killed_during_a_batch_then_resent_applies_each_record_once(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start(0)
        m = _client(c.mds.address, c.fsname)
        top = top_dir(m, b"midway")
        fid = Fids(m)
        n = 1500
        records = [rec(i + 1, T0 + i, **create(top, b"f%05d" % i, fid())) for i in range(n)]
        req = mpb.ReintBatchRequest(hdr=m.hdr(), records=records)
        outcome: list[object] = []
        t = threading.Thread(target=lambda: outcome.append(_call_or_error(m, req)))
        t.start()
        wait_for(lambda: _replayed(tmp_path, m.client_id) > 0, timeout=30, interval=0.005,
                 what="the first records committed")
        c.mds.stop(signal.SIGKILL)                       # in the middle of the batch
        t.join(30)
        assert not t.is_alive()
        c.mds = c.mds_proc().start()
        m2 = _client(c.mds.address, c.fsname, client_id=m.client_id)
        done = m2.reint_batch([]).applied_seq            # what the killed MDS had committed
        assert 0 < done < n
        req.hdr.conn_gen = m2.conn_gen
        check_ok(call(m2.stub.ReintBatch, req, timeout=60), applied=n - done, applied_seq=n)
        assert len(listing(m2, top)) == n
        m2.close()
        m.channel.close()
        assert check_invariants(Path(tmp_path) / "mdt") == []
    finally:
        c.stop()


def _replayed(root: Path, client_id: str) -> int:
    """The client's last record done, read from the MDT database beside the running MDS."""
    conn = sqlite3.connect(f"file:{root / 'mdt' / 'mdt.db'}?mode=ro", uri=True, isolation_level=None)
    try:
        r = conn.execute("SELECT last_seq FROM replay_seqs WHERE client_id = ?", (client_id,)).fetchone()
        return r[0] if r else 0
    except sqlite3.OperationalError:         # busy or not created yet: not yet
        return 0
    finally:
        conn.close()


def _call_or_error(m: Mdc, req: mpb.ReintBatchRequest) -> object:
    try:
        return call(m.stub.ReintBatch, req, timeout=30)
    except LpError as e:
        return e
