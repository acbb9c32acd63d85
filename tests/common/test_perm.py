"""The pure setattr permission rules (lustrepy.common.perm.check_setattr) that the
MDS and the client's write-back cache both apply: errno, order and the mode
that results, as Linux gives them."""

from __future__ import annotations

import errno
import stat
import time

import pytest

from lustrepy.client.llattr import _times_now
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import MAX_FILE_SIZE
from lustrepy.common.perm import Change, check_setattr, drops_sxid_only, kill_sxid
from lustrepy.common.protocol import SA
from lustrepy.common.records import Attr, Cred

ROOT = Cred(0, 0)
OWNER = Cred(1000, 1000, (1000,))
OTHER = Cred(65534, 65534)
MEMBER = Cred(65534, 65534, (2000,))


def attr(mode: int, uid: int = 1000, gid: int = 2000) -> Attr:
    return Attr(Fid(0x200000400, 1, 0), mode, 1, uid, gid, 3, 1, 0, 0, 0)


def errno_of(cred: Cred, a: Attr, ch: Change) -> int:
    try:
        check_setattr(cred, a, ch)
    except LpError as e:
        return e.errno
    return 0


REG = stat.S_IFREG


@pytest.mark.parametrize("old,new,ok", [
    (0o4777, 0o777, True), (0o2777, 0o777, True), (0o6777, 0o777, True), (0o6777, 0o2777, True),
    (0o777, 0o777, False),              # nothing dropped: an ordinary chmod
    (0o4777, 0o755, False),             # drops more than setuid
    (0o777, 0o4777, False),             # adds
    (0o4755, 0o1755, False),            # swaps setuid for sticky
])
def test_drops_sxid_only(old, new, ok):
    assert drops_sxid_only(REG | old, new) is ok


@pytest.mark.parametrize("mode,cred,gid,out", [
    (0o4777, OTHER, 2000, 0o777),
    (0o2777, OTHER, 2000, 0o777),       # group-executable: setgid goes
    (0o2767, OTHER, 2000, 0o767),       # not group-executable, not a member: goes too
    (0o2767, MEMBER, 2000, 0o2767),     # a member: it stays (a locking mark)
    (0o2767, ROOT, 2000, 0o2767),
    (0o6755, ROOT, 2000, 0o755),        # a chown by root clears them too
])
def test_kill_sxid(mode, cred, gid, out):
    assert kill_sxid(cred, mode, gid) == out


def test_a_writer_may_only_drop_the_setid_bits():
    a = attr(REG | 0o6777, uid=0, gid=0)
    assert check_setattr(OTHER, a, Change(SA.MODE, mode=0o777)) == REG | 0o777
    assert errno_of(OTHER, a, Change(SA.MODE, mode=0o755)) == errno.EPERM
    assert errno_of(OTHER, a, Change(SA.MODE, mode=0o6777)) == errno.EPERM     # a no-op chmod is still a chmod
    b = attr(REG | 0o4755, uid=0, gid=0)                                       # not writable by OTHER
    assert errno_of(OTHER, b, Change(SA.MODE, mode=0o755)) == errno.EPERM
    assert check_setattr(OTHER, b, Change(SA.MODE, mode=0o755, writer=True)) == REG | 0o755


def test_chmod_rules():
    a = attr(REG | 0o644, gid=5000)
    assert check_setattr(OWNER, a, Change(SA.MODE, mode=0o2755)) == REG | 0o755     # not in the group
    assert check_setattr(ROOT, a, Change(SA.MODE, mode=0o2755)) == REG | 0o2755
    assert check_setattr(OWNER, attr(REG | 0o644), Change(SA.MODE, mode=0o4700)) == REG | 0o4700
    assert errno_of(OTHER, attr(REG | 0o666), Change(SA.MODE, mode=0o600)) == errno.EPERM


