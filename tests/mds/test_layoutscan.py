"""The MDT's side of lfsck on a real store (mds/layoutscan.py): the snapshot's pages (pools, files
with the size the MDT records where it is authoritative, the destroy queue), the present state of
suspects, and paths."""

from __future__ import annotations

from lustrepy.common.fid import ROOT_FID
from lustrepy.common.layout import Layout, StripeObject
from lustrepy.mds import layoutscan
from lustrepy.mds.store import Store
from tests.mds.conftest import ROOT

MiB = 1 << 20


def _setup(store: Store) -> tuple:
    store.write(lambda tx: tx.ost_register(0, "x-OST0000_UUID", "h:1"))
    store.write(lambda tx: tx.ost_register(1, "x-OST0001_UUID", "h:2"))
    store.write(lambda tx: tx.pool_add(0, 1, 20))
    store.write(lambda tx: tx.pool_add(1, 1, 20))
    ids = store.write(lambda tx: (tx.pool_take(0, 3), tx.pool_take(1, 1)))[0]
    lo = Layout(stripe_size=MiB, stripe_count=2, stripe_offset=0,
                objects=(StripeObject(0, ids[0][0]), StripeObject(1, ids[1][0])))
    d = store.write(lambda tx: tx.mkdir(ROOT, ROOT_FID, b"d", 0o755))[0]
    a = store.write(lambda tx: tx.create(ROOT, d.fid, b"a", 0o644, layout=lo))[0]
    store.write(lambda tx: tx.set_size(a.fid, 5000, 16))
    one = Layout(stripe_count=1, stripe_offset=0, objects=(StripeObject(0, ids[0][1]),))
    b = store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"b", 0o644, layout=one))[0]
    store.write(lambda tx: tx.open(b.fid, "client", writer=True))
    store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"c", 0o644))                 # no layout yet
    store.write(lambda tx: tx.conn.execute(
        "INSERT INTO destroy_queue (ost_index, object_id, queued_ns) VALUES (0, ?, 0)", (ids[0][2],)))
    return a, b, ids


def test_snapshot_pages(store: Store) -> None:
    a, b, ids = _setup(store)
    conn = layoutscan.open_snapshot(store.db_path)
    try:
        pages = list(layoutscan.scan(conn, page_files=1))
    finally:
        conn.close()
    assert [p.last for p in pages] == [False] * (len(pages) - 1) + [True]
    pools = {p.ost_index: (p.next_id, p.last_id) for pg in pages for p in pg.pools}
    assert pools == {0: (4, 20), 1: (2, 20)}
    files = {f.fid: f for pg in pages for f in pg.files}
    assert set(files) == {a.fid, b.fid} and all(len(pg.files) <= 1 for pg in pages)
    assert files[a.fid].size == 5000 and files[a.fid].size_valid and files[a.fid].stripe_size == MiB
    assert files[a.fid].objects == (StripeObject(0, ids[0][0]), StripeObject(1, ids[1][0]))
    assert not files[b.fid].size_valid                          # a writer has it open
    assert [o for pg in pages for o in pg.queued] == [StripeObject(0, ids[0][2])]


def test_present_state_and_paths(store: Store) -> None:
    a, b, ids = _setup(store)
    gone = store.write(lambda tx: tx.create(ROOT, ROOT_FID, b"e", 0o644))[0]
    store.write(lambda tx: tx.unlink(ROOT, ROOT_FID, b"e"))
    asked = [StripeObject(1, ids[1][0]), StripeObject(0, ids[0][2]), StripeObject(0, 15), StripeObject(0, ids[0][1])]
    conn = layoutscan.open_snapshot(store.db_path)
    try:
        objs, files = layoutscan.verify(conn, asked, [a.fid, b.fid, gone.fid])
    finally:
        conn.close()
    assert [(s.owner, s.stripe, s.queued, s.handed_out) for s in objs] == [
        (a.fid, 1, False, True), (None, 0, True, True), (None, 0, False, False), (b.fid, 0, False, True)]
    assert [(f.fid, f.path) for f in files] == [(a.fid, "/d/a"), (b.fid, "/b"), (gone.fid, "")]
    assert files[0].file is not None and files[0].file.size == 5000 and files[2].file is None
    store.write(lambda tx: tx.close(1, (0, 0)))                 # the writer's close: the invariants hold
