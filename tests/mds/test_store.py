"""Store: format/open refusals, the one-writer transaction contract, transnos,
reply reconstruction rows, durability bookkeeping, and state that must survive
a restart (destroy queue, pools, OST registry, FID sequences)."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import threading

import pytest

from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.fid import FIRST_SEQ, ROOT_FID, SEQ_WIDTH, Fid
from lustrepy.common.layout import Layout, StripeObject
from lustrepy.common.records import Cred
from lustrepy.mds import resources
from lustrepy.mds.inodes import FID_RESERVE, ReadOnlyTx
from lustrepy.mds.lfsck import check_invariants
from lustrepy.mds.store import Store

ROOT = Cred(0, 0)

pytestmark = pytest.mark.timeout(60)


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg
    return msg


# ---- format and open --------------------------------------------------------------------

def test_format_creates_identity_and_root(tmp_path):
    uuid = Store.format(tmp_path / "m", "fs_1", default_layout=Layout(stripe_size=2 << 20, stripe_count=2))
    assert uuid == "fs_1-MDT0000_UUID"
    with Store(tmp_path / "m", expect_fsname="fs_1") as s:
        assert (s.fsname, s.uuid, s.root) == ("fs_1", uuid, ROOT_FID)
        assert len(s.instance) == 16
        root = s.read().getattr(ROOT_FID)
        assert (root.mode, root.nlink, root.uid, root.gid) == (0o40755, 2, 0, 0)
        assert s.read().default_layout(ROOT_FID) == Layout(stripe_size=2 << 20, stripe_count=2)
        assert s.last_transno() == 0
        assert check_invariants(s) == []


def test_format_twice_refused(mdt_dir):
    with pytest.raises(QuietError) as ei:
        Store.format(mdt_dir, "lptest")
    assert "already formatted" in one_line(ei.value)


def test_format_instances_differ(tmp_path):
    Store.format(tmp_path / "a", "x")
    Store.format(tmp_path / "b", "x")
    with Store(tmp_path / "a") as a, Store(tmp_path / "b") as b:
        assert a.uuid == b.uuid and a.instance != b.instance


@pytest.mark.parametrize("name", ["", "toolongname", "bad-name", "sp ace", "é"])
def test_format_rejects_bad_fsname(tmp_path, name):
    with pytest.raises(QuietError) as ei:
        Store.format(tmp_path / "m", name)
    one_line(ei.value)
    assert not (tmp_path / "m" / "mdt.db").exists()


def test_format_rejects_bad_default_layout(tmp_path):
    with pytest.raises(QuietError):
        Store.format(tmp_path / "m", "x", default_layout=Layout(stripe_size=1000))


def test_open_unformatted_refused(tmp_path):
    with pytest.raises(QuietError) as ei:
        Store(tmp_path)
    assert "not formatted" in one_line(ei.value)


def test_open_fsname_mismatch_refused(mdt_dir):
    with pytest.raises(QuietError) as ei:
        Store(mdt_dir, expect_fsname="other")
    assert "'lptest'" in one_line(ei.value) and "'other'" in str(ei.value)
    with Store(mdt_dir, expect_fsname="lptest"):        # the refusal released the lock
        pass


def test_second_store_refused_naming_the_pid(store, mdt_dir):
    with pytest.raises(QuietError) as ei:
        Store(mdt_dir)
    assert f"process {os.getpid()}" in one_line(ei.value)
    with pytest.raises(QuietError):
        Store.format(mdt_dir, "lptest")


def test_store_held_by_another_process(mdt_dir):
    code = ("import sys, time; from lustrepy.mds.store import Store; s = Store(sys.argv[1]); "
            "print('ready', flush=True); sys.stdin.read(); s.close()")
    p = subprocess.Popen([sys.executable, "-c", code, str(mdt_dir)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        with pytest.raises(QuietError) as ei:
            Store(mdt_dir)
        assert f"in use by process {p.pid}" in one_line(ei.value)
    finally:
        p.stdin.close()
        p.wait(10)
    with Store(mdt_dir):                                 # free again once it exits
        pass


def test_close_releases_and_reopen(mdt_dir):
    s = Store(mdt_dir)
    _, t = s.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"kept", 0o755))
    s.close()
    s.close()                                            # idempotent
    with pytest.raises(LpError) as ei:
        s.write(lambda tx: None)
    assert ei.value.errno == errno.ESHUTDOWN
    assert (mdt_dir / "mdt.lock").read_text() == ""     # the pid is gone with the lock
    with Store(mdt_dir) as again:                        # the lock is free, the change durable
        assert again.last_transno() == t and again.last_committed() == t
        assert again.read().lookup(ROOT, ROOT_FID, b"kept").mode & 0o777 == 0o755


# ---- write() ----------------------------------------------------------------------------

def test_transnos_increase_and_persist(mdt_dir):
    with Store(mdt_dir) as s:
        _, t1 = s.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"a", 0o755))
        _, t2 = s.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"b", 0o755))
        assert (t1, t2) == (1, 2) and s.last_transno() == 2
    with Store(mdt_dir) as s:
        assert s.last_transno() == 2
        assert s.write(lambda tx: None)[1] == 3


_KILLED_AFTER = """
import os, signal, sys
from lustrepy.mds.store import Store
s = Store(sys.argv[1])
for xid in range(1, 6):                                  # transnos 1..5 kept by reply rows only
    s.write(lambda tx: None, client_id="a", xid=xid, encode=lambda r, t: b"r")
