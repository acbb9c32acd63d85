"""open(O_TRUNC) on real mounts: `cmd > existing-file` leaves exactly what cmd wrote.

The kernel sends O_TRUNC inside the OPEN (atomic O_TRUNC, no SETATTR first), so
the open itself must cut the file: its size at the MDS, its objects on every
OST, its mtime and ctime, and another client's cached pages, size and times.
Each case runs with the metadata write-back cache off and on (two mounts of
one cluster, in both modes), and on files with one and four stripes, files
without objects yet, files made under a write-back-cache grant and files open
on the other client.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from lustrepy.client.mdc import Mdc
from tests.support.mounts import mount
from tests.support.servers import Cluster

pytestmark = pytest.mark.timeout(180)

LONG = b"longer content here\n"


@pytest.fixture(scope="module", params=["nowbc", "wbc"])
def two(request, tmp_path_factory):
    """Mounts a and b of one 4-OST cluster, both in the parametrized mode (and the cluster)."""
    mode = request.param
    root = tmp_path_factory.mktemp(f"otrunc-{mode}")
    (root / "srv").mkdir()
    c = Cluster(root / "srv")
    mounts = []
    try:
        c.start(4)
        for name in ("a", "b"):
            opts = ("wbc", f"journal={root / ('journal-' + name)}") if mode == "wbc" else ("nowbc",)
            mounts.append(mount(c, root / name, *opts))
        yield mode, mounts[0].path, mounts[1].path, c
    finally:
        for m in mounts:
            m.stop()
        c.stop()


def _dir(base, name: str, stripes: int = 1):
    d = base / name
    d.mkdir()
    if stripes > 1:
        os.setxattr(d, "lustrepy.lov", json.dumps({"stripe_size": 65536, "stripe_count": stripes}).encode())
    return d


def _sh(cmd: str, cwd) -> None:
    subprocess.run(["sh", "-c", cmd], cwd=cwd, check=True, timeout=60)


def _tick() -> None:
    """Let the clock move past the last change's timestamps."""
    time.sleep(0.02)


@pytest.mark.parametrize("stripes", [1, 4])
def test_shell_redirection_over_an_existing_file(two, stripes):
    mode, a, b, _ = two
    d = _dir(a, f"redir{stripes}", stripes)
    big = os.urandom(3 * 65536 * stripes + 123)         # every stripe holds bytes
    (d / "g").write_bytes(big)
    bd = b / d.name
    assert (bd / "g").read_bytes() == big               # b caches pages, size and times
    before = os.stat(bd / "g")
    _tick()
    _sh("printf 'x\\n' > g", d)
    assert (d / "g").read_bytes() == b"x\n"
    st = os.stat(bd / "g")
    assert st.st_size == 2
    assert st.st_mtime_ns > before.st_mtime_ns and st.st_ctime_ns > before.st_ctime_ns
    assert (bd / "g").read_bytes() == b"x\n"
    # the objects were cut, not only the size: growing the file again shows zeros, not old bytes
    os.truncate(bd / "g", len(big))
    assert (d / "g").read_bytes() == b"x\n" + bytes(len(big) - 2)
    if stripes > 1:
        lov = json.loads(os.getxattr(d / "g", "lustrepy.lov"))
        assert len({o[0] for o in lov["objects"]}) == 4


def test_printf_twice_as_in_the_report(two):
    mode, a, b, _ = two
    d = _dir(a, "report")
    _sh("printf 'longer content here\\n' > g; printf 'x\\n' > g", d)
    assert (d / "g").read_bytes() == b"x\n"
    assert (b / "report" / "g").read_bytes() == b"x\n"
    # an empty file opened with O_TRUNC still gets new times (as on Linux)
    _sh(": > e", d)
    before = os.stat(b / "report" / "e")
    _tick()
    _sh(": > e", d)
    assert os.stat(b / "report" / "e").st_mtime_ns > before.st_mtime_ns


