"""setattr as another user on real mounts, server side and with the write-back
cache: a write by someone else clears setuid/setgid as Linux does, touch by a
writer who is not the owner works while explicit times need ownership, a
refused truncate changes nothing, and a refused update record is reported by
the file it concerns only.

Every case runs the same steps in a directory of a local file system beside
the mount, and the outcomes (errno, mode) must agree with what Linux gives."""

from __future__ import annotations

import ctypes
import errno
import itertools
import json
import os
import stat
import time
from pathlib import Path

import pytest

from lustrepy.client.journal import Journal
from lustrepy.client.mdc import Mdc
from lustrepy.client.wbc import Wbc
from lustrepy.common.fid import Fid
from lustrepy.common.records import Cred
from lustrepy.rpc.convert import fid_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from tests.support.mounts import mount
from tests.support.servers import Cluster
from tests.support.users import run_as

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other users")]

NOBODY = 65534
_dirs = itertools.count()


def as_user(cwd: Path, fn, uid: int = NOBODY, gid: int = NOBODY) -> int:
    """Run fn in a child that has moved into cwd and dropped to uid/gid (no other groups);
    its errno, 0 on success. The child enters cwd first: the test's own folders above
    the mount are closed to other users."""
    return run_as(uid, gid, fn, cwd=cwd)


def _sync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("setattr")
    (root / "srv").mkdir()
    c = Cluster(root / "srv")
    try:
        c.start(1)
        yield c, root
    finally:
        c.stop()


@pytest.fixture(scope="module", params=["nowbc", "wbc"])
def mnt(request, cluster):
    c, root = cluster
    path = root / f"m-{request.param}"
    opts = ("allow_other", "nowbc") if request.param == "nowbc" else \
        ("allow_other", "wbc", f"journal={root / 'journal'}")
    m = mount(c, path, *opts)
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def dirs(mnt, tmp_path):
    """A fresh directory open to everyone on the mount (made by root: under the
    write-back cache its files are made locally) and one on the local file system.
    Afterwards the mount has flushed everything and the MDS refused no update record:
    the write-back cache refused locally what the MDS would."""
    log_at = mnt.log.stat().st_size
    pair = []
    for base in (mnt.path, tmp_path):
        d = base / f"d{next(_dirs)}"
        d.mkdir()
        d.chmod(0o777)
        pair.append(d)
    if "wbc" in mnt.popen.args[-1].split(","):
        assert json.loads(os.getxattr(pair[0], "lustrepy.wbc"))["held_here"]
    yield pair[0], pair[1]
    _sync_dir(mnt.path)
    with open(mnt.log, "rb") as f:
        f.seek(log_at)
        assert b"refused by the MDS" not in f.read()


def _make(d: Path, name: str, mode: int, gid: int = 0, data: bytes = b"abc") -> Path:
    p = d / name
    p.write_bytes(data)
    os.chown(p, 0, gid)
    os.chmod(p, mode)
    return p


def _write(name: str):
    def fn() -> None:
        fd = os.open(name, os.O_WRONLY)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    return fn


# ---- setuid / setgid cleared by a write from someone else --------------------------------------

@pytest.mark.parametrize("mode,gid", [(0o4777, 0), (0o2777, 0), (0o6777, 0), (0o2767, NOBODY), (0o2777, NOBODY),
                                      (0o4766, 0), (0o2767, 0)],
                         ids=["4777", "2777", "6777", "2767-member", "2777-member", "4766", "2767"])
def test_write_by_another_user_clears_setid_bits(dirs, mode, gid):
    seen = []
    for d in dirs:
        p = _make(d, "f", mode, gid)
        rc = as_user(d, _write("f"))
        seen.append((rc, oct(stat.S_IMODE(os.stat(p).st_mode)), p.read_bytes()))
    assert seen[0] == seen[1], f"mount {seen[0]} != local {seen[1]}"
    assert seen[0][0] == 0


@pytest.mark.parametrize("mode", [0o6777, 0o2767], ids=["6777", "2767"])
@pytest.mark.parametrize("how", ["truncate", "ftruncate"])
def test_truncate_by_another_user_clears_setid_bits(dirs, how, mode):
    def fn() -> None:
        if how == "truncate":
            os.truncate("f", 1)
        else:
            fd = os.open("f", os.O_WRONLY)
            try:
                os.ftruncate(fd, 1)
            finally:
                os.close(fd)
    seen = []
    for d in dirs:
        p = _make(d, "f", mode)
        rc = as_user(d, fn)
        seen.append((rc, oct(stat.S_IMODE(os.stat(p).st_mode)), os.stat(p).st_size))
    assert seen[0] == seen[1] == (0, oct(mode & 0o777), 1)


