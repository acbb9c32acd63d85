"""The metadata write-back cache on a file system of two MDTs, through real mounts: a client
holds grants from both MDTs at once, names new files from each MDT's own sequences, sends
each MDT its own records (one journal, one numbering, chained per MDT), and after a kill -9
the next mount replays each MDT's records there, once; another client sees it all."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from lustrepy.client.mdc import Mdc
from tests.ctl.test_lfsck import lfsctl
from tests.support.dne import remote_root_dir
from tests.support.mounts import Mount, mount
from tests.support.servers import Cluster

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def c(tmp_path: Path):
    (tmp_path / "srv").mkdir()
    cl = Cluster(tmp_path / "srv")
    try:
        cl.start(1, n_mdts=2)
        remote_root_dir(cl, b"far")             # on MDT1; waits until both MDTs are active
        yield cl
    finally:
        cl.stop()


def _counters(address: str, fsname: str) -> Counter[str]:
    m = Mdc(address, fsname)
    try:
        return Counter(dict(m.info().counters))
    finally:
        m.close()


def _both(c: Cluster) -> tuple[Counter[str], Counter[str]]:
    return _counters(c.mds.address, c.fsname), _counters(c.mdts[0].address, c.fsname)


def _state(path: Path) -> dict:
    return json.loads(os.getxattr(path, "lustrepy.wbc"))


def _mdt_of(path: Path) -> int:
    """The MDT of the directory's inode, as `lfsctl getdirstripe` reads it (lmm_stripe_offset)."""
    return int(json.loads(os.getxattr(path, "lustrepy.lmv"))["mdt"])


