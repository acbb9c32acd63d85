"""A full OST on real mounts, in both modes (server side and the write-back cache):
a write-back error is reported by every fsync and close until the data is
written, the data is kept and lands once there is room, and new files are
not placed on a nearly full OST while others have room."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest

from lustrepy.ctl.main import main as lfsctl
from tests.client.conftest import start_cluster
from tests.support.mounts import mount
from tests.support.servers import wait_for

pytestmark = pytest.mark.timeout(180)

MiB = 1 << 20
MODES = ("nowbc", "wbc")


def _opts(mode: str, root) -> tuple[str, ...]:
    return ("wbc", f"journal={root / 'journal'}") if mode == "wbc" else ("nowbc",)


def _setstripe(d, count: int, offset: int = -1) -> None:
    d.mkdir()
    os.setxattr(d, "lustrepy.lov", json.dumps(
        {"stripe_size": MiB, "stripe_count": count, "stripe_offset": offset}).encode())


def _osts(path) -> list[int]:
    return [o[0] for o in json.loads(os.getxattr(path, "lustrepy.lov"))["objects"]]


def _avail(mdc, index: int) -> int:
    st = next(o for o in mdc.statfs().osts if o.index == index).statfs
    return st.bavail * st.bsize


def _write_all(path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.fixture(params=MODES)
def full_ost(request, tmp_path):
    """Four OSTs, OST3 holding 6 MiB; two mounts of the mode asked for."""
    mode = request.param
    (tmp_path / "srv").mkdir()
    c, mdc = start_cluster(tmp_path / "srv", 4, {3: ("--capacity", str(6 * MiB))})
    mounts = []
    try:
        mounts.append(mount(c, tmp_path / "a", *_opts(mode, tmp_path / "ja")))
        mounts.append(mount(c, tmp_path / "b", *_opts(mode, tmp_path / "jb")))
        yield mdc, mounts[0].path, mounts[1].path
    finally:
        for m in mounts:
            m.stop()
        mdc.close()
        c.stop()


def test_enospc_is_reported_until_the_data_is_written(full_ost):
    mdc, a, b = full_ost
    _setstripe(a / "fill", 1, offset=3)
    _write_all(a / "fill" / "f", os.urandom(4 * MiB))        # OST3: 2 MiB left
    assert _osts(a / "fill" / "f") == [3]
    _setstripe(a / "d", 4, offset=0)
    data = os.urandom(12 * MiB)                               # 3 MiB on each of the four objects
    fd = os.open(a / "d" / "f", os.O_RDWR | os.O_CREAT, 0o644)
    closed = False
    try:
        for off in range(0, len(data), MiB):
            assert os.pwrite(fd, data[off:off + MiB], off) == MiB
        assert sorted(_osts(a / "d" / "f")) == [0, 1, 2, 3]
        for _ in range(2):                                    # reported again, not only once
            with pytest.raises(OSError) as ei:
                os.fsync(fd)
            assert ei.value.errno == errno.ENOSPC
        assert os.pread(fd, len(data), 0) == data             # kept: this client still has it
        closed = True
        with pytest.raises(OSError) as ei:
            os.close(fd)
        assert ei.value.errno == errno.ENOSPC
    finally:
        if not closed:
            os.close(fd)
    seen = (b / "d" / "f").read_bytes()                       # the other client: what reached the OSTs
    for off in range(0, len(seen), MiB):
        if (off // MiB) % 4 != 3:                             # stripes on OSTs with room were written
            assert seen[off:off + MiB] == data[off:off + MiB]

    # The MDS learns free space from heartbeats: first it must have seen OST3 full, or its
    # figure from before the fill would pass the wait below at once.
    wait_for(lambda: _avail(mdc, 3) < 3 * MiB, timeout=30, what="the MDS to see OST3 full")
    os.unlink(a / "fill" / "f")                               # room again, once OST3 destroys the object
    wait_for(lambda: _avail(mdc, 3) >= 3 * MiB, timeout=30, what="OST3 to free the unlinked file's space")
    fd = os.open(a / "d" / "f", os.O_RDWR)
    try:
        os.fsync(fd)                                          # the kept data is written now
        os.fsync(fd)
    finally:
        os.close(fd)
    assert (b / "d" / "f").read_bytes() == data
    assert os.stat(b / "d" / "f").st_size == len(data)


@pytest.fixture(params=MODES)
def nearly_full(request, tmp_path, monkeypatch):
    """Four OSTs of 16 MiB, an MDS that keeps new objects off OSTs with less than 4 MiB free."""
    mode = request.param
    (tmp_path / "srv").mkdir()
    c, mdc = start_cluster(tmp_path / "srv", 4, {i: ("--capacity", str(16 * MiB)) for i in range(4)},
                           mds_args=("--ost-reserved", "4M"))
    monkeypatch.setenv("LUSTREPY_MGS", c.mds.address)
    m = None
    try:
        m = mount(c, tmp_path / "a", *_opts(mode, tmp_path))
        yield mdc, m.path
    finally:
        if m is not None:
            m.stop()
        mdc.close()
        c.stop()


def test_new_files_skip_a_nearly_full_ost_while_others_have_room(nearly_full, capsys):
    mdc, a = nearly_full
    _setstripe(a / "fill", 1, offset=3)
    _write_all(a / "fill" / "f", os.urandom(14 * MiB))        # OST3: 2 MiB left, the others 16
    wait_for(lambda: _avail(mdc, 3) <= 2 * MiB, timeout=15, what="the MDS to learn OST3's free space")
    (a / "many").mkdir()
    placed = []
    deadline = time.monotonic() + 90
    for i in range(200):
        assert time.monotonic() < deadline
        p = a / "many" / f"f{i}"
        p.write_bytes(b"x")
        placed.append(p)
    where = [_osts(p) for p in placed]
    assert all(len(w) == 1 for w in where), where
    assert sorted({w[0] for w in where}) == [0, 1, 2]
    _setstripe(a / "wide", 4)
    (a / "wide" / "f").write_bytes(b"wide")
    assert sorted(_osts(a / "wide" / "f")) == [0, 1, 2]       # fewer stripes rather than the nearly full OST

    assert lfsctl(["set-param", "mds.ost_reserved=0"]) == 0  # the tunable, at run time
    capsys.readouterr()
    (a / "wide" / "g").write_bytes(b"wide")
    assert sorted(_osts(a / "wide" / "g")) == [0, 1, 2, 3]