# ---- times ----------------------------------------------------------------------------------------

UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _utimensat(name: str, atime_nsec: int, mtime_nsec: int) -> None:
    """utimensat(AT_FDCWD, name, {UTIME_NOW or UTIME_OMIT, ...}, 0)."""
    ts = (_Timespec * 2)(_Timespec(0, atime_nsec), _Timespec(0, mtime_nsec))
    if _libc.utimensat(-100, name.encode(), ts, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


@pytest.mark.parametrize("how", ["utime_now", "utimensat_now", "touch", "atime_now_only"],
                         ids=["utime-none", "utimensat-now-now", "touch", "utimensat-now-omit"])
def test_times_now_by_a_writer_who_is_not_the_owner(dirs, how):
    def fn() -> None:
        if how == "utime_now":
            os.utime("f", None)
        elif how == "utimensat_now":
            _utimensat("f", UTIME_NOW, UTIME_NOW)
        elif how == "touch":
            if os.spawnvp(os.P_WAIT, "touch", ["touch", "f"]) != 0:
                raise OSError(errno.EPERM, "touch failed")
        else:
            _utimensat("f", UTIME_NOW, UTIME_OMIT)
    seen = []
    for d in dirs:
        p = _make(d, "f", 0o666)
        os.utime(p, ns=(10**9, 2 * 10**9))
        before = time.time_ns() - 10**9
        rc = as_user(d, fn)
        _sync_dir(d)
        st = os.stat(p)
        seen.append((rc, st.st_atime_ns >= before, st.st_mtime_ns >= before))
    assert seen[0] == seen[1], f"mount {seen[0]} != local {seen[1]}"
    # Linux: both times "now" needs write permission only; one of them omitted counts as
    # setting times, for the owner alone.
    assert seen[0] == ((errno.EPERM, False, False) if how == "atime_now_only" else (0, True, True))


def test_explicit_times_need_the_owner(dirs):
    seen = []
    for d in dirs:
        p = _make(d, "f", 0o666)
        os.utime(p, ns=(10**9, 2 * 10**9))
        rc_explicit = as_user(d, lambda: os.utime("f", ns=(5 * 10**9, 6 * 10**9)))
        rc_near_now = as_user(d, lambda: os.utime("f", ns=(time.time_ns() - 60 * 10**9,) * 2))
        st = os.stat(p)
        seen.append((rc_explicit, rc_near_now, st.st_atime_ns, st.st_mtime_ns))
    assert seen[0] == seen[1] == (errno.EPERM, errno.EPERM, 10**9, 2 * 10**9)


def test_an_owner_keeps_its_exact_times(dirs):
    m, _ = dirs
    p = _make(m, "f", 0o666)
    os.chown(p, NOBODY, NOBODY)
    t = time.time_ns() - 1234567          # near the clock, yet explicit: kept to the nanosecond
    assert as_user(m, lambda: os.utime("f", ns=(t, t + 1))) == 0
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (t, t + 1)


# ---- a refused change changes nothing -----------------------------------------------------------

@pytest.mark.parametrize("how", ["truncate", "truncate-cmd", "chmod", "chown", "utime"])
def test_a_refused_setattr_changes_nothing(dirs, how):
    def fn() -> None:
        if how == "truncate":
            os.truncate("f", 1)
        elif how == "truncate-cmd":
            if os.spawnvp(os.P_WAIT, "truncate", ["truncate", "-s", "1", "f"]) != 0:
                raise OSError(errno.EACCES, "truncate failed")
        elif how == "chmod":
            os.chmod("f", 0o666)
        elif how == "chown":
            os.chown("f", NOBODY, -1)
        else:
            os.utime("f", ns=(1, 2))
    seen = []
    for d in dirs:
        p = _make(d, "f", 0o644, data=b"0123456789")
        time.sleep(0.05)
        st0 = os.stat(p)
        rc = as_user(d, fn)
        _sync_dir(d)                    # what the write-back cache kept reaches the MDS
        st1 = os.stat(p)
        assert (st1.st_size, st1.st_mode, st1.st_uid, st1.st_ctime_ns, st1.st_mtime_ns) == \
            (st0.st_size, st0.st_mode, st0.st_uid, st0.st_ctime_ns, st0.st_mtime_ns), f"{how} in {d}"
        assert p.read_bytes() == b"0123456789"
        seen.append(rc)
    assert seen[0] == seen[1] != 0


def test_other_setattr_paths_agree_with_linux(dirs):
    """chown/chgrp by someone not the owner, ftruncate through an fd opened before a chmod,
    chmod g+s by the owner who is not in the group: errno and mode as Linux gives them."""
    def ftrunc_after_chmod() -> None:
        fd = os.open("g", os.O_WRONLY)
        try:
            os.chmod("g", 0o444)
            os.ftruncate(fd, 1)
        finally:
            os.close(fd)
    seen = []
    for d in dirs:
        p = _make(d, "f", 0o666)
        g = _make(d, "g", 0o666)
        os.chown(g, NOBODY, NOBODY)
        out = [as_user(d, lambda: os.chown("f", -1, NOBODY)),
               as_user(d, lambda: os.chown("f", NOBODY, -1)),
               as_user(d, ftrunc_after_chmod),
               os.stat(g).st_size]
        h = _make(d, "h", 0o644)
        os.chown(h, NOBODY, 0)
        out += [as_user(d, lambda: os.chmod("h", 0o2755)), oct(stat.S_IMODE(os.stat(h).st_mode)),
                oct(stat.S_IMODE(os.stat(p).st_mode)), os.stat(p).st_uid]
        seen.append(out)
    assert seen[0] == seen[1]


# ---- a refused update record (write-back cache) reaches only the file it concerns --------------

def test_another_users_changes_do_not_fail_an_unrelated_fsync(dirs):
    """Other users' setattrs on one file, some allowed and some refused, then a new file's
    first write and fsync: the fsync reports nothing of the others' changes (under the
    write-back cache, a change done locally that the MDS then refused used to surface here)."""
    m, _ = dirs
    f = _make(m, "theirs", 0o666)
    os.utime(f, ns=(10**9, 2 * 10**9))
    assert as_user(m, lambda: os.chmod("theirs", 0o600)) == errno.EPERM
    assert as_user(m, lambda: os.utime("theirs", ns=(1, 2))) == errno.EPERM
    assert as_user(m, lambda: os.chown("theirs", NOBODY, -1)) == errno.EPERM
    assert as_user(m, lambda: os.utime("theirs", None)) == 0
    fd = os.open(m / "mine", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"data")
        os.fsync(fd)
    finally:
        os.close(fd)
    _sync_dir(m)
    st = os.stat(f)
    assert stat.S_IMODE(st.st_mode) == 0o666 and st.st_uid == 0
    assert st.st_mtime_ns > 2 * 10**9
    assert (m / "mine").read_bytes() == b"data"


def test_a_refused_record_is_reported_by_the_file_it_concerns(cluster, tmp_path, caplog):
    """A record the MDS refuses: logged with its FID and errno, reported once by the file
    it concerns, and by no other."""

    c, _ = cluster
    mdc = Mdc(c.mds.address, c.fsname, client_id=f"refusal-{os.getpid()}")
    mdc.connect()
    wbc = Wbc(mdc, Journal(tmp_path / "j.jnl"))
    try:
        wbc.start()
        refused: list[bool] = []
        wbc.on_refused = lambda: refused.append(True)
        root = mdc.root
        wbc.record(Cred(NOBODY, NOBODY), time.time_ns(),
                   setattr=mpb.SetattrOp(fid=fid_to_pb(root), valid=1, mode=0o40700))
        with caplog.at_level("WARNING", logger="lustrepy.client.wbc"):
            wbc.flush(commit=True)
        assert refused == [True]
        assert any(str(root) in r.getMessage() and f"errno {errno.EPERM}" in r.getMessage()
                   for r in caplog.records), caplog.text
        assert wbc.take_error(Fid(root.seq, root.oid + 12345, 0)) is None
        err = wbc.take_error(root)
        assert err is not None and err.errno == errno.EPERM
        assert wbc.take_error(root) is None                 # reported once
    finally:
        wbc.close()
        mdc.close()