s.write(lambda tx: None)                                 # 6: no reply row, kept by meta
s.write(lambda tx: None, client_id="b", xid=1, encode=lambda r, t: b"r")     # 7
s.sync()
assert s.prune_replies("b", 1) == (1, 0)                 # the row holding the highest transno goes
os.kill(os.getpid(), signal.SIGKILL)                     # no clean stop: meta is not brought up to date
"""


def test_transnos_survive_a_kill_whatever_rows_hold_them(mdt_dir):
    p = subprocess.run([sys.executable, "-c", _KILLED_AFTER, str(mdt_dir)], timeout=30)
    assert p.returncode == -9
    with Store(mdt_dir) as s:
        assert s.last_transno() == 7 == s.last_committed()
        assert s.saved_reply("b", 1) is None and s.saved_reply("a", 5) == (5, b"r")
        assert s.write(lambda tx: None, client_id="a", xid=6, encode=lambda r, t: b"r")[1] == 8
        assert s.drop_replies("a") == 6                  # every row goes: meta keeps the transno
        assert check_invariants(s) == []
    with Store(mdt_dir) as s:
        assert s.last_transno() == 8
        assert s.write(lambda tx: None, client_id="c", xid=1, encode=lambda r, t: b"r")[1] == 9


def test_write_rolls_back_on_lperror(store):
    def fn(tx):
        tx.mkdir(ROOT, ROOT_FID, b"d", 0o755)
        tx.pool_add(0, 1, 10)
        tx.mkdir(ROOT, ROOT_FID, b"d", 0o755)            # EEXIST after changes were made
    enc_calls = []
    with pytest.raises(LpError) as ei:
        store.write(fn, client_id="c1", xid=7, encode=lambda r, t: enc_calls.append(t) or b"x")
    assert ei.value.errno == errno.EEXIST
    assert enc_calls == []
    assert store.last_transno() == 0
    assert store.saved_reply("c1", 7) is None
    assert store.read().pool_sizes() == {}
    with pytest.raises(LpError):
        store.read().lookup(ROOT, ROOT_FID, b"d")
    assert store.read().getattr(ROOT_FID).nlink == 2
    assert store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755))[1] == 1


def test_write_rolls_back_on_any_exception(store):
    with pytest.raises(ZeroDivisionError):
        store.write(lambda tx: (tx.mkdir(ROOT, ROOT_FID, b"d", 0o755), 1 / 0))
    assert store.read().readdir(ROOT_FID, 0, 10) == []


def test_reply_row_written_with_the_change(store):
    a, t = store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755), client_id="c1", xid=42,
                       encode=lambda r, transno: f"{r.fid}@{transno}".encode())
    assert store.saved_reply("c1", 42) == (t, f"{a.fid}@{t}".encode())
    assert store.saved_reply("c1", 43) is None
    assert store.saved_reply("c2", 42) is None
    # without encode (or client id) nothing is saved
    store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"e", 0o755), client_id="c1", xid=44)
    assert store.saved_reply("c1", 44) is None


def test_reply_row_not_written_when_encode_fails(store):
    def bad(r, t):
        raise ValueError("cannot encode")
    with pytest.raises(ValueError):
        store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755), client_id="c", xid=1, encode=bad)
    assert store.saved_reply("c", 1) is None
    assert store.read().readdir(ROOT_FID, 0, 10) == []


def test_saved_reply_survives_restart(mdt_dir):
    with Store(mdt_dir) as s:
        s.write(lambda tx: tx.alloc_seq(), client_id="c", xid=5, encode=lambda r, t: str(r).encode())
    with Store(mdt_dir) as s:
        assert s.saved_reply("c", 5) == (1, str(FIRST_SEQ).encode())


def test_prune_replies_forgets_acknowledged_and_committed(store):
    for xid in range(1, 11):
        store.write(lambda tx: None, client_id="a", xid=xid, encode=lambda r, t: b"r")
    store.write(lambda tx: None, client_id="b", xid=1, encode=lambda r, t: b"r")
    assert store.prune_replies("a", 7) == (0, 7)          # acknowledged, but not durable yet: kept
    store.sync()
    assert store.prune_replies("a", 7) == (7, 0)
    assert [x for x in range(1, 11) if store.saved_reply("a", x)] == [8, 9, 10]
    assert store.saved_reply("b", 1) is not None
    assert sorted(store.reply_clients()) == ["a", "b"]
    assert store.drop_replies("a") == 3
    assert store.saved_reply("a", 10) is None and store.reply_clients() == ["b"]
    assert store.last_transno() == 11                      # forgetting replies takes no transno


def test_read_tx_refuses_writes(store):
    tx = store.read()
    with pytest.raises(ReadOnlyTx):
        tx.mkdir(ROOT, ROOT_FID, b"d", 0o755)
    with pytest.raises(ReadOnlyTx):
        tx.alloc_seq()
    with pytest.raises(ReadOnlyTx):
        tx.pool_take(0, 1)


def test_reads_from_other_threads_see_commits(store):
    store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755))
    seen = []
    t = threading.Thread(target=lambda: seen.append(store.read().lookup(ROOT, ROOT_FID, b"d").nlink))
    t.start()
    t.join()
    assert seen == [2]


def test_peek_reads_on_the_free_write_connection_and_never_waits_for_it(store):
    store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755))
    conns = []

    def look(tx):
        conns.append(tx.conn._c)
        return tx.lookup(ROOT, ROOT_FID, b"d").nlink
    assert store.peek(look) == 2 and conns[-1] is store._w
    with pytest.raises(ReadOnlyTx):
        store.peek(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"e", 0o755))

    def in_write(tx):
        tx.mkdir(ROOT, ROOT_FID, b"e", 0o755)
        seen = []
        t = threading.Thread(target=lambda: seen.append(store.peek(look)))
        t.start()
        t.join(5)
        return seen
    assert store.write(in_write)[0] == [2]             # the writer holds it: a read connection answers
    assert conns[-1] is not store._w


def test_the_write_after_a_peek_starts_from_what_it_read(store):
    store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755))
    sql = []
    store._w.set_trace_callback(sql.append)
    assert store.peek(lambda tx: tx.find(ROOT, ROOT_FID, b"n")) is None
    del sql[:]
    store.write(lambda tx: (tx.find(ROOT, ROOT_FID, b"n"), tx.create(ROOT, ROOT_FID, b"n", 0o644)))
    assert not [q for q in sql if q.startswith("SELECT")]    # the root and the free name were known
    del sql[:]
    with pytest.raises(LpError) as e:                         # that write took the name: looked up again
        store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"n", 0o644))
    assert e.value.errno == errno.EEXIST and [q for q in sql if q.startswith("SELECT")]
    store._w.set_trace_callback(None)


def test_concurrent_writers_get_distinct_consecutive_transnos(store):
    transnos: list[int] = []
    lock = threading.Lock()

    def worker(k):
        for i in range(50):
            _, t = store.write(lambda tx, i=i: tx.create(ROOT, ROOT_FID, b"f%d-%d" % (k, i), 0o644))
            with lock:
                transnos.append(t)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(transnos) == list(range(1, 201))
    assert store.read().statfs_files() == 201


def test_sync_advances_last_committed(store):
    assert store.last_committed() == 0
    store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755))
    store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"e", 0o755))
    assert store.last_committed() == 0
    assert store.sync() == 2 == store.last_committed()
    assert store.sync() == 2


def test_reopen_counts_everything_committed_as_durable(mdt_dir):
    with Store(mdt_dir) as s:
        s.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755))
    with Store(mdt_dir) as s:
        assert s.last_committed() == 1


def test_closed_store_refuses_writes(mdt_dir):
    s = Store(mdt_dir)
    s.close()
    with pytest.raises(LpError) as ei:
        s.write(lambda tx: None)
    assert ei.value.errno == errno.ESHUTDOWN


def test_database_is_wal(store):
    c = sqlite3.connect(store.db_path)
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    c.close()


# ---- sequences, pools, destroy queue, OST registry ----------------------------------------

def test_alloc_seq_never_reused(mdt_dir):
    with Store(mdt_dir) as s:
        seqs = [s.write(lambda tx: tx.alloc_seq())[0] for _ in range(3)]
        assert seqs == [FIRST_SEQ, FIRST_SEQ + 1, FIRST_SEQ + 2]
        a = s.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755))[0]
        assert a.fid == Fid(FIRST_SEQ + 3, 1, 0)       # the MDS's own sequence: same counter
        b = s.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"e", 0o755))[0]
        assert b.fid == Fid(FIRST_SEQ + 3, 2, 0)
    with Store(mdt_dir) as s:
        assert s.write(lambda tx: tx.alloc_seq())[0] == FIRST_SEQ + 4
        c = s.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"f", 0o755))[0]
        assert c.fid == Fid(FIRST_SEQ + 3, 3, 0)


def test_sequences_remember_their_client_and_the_checker_keeps_them_honest(store):
    mine = store.write(lambda tx: tx.alloc_seq("client-a"))[0]
    store.read().check_client_fid(Fid(mine, 1, 0), "client-a")
    store.read().check_client_fid(Fid(mine, 1, 0))                  # no client named: shape only
    with pytest.raises(LpError) as e:
        store.read().check_client_fid(Fid(mine, 1, 0), "client-b")
    assert e.value.errno == errno.EPERM
    assert check_invariants(store) == []
    raw = sqlite3.connect(store.db_path, isolation_level=None)
    raw.execute("INSERT INTO seq_owners (seq, client_id) VALUES (?, 'client-c')", (mine + 100,))
    assert any("never handed out" in p for p in check_invariants(store))
    raw.execute("DELETE FROM seq_owners WHERE client_id = 'client-c'")
    raw.close()


def test_mds_sequence_rolls_over(store):
    store.write(lambda tx: tx.conn.execute("UPDATE meta SET mds_seq = ?, mds_next_oid = ?",
                                           (tx.alloc_seq(), SEQ_WIDTH)))
    a = store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"a", 0o644))[0]
    b = store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"b", 0o644))[0]
    assert a.fid == Fid(FIRST_SEQ, SEQ_WIDTH, 0)
    assert b.fid == Fid(FIRST_SEQ + 1, 1, 0)


def test_mds_fids_come_from_a_reserved_range_and_a_kill_skips_its_rest(mdt_dir):
    code = ("import os, signal, sys; from lustrepy.common.records import Cred; "
            "from lustrepy.common.fid import ROOT_FID; from lustrepy.mds.store import Store; "
            "s = Store(sys.argv[1]); "
            "[print(s.write(lambda tx: tx.create(Cred(0, 0), ROOT_FID, b'k%d' % i, 0o644))[0].fid.oid, flush=True) "
            "for i in range(3)]; os.kill(os.getpid(), signal.SIGKILL)")
    p = subprocess.run([sys.executable, "-c", code, str(mdt_dir)], capture_output=True, text=True, timeout=30)
    assert p.returncode == -9 and p.stdout.split() == ["1", "2", "3"]
    with Store(mdt_dir) as s:
        assert s.read().conn.execute("SELECT mds_next_oid FROM meta").fetchone()[0] == 1 + FID_RESERVE
        a = s.write(lambda tx: tx.create(ROOT, ROOT_FID, b"a", 0o644))[0]
        assert a.fid.oid == 1 + FID_RESERVE                          # the rest of the first range is skipped
        assert check_invariants(s) == []
    with Store(mdt_dir) as s:                                        # a clean stop gives the rest back
        assert s.write(lambda tx: tx.create(ROOT, ROOT_FID, b"b", 0o644))[0].fid.oid == 2 + FID_RESERVE


def test_a_rolled_back_fid_reservation_is_not_trusted(store):
    def fn(tx):
        tx.create(ROOT, ROOT_FID, b"x", 0o644)                       # reserves the first range ...
        raise LpError(errno.EIO, "then fails")                       # ... which is rolled back
    with pytest.raises(LpError):
        store.write(fn)
    assert store.read().conn.execute("SELECT mds_seq, mds_next_oid FROM meta").fetchone() == (0, 1)
    a = store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"a", 0o644))[0]
    assert store.read().conn.execute("SELECT mds_seq, mds_next_oid FROM meta").fetchone() == \
        (a.fid.seq, a.fid.oid + FID_RESERVE)
    for i in range(FID_RESERVE):                                     # the range runs out: the next one
        store.write(lambda tx, i=i: tx.create(ROOT, ROOT_FID, b"f%d" % i, 0o644))
    assert store.read().conn.execute("SELECT mds_next_oid FROM meta").fetchone()[0] == a.fid.oid + 2 * FID_RESERVE
    assert check_invariants(store) == []


def test_a_claimed_fid_inside_the_reserved_range_is_not_handed_out_again(store):
    a = store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"a", 0o644))[0]
    taken = Fid(a.fid.seq, a.fid.oid + 5, 0)                         # a replayed creation names it
    store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"r", 0o644, fid=taken))
    b = store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"b", 0o644))[0]
    assert b.fid == Fid(a.fid.seq, a.fid.oid + 6, 0)


def test_pools_take_add_and_survive_restart(mdt_dir):
    with Store(mdt_dir) as s:
        s.write(lambda tx: tx.ost_register(3, "x-OST0003_UUID", "h:1"))
        s.write(lambda tx: tx.pool_add(3, 1, 10))
        assert s.write(lambda tx: tx.pool_take(3, 4))[0] == [1, 2, 3, 4]
        assert s.read().pool_sizes() == {3: 6}
        assert s.write(lambda tx: tx.pool_take(7, 1))[0] == []
    with Store(mdt_dir) as s:
        assert s.read().pool_sizes() == {3: 6}
        assert s.read().pool_range(3) == (5, 10)
        assert s.write(lambda tx: tx.pool_take(3, 100))[0] == [5, 6, 7, 8, 9, 10]
        assert s.write(lambda tx: tx.pool_take(3, 1))[0] == []
        assert s.read().pool_range(3) == (11, 10)
        s.write(lambda tx: tx.pool_add(3, 11, 20))
        assert s.write(lambda tx: tx.pool_take(3, 2))[0] == [11, 12]
        assert check_invariants(s) == []


def test_one_object_from_each_pool_in_one_take(store):
    for i in (0, 1, 2):
        store.write(lambda tx, i=i: tx.ost_register(i, f"x-OST{i:04x}_UUID", "h:1"))
    store.write(lambda tx: tx.pool_add(0, 1, 3))
    store.write(lambda tx: tx.pool_add(2, 7, 7))
    assert store.write(lambda tx: resources.pool_take_each(tx, resources.pool_ranges(tx), [2, 0]))[0] == [7, 1]
    assert resources.pool_ranges(store.read()) == {0: (2, 3), 2: (8, 7)}
    for osts in ([0, 2], [1]):          # an empty pool, one never filled: nothing is taken from any
        with pytest.raises(LpError) as ei:
            store.write(lambda tx, osts=osts: resources.pool_take_each(tx, resources.pool_ranges(tx), osts))
        assert ei.value.errno == errno.ENOSPC
    assert resources.pool_ranges(store.read()) == {0: (2, 3), 2: (8, 7)}
    assert check_invariants(store) == []


def test_pool_add_ignores_known_ids_and_drops_gapped_leftovers(store):
    store.write(lambda tx: tx.ost_register(0, "x-OST0000_UUID", "h:1"))
    store.write(lambda tx: tx.pool_add(0, 1, 10))
    store.write(lambda tx: tx.pool_take(0, 3))
    store.write(lambda tx: tx.pool_add(0, 1, 10))               # replayed: nothing new
    assert store.read().pool_range(0) == (4, 10)
    store.write(lambda tx: tx.pool_add(0, 5, 15))               # overlapping: only 11..15 are new
    assert store.read().pool_range(0) == (4, 15)
    store.write(lambda tx: tx.pool_add(0, 100, 110))            # gap: leftovers 4..15 and the gap destroyed
    assert store.read().pool_range(0) == (100, 110)
    assert store.read().pending_destroys(200) == [(0, i) for i in range(4, 100)]
    for bad in ((0, 5), (9, 3)):
        with pytest.raises(LpError) as ei:
            store.write(lambda tx, bad=bad: tx.pool_add(0, *bad))
        assert ei.value.errno == errno.EINVAL


def test_destroy_queue_survives_restart(mdt_dir):
    with Store(mdt_dir) as s:
        s.write(lambda tx: tx.ost_register(0, "x-OST0000_UUID", "h:1"))
        s.write(lambda tx: tx.pool_add(0, 1, 10))
        lo = Layout(stripe_count=1, objects=(StripeObject(0, 1),))
        s.write(lambda tx: tx.create(ROOT, ROOT_FID, b"f", 0o644, layout=lo))
        gone = s.write(lambda tx: tx.unlink(ROOT, ROOT_FID, b"f"))[0]
        assert gone.destroyed == (StripeObject(0, 1),)
    with Store(mdt_dir) as s:
        assert s.read().pending_destroys(10) == [(0, 1)]
        s.write(lambda tx: tx.destroy_done([(0, 1)]))
        assert s.read().pending_destroys(10) == []
    with Store(mdt_dir) as s:
        assert s.read().pending_destroys(10) == []
        assert check_invariants(s) == []


def test_ost_registry(mdt_dir):
    with Store(mdt_dir) as s:
        s.write(lambda tx: tx.ost_register(0, "x-OST0000_UUID", "h:1"))
        s.write(lambda tx: tx.ost_register(0, "x-OST0000_UUID", "h:2"))        # moved: allowed
        s.write(lambda tx: tx.ost_register(1, "x-OST0001_UUID", "h:3"))
        with pytest.raises(LpError) as ei:
            s.write(lambda tx: tx.ost_register(0, "other_UUID", "h:9"))
        assert ei.value.errno == errno.EEXIST
        assert "x-OST0000_UUID" in str(ei.value) and "other_UUID" in str(ei.value)
        with pytest.raises(LpError) as ei:
            s.write(lambda tx: tx.ost_register(5, "x-OST0001_UUID", "h:9"))
        assert ei.value.errno == errno.EEXIST
    with Store(mdt_dir) as s:
        assert [(o.index, o.uuid, o.address) for o in s.read().ost_list()] == [
            (0, "x-OST0000_UUID", "h:2"), (1, "x-OST0001_UUID", "h:3")]


# ---- the checker finds damage ---------------------------------------------------------------

def test_checker_reports_damage(store):
    d = store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755))[0]
    f = store.write(lambda tx: tx.create(ROOT, d.fid, b"f", 0o644))[0]
    h = store.write(lambda tx: tx.open(f.fid, "c"))[0]
    assert check_invariants(store) == []
    raw = sqlite3.connect(store.db_path, isolation_level=None)
    raw.execute("UPDATE inodes SET nlink = 3 WHERE seq = ? AND oid = ?", (f.fid.seq, f.fid.oid))
    raw.execute("UPDATE inodes SET nlink = 5 WHERE seq = ? AND oid = ?", (d.fid.seq, d.fid.oid))
    problems = check_invariants(store)
    assert any("nlink 3 but 1 names" in p for p in problems)
    assert any("nlink 5, not 2 + 0" in p for p in problems)
    raw.execute("UPDATE inodes SET nlink = 0 WHERE seq = ? AND oid = ?", (f.fid.seq, f.fid.oid))
    raw.execute("UPDATE inodes SET nlink = 2 WHERE seq = ? AND oid = ?", (d.fid.seq, d.fid.oid))
    raw.execute("DELETE FROM dentries WHERE name = ?", (b"f",))
    raw.execute("INSERT INTO orphans (inode, since_ns) SELECT id, 0 FROM inodes WHERE oid = ?", (f.fid.oid,))
    assert check_invariants(store) == []                # an open orphan is fine
    raw.execute("DELETE FROM opens")
    assert any("no open handle" in p for p in check_invariants(store))
    raw.execute("INSERT INTO destroy_queue (ost_index, object_id, queued_ns) VALUES (9, 9, 0)")
    assert any("unregistered OST index 9" in p for p in check_invariants(store))
    # put it right again so the fixture's final check passes
    raw.execute("DELETE FROM destroy_queue")
    raw.close()
    store.write(lambda tx: tx.open(f.fid, "c"))
    assert store.write(lambda tx: tx.close(h))[0] == ()                       # unknown handle: no-op
    store.write(lambda tx: tx.close_client("c"))
    with pytest.raises(LpError):
        store.read().getattr(f.fid)


def test_damaged_database_refused_in_one_line(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "mdt.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(QuietError) as ei:
        Store(d)
    assert "not an SQLite database, so not an MDT" in one_line(ei.value)
    (d / "mdt.db").unlink()
    Store.format(d, "x")                                  # the refusal released the lock


def test_closed_store_refuses_reads(mdt_dir):
    s = Store(mdt_dir)
    s.read().getattr(ROOT_FID)
    s.close()
    with pytest.raises(LpError) as ei:
        s.read()
    assert ei.value.errno == errno.ESHUTDOWN


def test_nested_write_refused(store):
    with pytest.raises(RuntimeError):
        store.write(lambda tx: store.write(lambda tx2: None))
    assert store.last_transno() == 0
    assert store.write(lambda tx: None)[1] == 1


def test_objects_an_ost_made_whose_record_was_lost_are_destroyed(store):
    """A precreation the MDT lost in a crash leaves objects on the OST that no file names: the
    next range the OST hands out shows the gap, and those objects go to the destroy queue."""
    from lustrepy.common.objid import group_base
    store.write(lambda tx: tx.ost_register(0, "x-OST0000_UUID", "h:1"))
    store.write(lambda tx: tx.ost_register(1, "x-OST0001_UUID", "h:2"))
    store.write(lambda tx: tx.pool_add(0, 1, 10))
    store.write(lambda tx: tx.pool_take(0, 3))
    store.write(lambda tx: tx.pool_add(0, 21, 30))          # 11..20 made, record lost
    queued = {r[0] for r in store.read().conn.execute("SELECT object_id FROM destroy_queue WHERE ost_index = 0")}
    assert queued == set(range(4, 11)) | set(range(11, 21))
    # the first range of MDT1's group on a fresh pool: what lies below it in the group goes too
    base = group_base(1)
    store.write(lambda tx: tx.pool_add(1, base + 6, base + 9))
    queued = {r[0] for r in store.read().conn.execute("SELECT object_id FROM destroy_queue WHERE ost_index = 1")}
    assert queued == {base + i for i in range(1, 6)}
    assert store.read().pool_range(1) == (base + 6, base + 9)
    assert check_invariants(store) == []
