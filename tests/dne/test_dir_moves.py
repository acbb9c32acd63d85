"""Directories moving between MDTs on real servers: whole trees move with `mv` (no copy), links and
permissions as Linux keeps them, no move closes a loop however the MDTs race, and the rename lock
and the logs are left empty; lfsctl lfsck finds both MDTs clean."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time

import pytest

from lustrepy.client.mdc import Mdc
from lustrepy.common.errors import LpError
from lustrepy.common.fid import ROOT_FID, Fid
from lustrepy.common.protocol import IT, RENAME
from lustrepy.common.records import Cred
from lustrepy.rpc.convert import fid_from_pb, fid_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from tests.ctl.test_lfsck import lfsctl
from tests.dne.test_remote_dirs import _rows
from tests.mds.test_replay import rec

pytestmark = pytest.mark.timeout(240)


def _quiet(c) -> None:
    """Nothing left behind: no logged operation on either MDT, the rename lock free."""
    assert _rows(c, "mdt", "SELECT count(*) FROM rename_lock") == [(0,)]
    assert _rows(c, "mdt", "SELECT count(*) FROM dne_log") == [(0,)]
    assert _rows(c, "mdt1", "SELECT count(*) FROM dne_log") == [(0,)]


def _clean(c) -> None:
    r = lfsctl("lfsck", "--mgs", c.mds.address)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_trees_move_between_mdts_with_mv(fs):
    c, m = fs
    near, far = m.path / "near", m.path / "far"
    (near / "a" / "b").mkdir(parents=True)
    (near / "a" / "f").write_bytes(b"one" * 1000)
    (near / "a" / "b" / "g").write_text("two")
    before = os.stat(near / "a")
    time.sleep(0.01)
    r = subprocess.run(["mv", str(near / "a"), str(far / "a")], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (0, "")
    st = os.stat(far / "a")
    assert st.st_ino == before.st_ino and st.st_nlink == 3    # moved, not copied
    assert st.st_ctime_ns > before.st_ctime_ns and st.st_mtime_ns == before.st_mtime_ns
    assert os.stat(far).st_mtime_ns > before.st_ctime_ns      # both parents changed
    assert os.stat(near).st_mtime_ns > before.st_ctime_ns
    assert (os.stat(near).st_nlink, os.stat(far).st_nlink) == (2, 3)
    assert (far / "a" / "f").read_bytes() == b"one" * 1000 and (far / "a" / "b" / "g").read_text() == "two"
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
    out = subprocess.run(["find", str(m.path), "-name", "g"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(far / "a" / "b" / "g")
    # a directory of MDT0 now named on MDT1; back below another directory of MDT0, renamed
    (near / "deep").mkdir()
    os.rename(far / "a" / "b", near / "deep" / "b2")
    assert (near / "deep" / "b2" / "g").read_text() == "two" and os.stat(far / "a").st_nlink == 2
    os.rename(far / "a", near / "deep" / "b2" / "a")
    assert os.stat(near / "deep" / "b2").st_nlink == 3 and os.listdir(far) == []
    with pytest.raises(OSError) as ei:                        # into itself, through MDT1 and back
        os.rename(near / "deep", near / "deep" / "b2" / "a" / "x")
    assert ei.value.errno == errno.EINVAL
    r = lfsctl("mkdir", "-i", "1", str(near / "empty"), str(near / "full"))
    assert r.returncode == 0, r.stderr
    (near / "full" / "keep").write_text("kept")
    with pytest.raises(OSError) as ei:                        # onto a non-empty directory of MDT1
        os.rename(near / "deep", near / "full")
    assert ei.value.errno == errno.ENOTEMPTY
    os.rename(near / "deep", near / "empty")                  # onto an empty one: it goes
    assert (near / "empty" / "b2" / "g").read_text() == "two" and not (near / "deep").exists()
    assert sorted(os.listdir(near)) == ["empty", "full"] and os.stat(near).st_nlink == 4
    _quiet(c)
    _clean(c)


def test_a_move_needs_write_permission_on_the_directory(two):
    """Linux: a directory changing parents needs the mover's write permission on it ('..'
    changes); the directories of both MDTs say so alike."""
    c, m0, m1 = two
    user = Cred(uid=1000, gid=1000)
    open_ = fid_from_pb(m0.mkdir(ROOT_FID, b"open", 0o777).attr.fid)
    far = fid_from_pb(m0.mkdir(ROOT_FID, b"far", 0o777, mdt_index=1).attr.fid)
    m0.mkdir(open_, b"theirs", 0o755)                         # root's, not writable by the user
    m1.mkdir(far, b"theirs1", 0o755)
    with pytest.raises(LpError) as ei:
        m0.rename(open_, b"theirs", far, b"t", cred=user)
    assert ei.value.errno == errno.EACCES
    with pytest.raises(LpError) as ei:
        m1.rename(far, b"theirs1", open_, b"t", cred=user)
    assert ei.value.errno == errno.EACCES
    m0.mkdir(open_, b"mine", 0o755, user)
    m0.rename(open_, b"mine", far, b"mine", cred=user)
    m1.rename(far, b"mine", open_, b"back", cred=user)
    assert sorted(e.name for e in m0.listdir(open_)) == [b"back", b"theirs"]
    _quiet(c)


def _move(mdc: Mdc, sp: Fid, name: bytes, into: Fid, got: dict[bytes, int], go: threading.Barrier) -> None:
    """Rename `name` of `sp` into `into` once `go` lets both movers go; its errno in `got`."""
    go.wait()
    try:
        mdc.rename(sp, name, into, name)
        got[name] = 0
    except LpError as e:
        got[name] = e.errno


def test_opposite_moves_racing_across_mdts_never_close_a_loop(two):
    """Rounds of two moves at once, each putting one directory into the other, coordinated by
    different MDTs: /a (MDT0) into r/b (MDT1) by MDT0, r/b into /a by MDT1. One moves, the other
    finds itself below and says EINVAL; the tree stays a tree."""
    c, m0, m1 = two
    r = fid_from_pb(m0.mkdir(ROOT_FID, b"r", 0o755, mdt_index=1).attr.fid)
    for rnd in range(8):
        an, bn = f"a{rnd}".encode(), f"b{rnd}".encode()
        a = fid_from_pb(m0.mkdir(ROOT_FID, an, 0o755).attr.fid)
        b = fid_from_pb(m1.mkdir(r, bn, 0o755).attr.fid)
        got: dict[bytes, int] = {}
        go = threading.Barrier(2)
        ts = [threading.Thread(target=_move, args=(m0, ROOT_FID, an, b, got, go)),
              threading.Thread(target=_move, args=(m1, r, bn, a, got, go))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert sorted(got.values()) == [0, errno.EINVAL], got
        top = {e.name for e in m0.listdir(ROOT_FID)}
        assert (an in top) != (bn in {e.name for e in m1.listdir(r)}), got
    # moves inside MDT1 that could loop through MDT0: /x (MDT1) holds y (MDT0) holds z (MDT1)
    x = fid_from_pb(m0.mkdir(ROOT_FID, b"x", 0o755, mdt_index=1).attr.fid)
    y = fid_from_pb(m1.mkdir(x, b"y", 0o755, mdt_index=0).attr.fid)
    z = fid_from_pb(m0.mkdir(y, b"z", 0o755, mdt_index=1).attr.fid)
    m1.mkdir(x, b"w", 0o755)
    with pytest.raises(LpError) as ei:
        m0.rename(ROOT_FID, b"x", z, b"x")
    assert ei.value.errno == errno.EINVAL
    m1.rename(x, b"w", z, b"w")                               # MDT1's own move, checked over both
    assert [e.name for e in m1.listdir(z)] == [b"w"]
    _quiet(c)
    _clean(c)


def test_a_directory_replaces_an_empty_directory_of_another_mdt(two):
    """rename(2) onto an empty directory whose inode is on another MDT: that directory is sealed
    there (no new name in it), replaced, then removed; onto a non-empty one: ENOTEMPTY, and it is
    left as it was. A refused rename leaves no name changed on any MDT."""
    c, m0, m1 = two
    dirs_sql = "SELECT count(*) FROM inodes WHERE mode & 61440 = 16384"
    far = fid_from_pb(m0.mkdir(ROOT_FID, b"far", 0o777, mdt_index=1).attr.fid)
    m0.mkdir(ROOT_FID, b"src", 0o755)
    m0.mkdir(ROOT_FID, b"empty1", 0o755, mdt_index=1)
    full = fid_from_pb(m0.mkdir(ROOT_FID, b"full", 0o755, mdt_index=1).attr.fid)
    m1.create(full, b"keep", 0o644)
    mdt1_dirs = _rows(c, "mdt1", dirs_sql)[0][0]
    with pytest.raises(LpError) as ei:                        # onto a non-empty one
        m0.rename(ROOT_FID, b"src", ROOT_FID, b"full")
    assert ei.value.errno == errno.ENOTEMPTY
    m1.create(full, b"more", 0o644)                           # not sealed: it takes names
    assert sorted(e.name for e in m1.listdir(full)) == [b"keep", b"more"]
    # MDT0's directory onto MDT1's empty one, named on MDT0
    m0.rename(ROOT_FID, b"src", ROOT_FID, b"empty1")
    top = {e.name for e in m0.listdir(ROOT_FID)}
    assert b"src" not in top and b"empty1" in top
    assert m0.intent_raw(int(IT.LOOKUP), parent=ROOT_FID, name=b"empty1").remote is False
    assert _rows(c, "mdt1", dirs_sql) == [(mdt1_dirs - 1,)]
    # MDT1's directory (moved by MDT1) onto MDT1's empty one named on MDT0
    m1.mkdir(far, b"x", 0o755)
    m0.mkdir(ROOT_FID, b"empty2", 0o755, mdt_index=1)
    m1.rename(far, b"x", ROOT_FID, b"empty2")
    assert [e.name for e in m1.listdir(far)] == []
    assert _rows(c, "mdt1", dirs_sql) == [(mdt1_dirs,)]       # x stays, empty2 went
    assert _rows(c, "mdt1", "SELECT name FROM remote_names ORDER BY name") == [(b"empty2",), (b"far",),
                                                                              (b"full",)]
    # a refused rename of a name binding another MDT's file changes nothing anywhere
    m1.create(far, b"f", 0o644)
    m1.rename(far, b"f", ROOT_FID, b"moved")
    m0.create(ROOT_FID, b"other", 0o644)
    with pytest.raises(LpError) as ei:
        m0.rename(ROOT_FID, b"moved", ROOT_FID, b"other", flags=int(RENAME.NOREPLACE))
    assert ei.value.errno == errno.EEXIST
    assert (b"moved",) in _rows(c, "mdt1", "SELECT name FROM remote_names")
    _quiet(c)
    _clean(c)


def test_a_replayed_move_is_checked_over_every_mdt(two):
    """Update records are replayed without the rename lock, yet their moves are checked against
    the ancestors over both MDTs: a move that only this MDT's view could not clear goes through
    (no EXDEV, which would cost the client its records), one below itself says EINVAL."""
    c, m0, m1 = two
    y = fid_from_pb(m0.mkdir(ROOT_FID, b"y", 0o755).attr.fid)
    r = fid_from_pb(m0.mkdir(y, b"r", 0o755, mdt_index=1).attr.fid)
    x = fid_from_pb(m1.mkdir(r, b"x", 0o755, mdt_index=0).attr.fid)   # MDT0's, named on MDT1
    q = fid_from_pb(m0.mkdir(ROOT_FID, b"q", 0o755).attr.fid)
    m0.mkdir(q, b"s", 0o755, mdt_index=1)                            # q holds a directory of MDT1
    t = time.time_ns()
    rep = m0.reint_batch([rec(1, t, rename=_move_op(ROOT_FID, b"q", x))])
    assert (rep.hdr.errno, rep.applied_seq) == (0, 1), rep.hdr.message
    assert [e.name for e in m0.listdir(x)] == [b"q"]
    rep = m0.reint_batch([rec(2, t + 1, rename=_move_op(ROOT_FID, b"y", q))])   # y above q now
    assert (rep.hdr.errno, rep.failed_seq) == (errno.EINVAL, 2), rep.hdr.message
    assert b"y" in {e.name for e in m0.listdir(ROOT_FID)}
    _quiet(c)
    _clean(c)


def _move_op(parent: Fid, name: bytes, into: Fid) -> mpb.RenameOp:
    return mpb.RenameOp(src_parent=fid_to_pb(parent), src_name=name, dst_parent=fid_to_pb(into), dst_name=name)
