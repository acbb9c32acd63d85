"""A mounted file system over two MDTs: a remote directory works as any directory for shell tools
and POSIX calls, its files living on MDT1; files and directories move between MDTs."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess

import pytest

from tests.dne.test_remote_dirs import _rows
from tests.support.dne import two_mdt_mount
from tests.support.servers import wait_for
from tests.support.users import run_as

pytestmark = pytest.mark.timeout(240)


def test_a_remote_directory_through_the_mount(fs):
    c, m = fs
    far = m.path / "far"
    assert far.is_dir() and os.stat(far).st_nlink == 2
    data = os.urandom(300_000)
    (far / "f").write_bytes(data)
    (far / "sub").mkdir()
    (far / "sub" / "g").write_text("hello")
    os.rename(far / "f", far / "f2")                        # within MDT1
    os.link(far / "f2", far / "hard")
    assert os.stat(far / "hard").st_nlink == 2
    assert sorted(os.listdir(far)) == ["f2", "hard", "sub"]
    assert os.stat(far).st_nlink == 3
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
    assert (far / "f2").read_bytes() == data
    # the entries and inodes are MDT1's, only the name "far" is MDT0's
    names = {r[0] for r in _rows(c, "mdt1", "SELECT name FROM dentries")}
    assert {b"f2", b"hard", b"sub", b"g"} <= names
    assert not {b"f2", b"sub"} & {r[0] for r in _rows(c, "mdt", "SELECT name FROM dentries")}
    # a file renamed between MDTs keeps its inode, data and links; a directory says EXDEV (mv copies it)
    ino = os.stat(far / "f2").st_ino
    os.rename(far / "f2", m.path / "moved")
    st = os.stat(m.path / "moved")
    assert (st.st_ino, st.st_nlink) == (ino, 2) and not (far / "f2").exists()
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
    assert (m.path / "moved").read_bytes() == data and "moved" in os.listdir(m.path)
    os.link(far / "hard", m.path / "hl")                     # a link on MDT0 to a file of MDT1
    assert os.stat(m.path / "hl").st_nlink == 3 and os.stat(m.path / "hl").st_ino == ino
    os.unlink(m.path / "hl")
    assert os.stat(far / "hard").st_nlink == 2
    with pytest.raises(OSError) as ei:
        os.link(far / "sub", m.path / "dl")
    assert ei.value.errno == errno.EPERM
    # a directory moves between MDTs whole: same inode, its entries, its parents' links
    dino, root_links = os.stat(far / "sub").st_ino, os.stat(m.path).st_nlink
    os.rename(far / "sub", m.path / "sub2")
    assert os.stat(m.path / "sub2").st_ino == dino and (m.path / "sub2" / "g").read_text() == "hello"
    assert (os.stat(far).st_nlink, os.stat(m.path).st_nlink) == (2, root_links + 1)
    with pytest.raises(OSError) as ei:                      # not below itself
        os.rename(m.path / "sub2", m.path / "sub2" / "in")
    assert ei.value.errno == errno.EINVAL
    os.rename(m.path / "sub2", far / "sub")
    assert (os.stat(far).st_nlink, os.stat(m.path).st_nlink) == (3, root_links)
    os.rename(m.path / "moved", far / "back")               # and back, onto MDT1 where it lives
    assert os.stat(far / "back").st_ino == ino and not (m.path / "moved").exists()
    os.rename(far / "back", m.path / "moved")
    (m.path / "victim").write_text("replaced")              # a rename over a file of MDT0 replaces it
    os.rename(far / "hard", m.path / "victim")
    assert os.stat(m.path / "victim").st_ino == ino and os.stat(m.path / "moved").st_nlink == 2
    os.unlink(m.path / "victim")                            # unlink of a name whose inode is on MDT1
    assert os.stat(m.path / "moved").st_nlink == 1
    os.unlink(m.path / "moved")
    assert not (m.path / "moved").exists()
    assert _rows(c, "mdt", "SELECT count(*) FROM remote_inodes") == [(1,)]      # far's stub alone
    assert _rows(c, "mdt1", "SELECT count(*) FROM remote_names") == [(1,)]      # far's name alone
    (far / "f2").write_bytes(data)
    # find, du and tar see one tree
    out = subprocess.run(["find", str(m.path), "-name", "g"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(far / "sub" / "g")
    subprocess.run(["tar", "-C", str(m.path), "-cf", str(m.path.parent / "t.tar"), "far"], check=True)
    # rmdir of the remote directory: refused while not empty, then gone from both MDTs
    with pytest.raises(OSError) as ei:
        os.rmdir(far)
    assert ei.value.errno == errno.ENOTEMPTY
    shutil.rmtree(far / "sub")
    os.unlink(far / "f2")
    os.rmdir(far)
    assert not far.exists() and "far" not in os.listdir(m.path)
    assert os.stat(m.path).st_nlink == 2


def _lfsctl(*args: str) -> subprocess.CompletedProcess:
    import sys
    from pathlib import Path
    return subprocess.run([str(Path(sys.executable).parent / "lfsctl"), *args], capture_output=True, text=True,
                          timeout=60)


def test_lfsctl_mkdir_on_an_mdt_and_getdirstripe(fs):
    c, m = fs
    r = _lfsctl("mkdir", "-i", "1", "-m", "700", str(m.path / "one"), str(m.path / "far" / "back"))
    assert (r.returncode, r.stderr) == (0, "")
    r = _lfsctl("mkdir", "-i", "0", str(m.path / "far" / "zero"))
    assert (r.returncode, r.stderr) == (0, "")
    assert oct(os.stat(m.path / "one").st_mode & 0o777) == "0o700"
    r = _lfsctl("getdirstripe", str(m.path / "one"))
    assert r.returncode == 0 and r.stdout.strip() == "lmv_stripe_count: 0 lmv_stripe_offset: 1 lmv_hash_type: none"
    import json
    got = {os.path.basename(d["path"]): d["lmv_stripe_offset"] for d in json.loads(_lfsctl(
        "getdirstripe", "--json", str(m.path), str(m.path / "far"), str(m.path / "far" / "back"),
        str(m.path / "far" / "zero")).stdout)}
    assert got == {m.path.name: 0, "far": 1, "back": 1, "zero": 0}
    # files made in each land where the directory lives
    for d in ("one", "far/zero"):
        (m.path / d / "f").write_text(d)
        assert (m.path / d / "f").read_text() == d
    assert b"f" in {r[0] for r in _rows(c, "mdt1", "SELECT name FROM dentries")}
    # bad requests: one line each, nothing made
    for args, words in ((("-i", "5", str(m.path / "x")), "no MDT 5"), (("-i", "1", str(m.path / "one")), "exists"),
                        (("-i", "1", "/tmp/notlustre/x"), "")):
        r = _lfsctl("mkdir", *args)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.stderr
    assert not (m.path / "x").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other users")
def test_sticky_directory_names_of_inodes_on_another_mdt_follow_the_owner(tmp_path):
    """In a sticky directory of MDT0, names of files and directories living on MDT1 (hard links,
    moves by root) are removed and renamed by their owner, and not by another user."""
    with two_mdt_mount(tmp_path, mount_opts=("allow_other",)) as (c, m):
        _sticky_names(c, m)


def _sticky_names(c, m) -> None:
    def as_(uid: int, fn) -> int:            # relative paths: the mount's own parent is root's
        return run_as(uid, uid, fn, cwd=m.path)
    os.chmod(m.path, 0o755)
    os.chmod(m.path / "far", 0o777)
    (m.path / "tmp").mkdir()
    os.chmod(m.path / "tmp", 0o1777)
    assert as_(2000, lambda: [open(f"far/{n}", "w").close() for n in ("linked", "moved")]) == 0
    (m.path / "far" / "dir").mkdir()
    os.chown(m.path / "far" / "dir", 2000, 2000)
    # a user's hard link into the sticky directory; root moving the user's file and directory there
    assert as_(2000, lambda: os.link("far/linked", "tmp/linked")) == 0
    os.rename(m.path / "far" / "moved", m.path / "tmp" / "moved")
    os.rename(m.path / "far" / "dir", m.path / "tmp" / "dir")
    stubs = _rows(c, "mdt", "SELECT d.name, i.uid, i.gid FROM inodes i JOIN remote_inodes r ON r.inode = i.id "
                            "JOIN dentries d ON d.child = i.id")
    assert sorted(stubs) == [(b"dir", 2000, 2000), (b"far", 0, 0), (b"linked", 2000, 2000), (b"moved", 2000, 2000)]
    for name in ("linked", "moved", "dir"):               # another user may not take them
        assert as_(3000, lambda n=name: os.rename(f"tmp/{n}", f"tmp/{n}-x")) == errno.EPERM
    assert as_(3000, lambda: os.unlink("tmp/moved")) == errno.EPERM
    assert as_(2000, lambda: os.rename("tmp/dir", "tmp/dir2")) == 0
    assert as_(2000, lambda: os.rename("tmp/dir2", "tmp/dir")) == 0
    # root gives the file and the directory (on MDT1) away: their names here follow the owner
    os.chown(m.path / "tmp" / "moved", 3000, 3000)
    os.chown(m.path / "tmp" / "dir", 3000, 3000)
    wait_for(lambda: sorted(_rows(c, "mdt", "SELECT i.uid, i.gid FROM inodes i JOIN remote_inodes r ON r.inode = i.id "
                                            "JOIN dentries d ON d.child = i.id WHERE d.name IN (X'6D6F766564', "
                                            "X'646972')")) == [(3000, 3000)] * 2, timeout=10, what="stubs' owner")
    assert as_(2000, lambda: os.unlink("tmp/moved")) == errno.EPERM
    assert as_(2000, lambda: os.rename("tmp/dir", "tmp/dir2")) == errno.EPERM
    assert as_(3000, lambda: os.rename("tmp/dir", "tmp/dir2")) == 0
    assert as_(3000, lambda: os.rmdir("tmp/dir2")) == 0
    assert as_(2000, lambda: os.unlink("tmp/linked")) == 0
    assert as_(3000, lambda: os.unlink("tmp/moved")) == 0
    assert os.listdir(m.path / "tmp") == [] and sorted(os.listdir(m.path / "far")) == ["linked"]
    assert _rows(c, "mdt1", "SELECT count(*) FROM dne_log") == [(0,)]
