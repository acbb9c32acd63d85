"""A mounted client when servers go away and come back: errors within the
configured bound (never a hang), and the same mount works again afterwards."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest

from tests.support.mounts import mount
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(180)
BOUND = 3.0        # the mount's timeout= option: how long an RPC may take


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    m = None
    try:
        c.start(2)
        m = mount(c, tmp_path / "mnt", f"timeout={BOUND}")
        yield c, m.path
    finally:
        if m is not None:
            m.stop()
        c.stop()


def _timed(fn):
    t = time.monotonic()
    try:
        fn()
        err = 0
    except OSError as e:
        err = e.errno
    return err, time.monotonic() - t


def test_dead_oss_gives_an_error_in_bound_then_works_again(setup):
    c, mnt = setup
    os.setxattr(mnt, "lustrepy.lov", b'{"stripe_size":65536,"stripe_count":2}')
    data = os.urandom(300_000)
    (mnt / "f").write_bytes(data)
    objs = json.loads(os.getxattr(mnt / "f", "lustrepy.lov"))["objects"]
    assert {o[0] for o in objs} == {0, 1}
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    c.osts[1].stop()
    err, took = _timed(lambda: (mnt / "f").read_bytes())
    assert err in (errno.EIO, errno.ETIMEDOUT, errno.ENOTCONN) and took < 4 * BOUND + 5, (err, took)
    c.osts[1] = c.oss_proc(1).start()
    got = wait_for(lambda: _read_or_none(mnt / "f"), timeout=30, what="file readable again")
    assert got == data


def _read_or_none(p):
    try:
        return p.read_bytes()
    except OSError:
        return None


def test_dead_mds_gives_an_error_in_bound_then_works_again(setup):
    c, mnt = setup
    (mnt / "d").mkdir()
    c.mds.stop()
    # in the root, which no write-back cache grant covers: the MDS must answer
    err, took = _timed(lambda: os.mkdir(mnt / "new"))
    assert err in (errno.EIO, errno.ETIMEDOUT, errno.ENOTCONN) and took < 4 * BOUND + 5, (err, took)
    c.mds = c.mds_proc().start()                   # same port, same database
    wait_for(lambda: _mkdir_ok(mnt / "new"), timeout=30, what="mkdir works again")
    assert (mnt / "new").is_dir()


def _mkdir_ok(p) -> bool:
    try:
        os.mkdir(p)
        return True
    except FileExistsError:
        return True
    except OSError:
        return False
