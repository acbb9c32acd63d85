"""Striped directories on real servers, through the client's metadata layer (lmv over one Mdc per
MDT): a directory whose entries are spread over two MDTs by the hash of their names."""

from __future__ import annotations

import errno

import pytest

from lustrepy.client.lmv import Lmv
from lustrepy.client.mdc import Mdc
from lustrepy.common.dirhash import stripe_index
from lustrepy.common.errors import LpError
from lustrepy.common.fid import ROOT_FID
from lustrepy.common.protocol import IT
from lustrepy.common.records import Cred
from lustrepy.rpc.convert import fid_from_pb
from tests.dne.test_remote_dirs import _rows
from tests.support.dne import all_active
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(180)
USER = Cred(1000, 1000)


def _mdc(address: str, fsname: str, cid: str) -> Mdc:
    m = Mdc(address, fsname, client_id=cid, with_locks=True)
    m.connect()
    return m


@pytest.fixture
def two(tmp_path):
    c = Cluster(tmp_path).start(1, n_mdts=2)
    made: list[Mdc] = []
    try:
        wait_for(lambda: all_active(c.mds.address, 2), what="MDT1 active")

        def make(address: str) -> Mdc:
            m = _mdc(address, c.fsname, f"admin:s{len(made)}")
            made.append(m)
            return m
        lmv = Lmv(make(c.mds.address), make)
        lmv.refresh()
        lmv.make = make     # type: ignore[attr-defined]     # for a second layer in a test
        yield c, lmv
    finally:
        for m in made:
            m.close()
        c.stop()


def _names(n: int, stripe: int, count: int = 2) -> list[bytes]:
    out, i = [], 0
    while len(out) < n:
        name = f"f{i}".encode()
        if stripe_index("fnv_1a_64", count, name) == stripe:
            out.append(name)
        i += 1
    return out


def test_names_spread_over_both_mdts_and_list_once(two):
    c, lmv = two
    rep = lmv.mkdir(ROOT_FID, b"s", 0o777, stripe_count=2)
    d = fid_from_pb(rep.attr.fid)
    s = lmv.stripes(d)
    assert s is not None and s.count == 2 and s.mdts == (0, 1) and s.fids[0] == d
    names = [f"n{i}".encode() for i in range(40)]
    for n in names:
        lmv.create(d, n, 0o100644, USER)
    on0 = _rows(c, "mdt", "SELECT count(*) FROM dentries d JOIN inodes i ON i.id = d.parent "
                          f"WHERE i.seq = {d.seq} AND i.oid = {d.oid}")[0][0]
    on1 = _rows(c, "mdt1", "SELECT count(*) FROM dentries")[0][0]
    assert on0 + on1 == 40 and on0 > 5 and on1 > 5
    assert sorted(e.name for e in lmv.listdir(d)) == sorted(names)
    # small pages: the cookie order is stable across calls and lists every name once
    seen, cookie = [], 0
    while True:
        page = lmv.readdir(d, cookie, 3)
        seen.extend(e.name for e in page.entries)
        if page.eof or not page.entries:
            break
        cookie = page.entries[-1].cookie
    assert sorted(seen) == sorted(names)
    # every name is found where its hash puts it, and a lookup of a missing one is ENOENT
    for n in names:
        assert lmv.intent(int(IT.LOOKUP | IT.GETATTR), USER, parent=d, name=n).attr.mode & 0o170000 == 0o100000
    assert lmv.intent_raw(int(IT.LOOKUP), USER, parent=d, name=b"none").hdr.errno == errno.ENOENT
    # the directory's attributes sum its stripes': a subdirectory in each stripe counts
    before = lmv.intent(int(IT.GETATTR), USER, fid=d).attr
    subs = [n for n in (b"sub0", b"sub1", b"sub2", b"sub3", b"sub4", b"sub5")]
    assert {stripe_index("fnv_1a_64", 2, n) for n in subs} == {0, 1}
    for n in subs:
        lmv.mkdir(d, n, 0o755, USER)
    got = lmv.intent(int(IT.GETATTR), USER, fid=d).attr
    assert got.nlink == before.nlink + len(subs) == 2 + len(subs)
    assert got.mtime_ns >= before.mtime_ns


def test_a_name_sent_to_the_wrong_stripe_is_refused_and_a_new_client_finds_it(two):
    c, lmv = two
    d = fid_from_pb(lmv.mkdir(ROOT_FID, b"s", 0o777, stripe_count=2).attr.fid)
    s = lmv.stripes(d)
    far = _names(1, 1)[0]
    # straight to MDT0 with the master as parent: the name is not this stripe's
    m0 = lmv.mdc(0)
    with pytest.raises(LpError) as ei:
        m0.create(d, far, 0o100644, USER)
    assert ei.value.errno == errno.EREMCHG
    # a layer that has not heard of the stripes learns them from that refusal
    fresh = Lmv(lmv.mdc(0), lmv.make)
    fresh.refresh()
    fresh.create(d, far, 0o100644, USER)
    assert s is not None
    assert [e.name for e in lmv.mdc(1).listdir(s.fids[1])] == [far]
    assert fresh.intent(int(IT.LOOKUP), USER, parent=d, name=far).hdr.errno == 0


