"""A mounted file system over two MDTs: a remote directory works as any directory for shell tools
and POSIX calls, its files living on MDT1; names that would move between MDTs say EXDEV."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess

import pytest

from lustrepy.client.mdc import Mdc
from lustrepy.common.fid import ROOT_FID
from tests.dne.test_mdts import _all_active
from tests.dne.test_remote_dirs import _rows
from tests.support.mounts import mount
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def fs(tmp_path):
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv").start(1, n_mdts=2)
    m = None
    try:
        wait_for(lambda: _all_active(c.mds.address, 2), what="MDT1 active")
        admin = Mdc(c.mds.address, c.fsname, client_id="admin:mk")
        admin.connect()
        try:
            admin.mkdir(ROOT_FID, b"far", 0o777, mdt_index=1)
        finally:
            admin.close()
        m = mount(c, tmp_path / "m")
        yield c, m
    finally:
        if m is not None:
            m.stop()
        c.stop()


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
    # between MDTs: EXDEV for rename(2) and link(2); mv copies instead
    with pytest.raises(OSError) as ei:
        os.rename(far / "f2", m.path / "moved")
    assert ei.value.errno == errno.EXDEV
    with pytest.raises(OSError) as ei:
        os.link(far / "f2", m.path / "hl")
    assert ei.value.errno == errno.EXDEV
    shutil.move(str(far / "f2"), str(m.path / "moved"))
    assert (m.path / "moved").read_bytes() == data and not (far / "f2").exists()
    # find, du and tar see one tree
    out = subprocess.run(["find", str(m.path), "-name", "g"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(far / "sub" / "g")
    subprocess.run(["tar", "-C", str(m.path), "-cf", str(m.path.parent / "t.tar"), "far"], check=True)
    # rmdir of the remote directory: refused while not empty, then gone from both MDTs
    with pytest.raises(OSError) as ei:
        os.rmdir(far)
    assert ei.value.errno == errno.ENOTEMPTY
    shutil.rmtree(far / "sub")
    os.unlink(far / "hard")
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
