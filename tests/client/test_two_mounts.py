"""Two clients of one cluster (like Lustre's sanityn): what one does, the other
sees at its next call, through lock callbacks; appends from both lose nothing."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading

import pytest

from tests.support.dne import remote_root_dir, striped_root_dir
from tests.support.mounts import mount
from tests.support.servers import BIN, Cluster

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module", params=["mdt0", "remote", "striped"])
def two(request, tmp_path_factory):
    """Two mounts' roots; with "remote", a directory whose inode and entries live on MDT1 of a
    file system of two MDTs, seen through both mounts (its locks are MDT1's); with "striped", one
    whose entries are striped over both MDTs."""
    root = tmp_path_factory.mktemp("two")
    (root / "srv").mkdir()
    c = Cluster(root / "srv")
    mounts = []
    try:
        c.start(2, n_mdts=1 if request.param == "mdt0" else 2)
        sub = ""
        if request.param == "remote":
            remote_root_dir(c, b"on-mdt1")
            sub = "on-mdt1"
        elif request.param == "striped":
            striped_root_dir(c, b"on-mdt1")
            sub = "on-mdt1"
        mounts.append(mount(c, root / "a"))
        mounts.append(mount(c, root / "b"))
        yield mounts[0].path / sub, mounts[1].path / sub
    finally:
        for m in mounts:
            m.stop()
        c.stop()


def test_write_on_one_is_read_on_the_other(two):
    a, b = two
    (a / "w").write_bytes(b"first")
    assert (b / "w").read_bytes() == b"first"
    with open(a / "w", "r+b") as f:               # still open: data must reach b anyway
        f.write(b"SECOND")
        f.flush()
        assert (b / "w").read_bytes() == b"SECOND"
        assert os.stat(b / "w").st_size == 6
    (a / "w").write_bytes(b"x" * 3_000_000)
    assert os.stat(b / "w").st_size == 3_000_000
    assert (b / "w").read_bytes() == b"x" * 3_000_000


def test_namespace_changes_are_seen_at_the_next_call(two):
    a, b = two
    (a / "n").mkdir()
    (a / "n" / "f").write_text("v")
    assert sorted(os.listdir(b / "n")) == ["f"]
    assert os.stat(b / "n" / "f").st_mode & 0o777 != 0o600
    os.chmod(a / "n" / "f", 0o600)
    assert os.stat(b / "n" / "f").st_mode & 0o777 == 0o600
    os.rename(a / "n" / "f", a / "n" / "g")
    with pytest.raises(FileNotFoundError):
        os.stat(b / "n" / "f")
    assert (b / "n" / "g").read_text() == "v"
    os.truncate(a / "n" / "g", 0)
    assert os.stat(b / "n" / "g").st_size == 0
    os.unlink(a / "n" / "g")
    assert not (b / "n" / "g").exists()
    assert os.listdir(b / "n") == []
    (b / "n" / "late").write_text("from b")      # a negative entry on a must not hide it
    assert (a / "n" / "late").read_text() == "from b"
    with pytest.raises(OSError) as ei:
        os.rmdir(a / "n")
    assert ei.value.errno == errno.ENOTEMPTY


def _drop_kernel_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def test_after_a_cache_drop_names_come_from_held_locks_and_stay_coherent(two):
    """The kernel forgets its dentries and inodes; the client still holds the locks that cover
    them, so a stat answers from them (no MDS RPC), and whatever the other client changes
    meanwhile calls those locks back: the next look sees its change."""
    a, b = two
    d = a / "cold"
    d.mkdir()
    for i in range(50):
        (d / f"f{i}").write_bytes(b"a" * i)
    (d / "moved").write_bytes(b"old")
    (d / "over").write_bytes(b"old")
    assert [os.stat(d / f"f{i}").st_size for i in range(50)] == list(range(50))
    assert os.stat(d / "moved").st_size == os.stat(d / "over").st_size == 3
    _drop_kernel_caches()
    before = _mds_counter(a, "intent")
    assert [os.stat(d / f"f{i}").st_size for i in range(50)] == list(range(50))
    assert _mds_counter(a, "intent") - before <= 1      # at most the directory's own name, in the root
    # b changes what a holds, with the kernel's caches on a dropped again
    _drop_kernel_caches()
    bd = b / "cold"
    os.rename(bd / "moved", bd / "elsewhere")
    (bd / "new").write_bytes(b"fresh")
    os.rename(bd / "new", bd / "over")
    with open(bd / "f7", "ab") as f:
        f.write(b"+")
    os.chmod(bd / "f8", 0o600)
    assert not (d / "moved").exists()
    assert (d / "elsewhere").read_bytes() == b"old"
    assert (d / "over").read_bytes() == b"fresh"
    assert os.stat(d / "f7").st_size == 8
    assert os.stat(d / "f8").st_mode & 0o777 == 0o600


def _mds_counter(path, kind: str) -> int:
    """The MDS's count of one kind of request (`lfsctl mds` on the mount)."""
    out = subprocess.run([str(BIN / "lfsctl"), "mds", "--json", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return int(json.loads(out.stdout)["counters"].get(kind, 0))


def test_appends_from_both_clients_lose_nothing(two):
    a, b = two
    (a / "log").write_bytes(b"")
    n = 200

    def appender(base, tag: bytes) -> None:
        with open(base / "log", "ab", buffering=0) as f:
            for i in range(n):
                f.write(tag + b"%04d\n" % i)

    ts = [threading.Thread(target=appender, args=(a, b"A")), threading.Thread(target=appender, args=(b, b"B"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lines = (a / "log").read_bytes().splitlines()
    assert len(lines) == 2 * n
    assert sorted(lines) == sorted([b"A%04d" % i for i in range(n)] + [b"B%04d" % i for i in range(n)])
    assert (b / "log").read_bytes() == (a / "log").read_bytes()


def test_inode_numbers_agree(two):
    a, b = two
    (a / "ino").write_text("i")
    assert os.stat(a / "ino").st_ino == os.stat(b / "ino").st_ino


def test_xattrs_set_on_one_are_seen_on_the_other(two):
    a, b = two
    (a / "xa").write_text("x")
    with pytest.raises(OSError) as ei:
        os.getxattr(b / "xa", "user.k")              # absent: b may remember that under its lock
    assert ei.value.errno == errno.ENODATA
    os.setxattr(a / "xa", "user.k", b"v1")
    assert os.getxattr(b / "xa", "user.k") == b"v1"
    os.removexattr(b / "xa", "user.k")
    with pytest.raises(OSError) as ei:
        os.getxattr(a / "xa", "user.k")
    assert ei.value.errno == errno.ENODATA


def test_random_reads_match_and_see_the_other_clients_overwrite(two):
    import random
    a, b = two
    data = bytearray(os.urandom(6 * 1024 * 1024 + 100))
    (a / "rr").write_bytes(data)
    subprocess_drop_caches()
    rnd = random.Random(7)
    fd = os.open(b / "rr", os.O_RDONLY)
    try:
        for _ in range(300):                       # random reads put whole blocks in b's page cache
            off = rnd.randrange(0, len(data) - 4096)
            assert os.pread(fd, 4096, off) == data[off:off + 4096]
        patch = os.urandom(300_000)
        with open(a / "rr", "r+b") as f:           # a overwrites: b's PR lock is called back
            f.seek(1_000_000)
            f.write(patch)
        data[1_000_000:1_300_000] = patch
        for _ in range(300):
            off = rnd.randrange(900_000, 1_400_000)
            assert os.pread(fd, 4096, off) == data[off:off + 4096]
        assert (b / "rr").read_bytes() == bytes(data)
    finally:
        os.close(fd)


def subprocess_drop_caches() -> None:
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


@pytest.mark.timeout(240)
def test_the_other_client_never_keeps_a_size_from_before_a_close(two):
    """A writer's close changes the MDS's size without calling any lock back, so a reply must
    never pair a size read before the close with 'authoritative' read after it: the other
    client would keep that stale size under its lock (seen as files read back empty)."""
    a, b = two
    (a / "sz").mkdir()
    bad = []
    for i in range(150):
        pa, pb = a / "sz" / f"w{i % 5}", b / "sz" / f"w{i % 5}"
        pa.write_bytes(b"first")
        if pb.read_bytes() != b"first":
            bad.append((i, "first", os.stat(pb).st_size))
        pa.write_bytes(b"x" * 300_000)
        if os.stat(pb).st_size != 300_000:
            bad.append((i, "stat", os.stat(pb).st_size))
    assert bad == []
