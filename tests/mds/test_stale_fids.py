"""A FID that names no inode any more answers ESTALE on every FID-addressed
request, over real gRPC to a real MDS; a name that is absent from a directory
that exists stays ENOENT. (ESTALE makes the Linux VFS walk the path again.)"""

from __future__ import annotations

import errno
import os

import pytest

from lustrepy.client.mdc import Mdc
from lustrepy.common.errors import LpError
from lustrepy.rpc.convert import fid_from_pb
from tests.support.servers import Cluster, wait_for

IT_LOOKUP, IT_GETATTR, IT_OPEN, IT_CREAT, IT_LAYOUT = 1, 2, 4, 8, 16

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def mdc(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("stale"))
    m = None
    try:
        c.start(1)
        m = Mdc(c.mds.address, c.fsname, with_locks=True)
        m.connect()
        wait_for(lambda: any(o.active and o.precreated > 0 for o in m.statfs().osts), what="an active OST")
        yield m
    finally:
        if m is not None:
            m.close()
        c.stop()


def _errno(fn, *args, **kw) -> int:
    with pytest.raises(LpError) as ei:
        fn(*args, **kw)
    return ei.value.errno


def test_requests_by_a_destroyed_fid_answer_estale(mdc):
    d = fid_from_pb(mdc.mkdir(mdc.root, b"by-fid").attr.fid)
    f = fid_from_pb(mdc.create(d, b"target").attr.fid)
    new = fid_from_pb(mdc.create(d, b"tmp").attr.fid)
    mdc.rename(d, b"tmp", d, b"target")             # replaces f, which nobody has open: destroyed
    calls = {
        "getattr": lambda: mdc.intent(IT_GETATTR, fid=f),
        "lookup+getattr": lambda: mdc.intent(IT_LOOKUP | IT_GETATTR, fid=f),
        "open": lambda: mdc.intent(IT_OPEN, fid=f, open_flags=os.O_RDONLY),
        "open for write": lambda: mdc.intent(IT_OPEN, fid=f, open_flags=os.O_WRONLY | os.O_TRUNC),
        "layout": lambda: mdc.intent(IT_LAYOUT, fid=f),
        "setattr": lambda: mdc.setattr(f, valid=1, mode=0o600),
        "setxattr": lambda: mdc.setxattr(f, b"user.k", b"v"),
        "getxattr": lambda: mdc.getxattr(f, b"user.k"),
        "listxattr": lambda: mdc.listxattr(f),
        "removexattr": lambda: mdc.removexattr(f, b"user.k"),
        "readlink": lambda: mdc.readlink(f),
        "readdir": lambda: mdc.readdir(f),
        "link": lambda: mdc.link(f, d, b"again"),
    }
    got = {name: _errno(call) for name, call in calls.items()}
    assert got == {name: errno.ESTALE for name in calls}
    # the name itself lives on, bound to the new file; an absent name stays ENOENT
    assert fid_from_pb(mdc.intent(IT_LOOKUP | IT_GETATTR, parent=d, name=b"target").attr.fid) == new
    assert _errno(mdc.intent, IT_LOOKUP | IT_GETATTR, parent=d, name=b"tmp") == errno.ENOENT
    assert _errno(mdc.unlink, d, b"tmp") == errno.ENOENT


def test_names_in_a_destroyed_directory_answer_estale(mdc):
    top = fid_from_pb(mdc.mkdir(mdc.root, b"by-name").attr.fid)
    gone = fid_from_pb(mdc.mkdir(top, b"gone").attr.fid)
    mdc.rmdir(top, b"gone")
    assert _errno(mdc.intent, IT_LOOKUP | IT_GETATTR, parent=gone, name=b"x") == errno.ESTALE
    assert _errno(mdc.intent, IT_OPEN | IT_CREAT, parent=gone, name=b"x",
                  open_flags=os.O_CREAT | os.O_WRONLY, mode=0o100644) == errno.ESTALE
    assert _errno(mdc.create, gone, b"x") == errno.ESTALE
    assert _errno(mdc.mkdir, gone, b"x") == errno.ESTALE
    assert _errno(mdc.unlink, gone, b"x") == errno.ESTALE
    assert _errno(mdc.rename, gone, b"x", top, b"y") == errno.ESTALE
    # a removed directory still open somewhere exists: nothing can be made in it (ENOENT)
    kept = fid_from_pb(mdc.mkdir(top, b"kept").attr.fid)
    h = mdc.intent(IT_OPEN, fid=kept, open_flags=os.O_RDONLY | os.O_DIRECTORY).open_handle
    mdc.rmdir(top, b"kept")
    assert _errno(mdc.create, kept, b"x") == errno.ENOENT
    assert _errno(mdc.intent, IT_LOOKUP | IT_GETATTR, parent=kept, name=b"x") == errno.ENOENT
    mdc.close_handle(h)


def test_closing_a_handle_of_a_destroyed_inode_is_quiet(mdc):
    d = fid_from_pb(mdc.mkdir(mdc.root, b"closes").attr.fid)
    f = fid_from_pb(mdc.create(d, b"f").attr.fid)
    h = mdc.intent(IT_OPEN, fid=f, open_flags=os.O_RDONLY).open_handle
    mdc.unlink(d, b"f")
    assert mdc.intent(IT_GETATTR, fid=f).attr.nlink == 0        # open: an orphan, still there
    mdc.close_handle(h)                                          # the last close destroys it
    assert _errno(mdc.intent, IT_GETATTR, fid=f) == errno.ESTALE
    mdc.close_handle(h)                                          # closed already: no error
