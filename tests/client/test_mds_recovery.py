"""MDS recovery with real mounts: a replay barrier makes the restarted MDS lose every
transaction after it (as a power cut on its host would), and the clients replay what
it had answered, so every system call that returned before the kill -9 is still there,
on the same mounts and on a fresh one."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.support.mounts import Mount, mount
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(240)

WINDOW = ("--recovery-window", "60")


def lfsctl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lustrepy.ctl.main", *argv], capture_output=True, text=True,
                          timeout=60)


def _tree(top) -> dict[str, object]:
    """What a client sees under `top`: each path's kind, mode, link count, and content or target."""
    out: dict[str, object] = {}

    def fail(e: OSError) -> None:
        raise e                             # a listing that fails is a finding, not an empty tree
    for d, dirs, files in os.walk(top, onerror=fail):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", st.st_mode & 0o7777, st.st_nlink, f.read())
    return out


def _load(top, tag: str) -> None:
    """Creates, writes, renames, unlinks, hard and symbolic links, mkdir/rmdir, chmod, xattrs."""
    os.mkdir(top / f"dir-{tag}")
    for i in range(25):
        (top / f"dir-{tag}" / f"f{i}").write_bytes(f"{tag}-{i}-".encode() * (i * 40 + 1))
    for i in range(0, 25, 5):
        os.rename(top / f"dir-{tag}" / f"f{i}", top / f"moved-{tag}-{i}")
    for i in range(1, 25, 6):
        os.unlink(top / f"dir-{tag}" / f"f{i}")
    os.link(top / f"dir-{tag}" / "f2", top / f"hard-{tag}")
    os.symlink(f"dir-{tag}/f3", top / f"sym-{tag}")
    os.chmod(top / f"dir-{tag}" / "f4", 0o640)
    os.setxattr(top / f"dir-{tag}" / "f8", "user.tag", tag.encode())
    os.mkdir(top / f"gone-{tag}")
    os.rmdir(top / f"gone-{tag}")
    with open(top / f"dir-{tag}" / "f9", "r+b") as f:   # an overwrite through an open file
        f.seek(3)
        f.write(b"XYZ")


def test_two_mounts_lose_nothing_when_the_mds_loses_everything_after_a_barrier(tmp_path):
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    mounts: list[Mount] = []
    try:
        c.start(2, mds_args=WINDOW)
        a = mount(c, tmp_path / "a")
        mounts.append(a)
        b = mount(c, tmp_path / "b")
        mounts.append(b)
        (a.path / "before").mkdir()
        (a.path / "before" / "kept").write_text("kept")
        r = lfsctl("replay-barrier", "--mds", "--mgs", c.mds.address)
        assert r.returncode == 0, r.stderr
        assert "lost at its next start" in r.stdout
        _load(a.path, "a")
        _load(b.path, "b")
        os.rename(a.path / "before" / "kept", a.path / "before" / "renamed")
        want = _tree(a.path)
        assert _tree(b.path) == want
        assert ("dir-b/f8" in want) and os.getxattr(a.path / "dir-b" / "f8", "user.tag") == b"b"

        c.mds.stop(signal.SIGKILL)
        c.mds = c.mds_proc(*WINDOW).start()        # the barrier's copy: all of the load is gone there

        assert _tree(a.path) == want
        assert _tree(b.path) == want
        assert os.getxattr(b.path / "dir-a" / "f8", "user.tag") == b"a"
        fresh = mount(c, tmp_path / "fresh")
        mounts.append(fresh)
        assert _tree(fresh.path) == want
        info = lfsctl("mds", "--mgs", c.mds.address, "--json")
        assert info.returncode == 0, info.stderr
        rec = json.loads(info.stdout)["recovery"]
        assert rec["state"] == "complete" and rec["clients_expected"] == 2 and rec["clients_recovered"] == 2
        assert rec["replays_applied"] > 100 and rec["replays_failed"] == 0 and rec["clients_evicted"] == 0
    finally:
        for m in mounts:
            m.stop()
        c.stop()


def test_a_replay_that_no_longer_applies_is_reported_by_the_next_fsync_of_its_file(tmp_path):
    window = ("--recovery-window", "4")
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    mounts: list[Mount] = []
    fd = -1
    try:
        c.start(1, mds_args=window)
        a = mount(c, tmp_path / "a", "nowbc")
        mounts.append(a)
        gone = mount(c, tmp_path / "gone", "nowbc")
        mounts.append(gone)
        (a.path / "x").write_text("x")
        r = lfsctl("replay-barrier", "--mds", "--mgs", c.mds.address)
        assert r.returncode == 0, r.stderr
        os.mkdir(gone.path / "d")                       # lost with its client
        os.link(a.path / "x", a.path / "d" / "hard")    # a's, but it needs the lost directory
        os.mkdir(a.path / "e")                          # a's, and it applies
        fd = os.open(a.path / "x", os.O_RDWR)
        assert gone.popen is not None
        gone.popen.send_signal(signal.SIGKILL)          # this client never comes back
        gone.popen.wait(10)
        c.mds.stop(signal.SIGKILL)
        c.mds = c.mds_proc(*window).start()
        assert sorted(os.listdir(a.path)) == ["e", "x"]     # waits for the window: "gone" is missing
        with pytest.raises(OSError) as e:
            os.fsync(fd)
        assert e.value.errno in (errno.ENOENT, errno.ESTALE)     # the directory it named is gone
        os.fsync(fd)                                    # reported once
        assert os.stat(a.path / "x").st_nlink == 1
    finally:
        if fd >= 0:
            os.close(fd)
        for m in mounts:
            m.stop()
        c.stop()


def test_closes_after_a_barrier_are_replayed_so_no_open_and_no_orphan_is_left(tmp_path):
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    mounts: list[Mount] = []
    try:
        c.start(2, mds_args=WINDOW)
        a = mount(c, tmp_path / "a", "nowbc")
        mounts.append(a)
        assert lfsctl("replay-barrier", "--mds", "--mgs", c.mds.address).returncode == 0
        for i in range(10):
            (a.path / f"f{i}").write_bytes(os.urandom(1000 + i))    # open, write, close
        for i in range(0, 10, 2):
            os.unlink(a.path / f"f{i}")                             # closed, then unlinked: destroyed
        c.mds.stop(signal.SIGKILL)
        c.mds = c.mds_proc(*WINDOW).start()
        assert sorted(os.listdir(a.path)) == [f"f{i}" for i in range(1, 10, 2)]

        def rows(table: str) -> int:
            db = sqlite3.connect(f"file:{c.root / 'mdt' / 'mdt.db'}?mode=ro", uri=True)
            try:
                return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            finally:
                db.close()
        # the last file's close may still be on its way (the kernel sends RELEASE after close(2)
        # returns, and the client resends a close the restart cut off): it lands within seconds
        wait_for(lambda: rows("opens") == 0, timeout=30, what="no open left on the MDT")
        assert rows("orphans") == 0
        r = lfsctl("lfsck", "--mgs", c.mds.address)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        for m in mounts:
            m.stop()
        c.stop()