def _fill(top: Path, n: int) -> list[str]:
    """Files, a subdirectory with files, a rename and a chmod: the names made, relative to top."""
    for i in range(n):
        os.close(os.open(top / f"f{i:04d}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o640))
    (top / "sub").mkdir()
    for i in range(20):
        (top / "sub" / f"g{i}").write_bytes(b"x" * i)
    os.rename(top / "f0000", top / "sub" / "moved")
    os.chmod(top / "f0001", 0o600)
    return sorted([f"f{i:04d}" for i in range(1, n)] + ["sub"])


def _fsync(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _wbc(tmp_path: Path, *more: str) -> tuple[str, ...]:
    return ("wbc", f"journal={tmp_path / 'journal'}", *more)


def test_grants_of_both_mdts_at_once_each_mdt_gets_its_own_records(c: Cluster, tmp_path: Path) -> None:
    a = mount(c, tmp_path / "a", *_wbc(tmp_path, "wbc_age=30"))
    b = None
    try:
        near, far = a.path / "near", a.path / "far"
        near.mkdir()
        for top in (near, far):
            (top / "seed").touch()                      # the create that brings the grant
            assert _state(top)["held_here"], top
        assert (_mdt_of(near), _mdt_of(far)) == (0, 1)
        before0, before1 = _both(c)
        want = {top: _fill(top, 300) for top in (near, far)}
        assert _state(near)["held_here"] and _state(far)["held_here"]
        mid0, mid1 = _both(c)
        for was, now in ((before0, mid0), (before1, mid1)):     # local work: no RPC per file
            assert now["intent"] - was["intent"] < 20 and now["reint_batch"] - was["reint_batch"] < 5
        _fsync(near)                                            # every record to its MDT, committed
        after0, after1 = _both(c)
        # 300 creates, mkdir, 20 creates (+20 sizes), rename, chmod; seed was made by the MDS
        assert after1["batch_records"] - before1["batch_records"] >= 323
        assert after0["batch_records"] - before0["batch_records"] >= 323
        assert after0["batch_gaps"] == after1["batch_gaps"] == 0
        assert _mdt_of(far / "sub") == 1 and _mdt_of(near / "sub") == 0     # made under the grant

        b = mount(c, tmp_path / "b")
        for top in ("near", "far"):
            got = sorted(os.listdir(b.path / top))
            assert got == sorted(want[a.path / top] + ["seed"]), top
            assert (b.path / top / "sub" / "g7").read_bytes() == b"x" * 7
            assert stat.S_IMODE(os.stat(b.path / top / "f0001").st_mode) == 0o600
            assert os.stat(b.path / top / "sub" / "moved").st_ino == os.stat(a.path / top / "sub" / "moved").st_ino
        assert not _state(a.path / "far")["held_here"]           # b's look called the grants back
    finally:
        if b is not None:
            b.stop()
        a.stop()
    r = lfsctl("lfsck", "--mgs", c.mds.address)
    assert (r.returncode, r.stdout) == (0, ""), r.stdout + r.stderr


def test_killed_client_replays_each_mdts_records_there_once(c: Cluster, tmp_path: Path) -> None:
    opts = _wbc(tmp_path, "wbc_age=600", "client_id=node-k")
    a = mount(c, tmp_path / "a", *opts)
    near, far = a.path / "near", a.path / "far"
    near.mkdir()
    for r, top in enumerate((far, near, far)):  # grants of MDT1, MDT0, then MDT1 again: seqs interleave
        for i in range(50):
            (top / f"k{r}-{i:02d}").touch()
    names = {top.name: sorted(os.listdir(top)) for top in (near, far)}
    # near's grant came with its mkdir, far's with its first create
    assert _state(far)["records_pending"] == 49 + 50 + 50
    before0, before1 = _both(c)
    os.kill(a.popen.pid, signal.SIGKILL)
    a.popen.wait(10)
    subprocess.run(["fusermount3", "-uz", str(a.path)], capture_output=True)
    a.popen = None
    now0, now1 = _both(c)
    assert (now0["reint_batch"], now1["reint_batch"]) == (before0["reint_batch"], before1["reint_batch"])   # nothing sent
    a2: Mount = mount(c, tmp_path / "a", *opts)         # the same identity: its journal replays
    try:
        for top in ("near", "far"):
            assert sorted(os.listdir(a2.path / top)) == names[top]
        after0, after1 = _both(c)
        assert after1["batch_records"] - before1["batch_records"] == len(names["far"]) - 1
        assert after0["batch_records"] - before0["batch_records"] == len(names["near"])
        # new work after the replay goes on numbering past both MDTs
        (a2.path / "far" / "later").touch()
        (a2.path / "near" / "later").touch()
        _fsync(a2.path / "far")
        assert _both(c)[1]["batch_gaps"] == 0 and _both(c)[0]["batch_gaps"] == 0
    finally:
        a2.stop()
    assert not list((tmp_path / "journal").glob("*.jnl"))      # clean unmount: nothing left


def test_a_kept_file_linked_into_another_mdts_directory_gets_its_objects(c: Cluster, tmp_path: Path) -> None:
    """A small file made under MDT1's grant keeps its bytes in the client; a hard link in a
    directory of MDT0 (made first, so the client names the file there first) must not keep
    its objects from being made when the bytes go out."""
    a = mount(c, tmp_path / "a", *_wbc(tmp_path, "wbc_age=30"))
    b = None
    try:
        near, far = a.path / "near", a.path / "far"
        near.mkdir()
        (far / "seed").touch()
        assert _state(far)["held_here"]
        data = os.urandom(3000)
        (far / "kept").touch()
        os.link(far / "kept", near / "kept")            # the MDS's: a name on MDT0, the inode on MDT1
        (far / "kept").write_bytes(data)                # kept here, as the file has no objects yet
        _fsync(far)                                     # records, then the bytes: the file's objects
        b = mount(c, tmp_path / "b")
        for top in ("near", "far"):
            assert (b.path / top / "kept").read_bytes() == data
            assert os.stat(b.path / top / "kept").st_nlink == 2
    finally:
        if b is not None:
            b.stop()
        a.stop()