def test_rename_link_unlink_within_and_rmdir_of_the_whole(two):
    c, lmv = two
    d = fid_from_pb(lmv.mkdir(ROOT_FID, b"s", 0o777, stripe_count=2).attr.fid)
    a, b = _names(1, 0)[0], _names(1, 1)[0]
    f = fid_from_pb(lmv.create(d, a, 0o100644, USER).attr.fid)
    lmv.rename(d, a, d, b, cred=USER)                       # between the stripes (MDT0 -> MDT1)
    assert fid_from_pb(lmv.intent(int(IT.LOOKUP), USER, parent=d, name=b).attr.fid) == f
    assert lmv.intent_raw(int(IT.LOOKUP), USER, parent=d, name=a).hdr.errno == errno.ENOENT
    lmv.link(f, d, a, cred=USER)
    assert lmv.intent(int(IT.GETATTR), USER, fid=f).attr.nlink == 2
    with pytest.raises(LpError) as ei:                     # not empty: nothing changes
        lmv.rmdir(ROOT_FID, b"s")
    assert ei.value.errno == errno.ENOTEMPTY
    lmv.create(d, b"more", 0o100644, USER)                  # both stripes still take names
    for n in (a, b, b"more"):
        lmv.unlink(d, n, cred=USER)
    with pytest.raises(LpError) as ei:                     # root's directory: not a user's to remove
        lmv.rmdir(ROOT_FID, b"s", cred=USER)
    assert ei.value.errno == errno.EACCES
    lmv.rmdir(ROOT_FID, b"s")
    assert lmv.intent_raw(int(IT.LOOKUP), parent=ROOT_FID, name=b"s").hdr.errno == errno.ENOENT
    assert _rows(c, "mdt", "SELECT count(*) FROM dir_stripes") == [(0,)]
    assert _rows(c, "mdt1", "SELECT count(*) FROM dir_stripes") == [(0,)]
    wait_for(lambda: _rows(c, "mdt", "SELECT count(*) FROM dne_log") == [(0,)], what="log drained")


def test_bad_stripe_requests_get_one_line_errors(two):
    c, lmv = two
    for count, h, err in ((3, "", errno.EINVAL), (2, "crc32", errno.EINVAL)):
        with pytest.raises(LpError) as ei:
            lmv.mkdir(ROOT_FID, b"bad", 0o755, stripe_count=count, stripe_hash=h)
        assert ei.value.errno == err and "\n" not in ei.value.message
    assert lmv.intent_raw(int(IT.LOOKUP), parent=ROOT_FID, name=b"bad").hdr.errno == errno.ENOENT


def test_directory_renames_keep_the_striped_directory_s_links(two):
    """Between the stripes (over an empty directory too) and inside one: the reply's and a fresh
    getattr's link count of the striped directory are both right."""
    c, lmv = two
    d = fid_from_pb(lmv.mkdir(ROOT_FID, b"s", 0o777, stripe_count=2).attr.fid)
    (a0, b0, c0), (a1,) = _names(3, 0), _names(1, 1)
    for n in (a0, a1):
        lmv.mkdir(d, n, 0o755, USER)
    assert lmv.intent(int(IT.GETATTR), USER, fid=d).attr.nlink == 4
    rep = lmv.rename(d, a0, d, a1, cred=USER)                  # stripe 0 over an empty one of stripe 1
    assert rep.parent_attr.nlink == 3 == lmv.intent(int(IT.GETATTR), USER, fid=d).attr.nlink
    lmv.mkdir(d, b0, 0o755, USER)
    rep = lmv.rename(d, b0, d, c0, cred=USER)                  # inside stripe 0
    assert rep.parent_attr.nlink == 4 == lmv.intent(int(IT.GETATTR), USER, fid=d).attr.nlink
    rep = lmv.rename(d, a1, d, b0, cred=USER)                  # back to stripe 0
    assert rep.parent_attr.nlink == 4 == lmv.intent(int(IT.GETATTR), USER, fid=d).attr.nlink
    assert sorted(e.name for e in lmv.listdir(d)) == sorted([b0, c0])
    # out of the striped directory into a directory of the other MDT, and back: moves as any
    far = fid_from_pb(lmv.mkdir(ROOT_FID, b"far", 0o777, mdt_index=1).attr.fid)
    lmv.rename(d, c0, far, b"out", cred=USER)
    assert lmv.intent(int(IT.GETATTR), USER, fid=d).attr.nlink == 3
    assert lmv.intent(int(IT.GETATTR), USER, fid=far).attr.nlink == 3
    lmv.rename(far, b"out", d, a1, cred=USER)                  # into stripe 1 by its name
    assert lmv.intent(int(IT.GETATTR), USER, fid=d).attr.nlink == 4
    assert sorted(e.name for e in lmv.listdir(d)) == sorted([b0, a1])