def test_size_rules_and_their_order():
    ro = attr(REG | 0o644)
    assert errno_of(OTHER, ro, Change(SA.SIZE)) == errno.EACCES
    assert errno_of(OTHER, ro, Change(SA.SIZE | SA.UID, uid=65534)) == errno.EACCES   # size first
    assert errno_of(OTHER, ro, Change(SA.SIZE, writer=True)) == 0                     # ftruncate
    assert errno_of(OWNER, attr(stat.S_IFDIR | 0o755), Change(SA.SIZE)) == errno.EISDIR
    assert errno_of(OWNER, attr(stat.S_IFLNK | 0o777), Change(SA.SIZE)) == errno.EINVAL
    assert errno_of(OWNER, ro, Change(SA.SIZE, size=-1)) == errno.EINVAL
    assert errno_of(OWNER, ro, Change(SA.SIZE, size=MAX_FILE_SIZE + 1)) == errno.EFBIG
    rw = attr(REG | 0o6777, uid=0, gid=0)
    assert check_setattr(OTHER, rw, Change(SA.SIZE)) == REG | 0o777                   # a change of contents
    assert check_setattr(ROOT, rw, Change(SA.SIZE)) == REG | 0o6777


def test_owner_and_group_rules():
    a = attr(REG | 0o4755)
    assert errno_of(OWNER, a, Change(SA.UID, uid=65534)) == errno.EPERM
    assert check_setattr(OWNER, a, Change(SA.UID, uid=1000)) == REG | 0o755          # chown to self kills setuid
    assert errno_of(OWNER, a, Change(SA.GID, gid=5000)) == errno.EPERM
    assert errno_of(OWNER, attr(REG | 0o644, gid=1000), Change(SA.GID, gid=2000)) == errno.EPERM
    assert check_setattr(OWNER, attr(REG | 0o644, gid=2000), Change(SA.GID, gid=1000)) == REG | 0o644
    assert errno_of(OTHER, a, Change(SA.GID, gid=2000)) == errno.EPERM
    assert check_setattr(ROOT, attr(stat.S_IFDIR | 0o2755), Change(SA.UID, uid=1)) == stat.S_IFDIR | 0o2755


def test_times_rules():
    rw, ro = attr(REG | 0o666), attr(REG | 0o644)
    for v in (SA.ATIME, SA.MTIME, SA.ATIME | SA.MTIME):
        assert errno_of(OTHER, rw, Change(v)) == errno.EPERM          # explicit: the owner's
        assert errno_of(OWNER, ro, Change(v)) == 0
    now = SA.ATIME_NOW | SA.MTIME_NOW
    assert errno_of(OTHER, rw, Change(now)) == 0                      # "now": any writer's
    assert errno_of(OTHER, ro, Change(now)) == errno.EACCES
    assert errno_of(OWNER, attr(REG | 0o444), Change(now)) == 0
    assert errno_of(OTHER, ro, Change(SA.CTIME)) == errno.EPERM
    assert errno_of(OTHER, ro, Change(SA.SIZE | SA.MTIME_NOW | SA.CTIME, writer=True)) == 0


def test_times_near_the_clock_from_someone_else_are_now():
    a = attr(REG | 0o666)
    t = time.time_ns()
    op = {"valid": SA.ATIME | SA.MTIME | SA.SIZE, "atime_ns": t, "mtime_ns": t - 10**9, "size": 0}
    _times_now(op, OTHER, a)
    assert op == {"valid": SA.ATIME_NOW | SA.MTIME_NOW | SA.SIZE, "size": 0}
    far = {"valid": SA.MTIME, "mtime_ns": t - 3600 * 10**9}
    _times_now(far, OTHER, a)
    assert far == {"valid": SA.MTIME, "mtime_ns": t - 3600 * 10**9}   # explicit: the MDS refuses it
    for who in (OWNER, ROOT):                                          # exact times kept (cp -p, rsync -a)
        mine = {"valid": SA.ATIME | SA.MTIME, "atime_ns": t, "mtime_ns": t}
        _times_now(mine, who, a)
        assert mine == {"valid": SA.ATIME | SA.MTIME, "atime_ns": t, "mtime_ns": t}