def test_o_trunc_while_the_other_client_holds_it_open(two):
    mode, a, b, _ = two
    d = _dir(a, "held", 4)
    (d / "f").write_bytes(LONG * 10000)
    rd = os.open(b / "held" / "f", os.O_RDONLY)
    try:
        assert os.pread(rd, 100, 0) == (LONG * 5)[:100]        # b has pages and a read lock
        fd = os.open(d / "f", os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"new")
        finally:
            os.close(fd)
        assert os.fstat(rd).st_size == 3
        assert os.pread(rd, 100, 0) == b"new"
    finally:
        os.close(rd)


def test_o_trunc_after_the_other_clients_unflushed_write(two):
    mode, a, b, _ = two
    d = _dir(a, "dirty")
    (d / "f").write_bytes(LONG)
    wd = os.open(b / "dirty" / "f", os.O_WRONLY)
    try:
        os.pwrite(wd, b"Z" * 5000, 100)                     # dirty on b, written before the truncate
        fd = os.open(d / "f", os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        assert os.stat(b / "dirty" / "f").st_size == 0
        assert (d / "f").read_bytes() == b""
    finally:
        os.close(wd)
    assert (b / "dirty" / "f").read_bytes() == b""


def test_o_rdonly_o_trunc_truncates_as_on_linux(two):
    mode, a, b, _ = two
    d = _dir(a, "rdtrunc")
    (d / "f").write_bytes(LONG)
    os.close(os.open(d / "f", os.O_RDONLY | os.O_TRUNC))
    assert os.stat(d / "f").st_size == 0
    assert (b / "rdtrunc" / "f").read_bytes() == b""


def test_file_without_objects_yet(two):
    """A file made with O_LOV_DELAY_CREATE (no objects) whose size was set on the MDS."""
    mode, a, b, _ = two
    d = _dir(a, "noobj")
    os.close(os.open(d / "f", os.O_CREAT | os.O_WRONLY | os.O_ASYNC, 0o644))
    os.truncate(d / "f", 5000)
    assert os.stat(b / "noobj" / "f").st_size == 5000
    _sh("printf 'ab' > f", d)
    assert (d / "f").read_bytes() == b"ab"
    assert (b / "noobj" / "f").read_bytes() == b"ab"


def _intents(cluster) -> int:
    m = Mdc(cluster.mds.address, cluster.fsname)
    try:
        return dict(m.info().counters).get("intent", 0)
    finally:
        m.close()


def test_files_made_here_under_a_grant(two):
    """With the write-back cache the files are made locally (kept bytes, then objects);
    without it the same steps run on the server side."""
    mode, a, b, cluster = two
    d = _dir(a, "made")
    (d / "small").write_bytes(LONG)                     # bytes kept in the client (wbc)
    before = os.stat(d / "small")
    _tick()
    intents = _intents(cluster)
    with open(d / "small", "wb") as f:                  # O_WRONLY|O_CREAT|O_TRUNC
        f.write(b"x\n")
    if mode == "wbc":                                   # cut here: no MDS open
        assert _intents(cluster) == intents
    st = os.stat(d / "small")
    assert st.st_size == 2 and st.st_mtime_ns > before.st_mtime_ns and st.st_ctime_ns > before.st_ctime_ns
    assert (d / "small").read_bytes() == b"x\n"
    (d / "empty").write_bytes(LONG)
    os.close(os.open(d / "empty", os.O_WRONLY | os.O_TRUNC))
    assert os.stat(d / "empty").st_size == 0
    big = os.urandom(3 << 20)                           # past what is kept: written to its objects
    (d / "big").write_bytes(big)
    fd = os.open(d / "big", os.O_RDWR)
    os.fsync(fd)
    os.close(fd)
    with open(d / "big", "wb") as f:
        f.write(b"y")
    assert (d / "big").read_bytes() == b"y"
    # the other client (its access calls the grant back) sees the end state
    bd = b / "made"
    assert (bd / "small").read_bytes() == b"x\n"
    assert os.stat(bd / "small").st_mtime_ns == st.st_mtime_ns
    assert (bd / "empty").read_bytes() == b""
    assert (bd / "big").read_bytes() == b"y"
    os.truncate(bd / "big", 4096)
    assert (d / "big").read_bytes() == b"y" + bytes(4095)
