"""Permission rules against the Linux kernel: the same tree is built in a real
directory and in the MDT, one operation runs as an unprivileged user on both
sides (the kernel side in a forked child that drops to that uid and groups),
and the errno and every inode's kind, mode, owner, group and nlink must agree."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from lustrepy.common.errors import LpError
from lustrepy.common.fid import ROOT_FID
from lustrepy.common.records import Cred
from lustrepy.mds.lfsck import check_invariants
from lustrepy.mds.namespace import SA, SetAttr
from lustrepy.mds.store import Store
from tests.support.users import run_as

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other users")]

ROOT = Cred(0, 0)
ALICE = Cred(1000, 1000, (1000, 2000))
BOB = Cred(1001, 1001, (1001,))
KEEP = -1
_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100

# The tree every case starts from, made by root: (path, kind, mode, uid, gid).
SETUP = [
    ("pub", "d", 0o777, 0, 0),
    ("tmp", "d", 0o1777, 0, 0),
    ("ro", "d", 0o555, 0, 0),
    ("ro/f", "f", 0o666, 0, 0),
    ("alice", "d", 0o755, 1000, 1000),
    ("alice/f", "f", 0o644, 1000, 1000),
    ("alice/sub", "d", 0o755, 1000, 1000),
    ("alice/rodir", "d", 0o555, 1000, 1000),
    ("alice/link", "l", 0o777, 1000, 1000),
    ("closed", "d", 0o700, 1000, 1000),
    ("closed/f", "f", 0o644, 1000, 1000),
    ("grp", "d", 0o770, 0, 2000),
    ("sg", "d", 0o2777, 0, 3000),
    ("tmp/a", "f", 0o666, 1000, 1000),
    ("tmp/b", "f", 0o666, 1001, 1001),
    ("tmp/adir", "d", 0o777, 1000, 1000),
    ("pub/suid", "f", 0o4755, 1000, 1000),
    ("pub/sgid", "f", 0o2755, 1000, 1000),
    ("pub/sgidnx", "f", 0o2744, 1000, 1000),
    ("pub/w", "f", 0o4777, 1000, 1000),
    ("pub/g5000", "f", 0o644, 1000, 5000),
    ("pub/bobs", "f", 0o644, 1001, 1001),
]

CASES = [
    (BOB, ("create", "alice/new", 0o644)),
    (BOB, ("create", "closed/new", 0o644)),
    (BOB, ("lookup", "closed/f")),
    (BOB, ("lookup", "closed/nothing")),
    (ALICE, ("lookup", "closed/f")),
    (ALICE, ("create", "grp/new", 0o644)),
    (BOB, ("create", "grp/new", 0o644)),
    (BOB, ("mkdir", "sg/d", 0o755)),
    (BOB, ("create", "sg/x", 0o2755)),
    (BOB, ("create", "sg/y", 0o2644)),
    (BOB, ("create", "alice/f", 0o644)),
    (BOB, ("mknod_chr", "pub/c")),
    (BOB, ("symlink", "ro/l")),
    (BOB, ("unlink", "tmp/a")),
    (ALICE, ("unlink", "tmp/a")),
    (BOB, ("unlink", "tmp/adir")),
    (BOB, ("rmdir", "tmp/adir")),
    (ALICE, ("rmdir", "tmp/adir")),
    (ALICE, ("unlink", "ro/f")),
    (BOB, ("rename", "tmp/a", "tmp/c", 0)),
    (BOB, ("rename", "tmp/b", "tmp/a", 0)),
    (BOB, ("rename", "tmp/b", "tmp/c", 0)),
    (ALICE, ("rename", "alice/rodir", "pub/rodir", 0)),
    (ALICE, ("rename", "alice/rodir", "alice/rodir2", 0)),
    (ALICE, ("rename", "alice/sub", "pub/sub", 0)),
    (ALICE, ("rename", "closed/f", "pub/f", 0)),
    (BOB, ("rename", "pub/bobs", "closed/x", 0)),
    (BOB, ("rename", "pub/bobs", "alice/f", 2)),
    (ALICE, ("link", "alice/f", "pub/f2")),
    (BOB, ("link", "pub/bobs", "alice/l")),
    (BOB, ("chmod", "alice/f", 0o777)),
    (ALICE, ("chmod", "alice/f", 0o2755)),
    (ALICE, ("chmod", "pub/g5000", 0o2755)),
    (ALICE, ("chmod", "pub/g5000", 0o4755)),
    (ALICE, ("chown", "alice/f", 1001, KEEP)),
    (ALICE, ("chown", "alice/f", 1000, KEEP)),
    (ALICE, ("chown", "alice/f", KEEP, 2000)),
    (ALICE, ("chown", "alice/f", KEEP, 3000)),
    (BOB, ("chown", "alice/f", KEEP, 1001)),
    (ROOT, ("chown", "pub/suid", 1001, KEEP)),
    (ALICE, ("chown", "pub/suid", KEEP, 2000)),
    (ALICE, ("chown", "pub/sgid", KEEP, 2000)),
    (ALICE, ("chown", "pub/sgidnx", KEEP, 2000)),
    (ROOT, ("chown", "pub/sgidnx", 1001, 1001)),
    (BOB, ("truncate", "alice/f")),
    (BOB, ("truncate", "pub/w")),
    (ALICE, ("truncate", "alice/sub")),
    (BOB, ("utime_now", "alice/f")),
    (BOB, ("utime_now", "pub/w")),
    (BOB, ("utime", "pub/w")),
    (ALICE, ("utime", "alice/f")),
    (BOB, ("setxattr", "alice/f", b"user.k")),
    (ALICE, ("setxattr", "alice/f", b"user.k")),
    (ALICE, ("setxattr", "alice/f", b"trusted.k")),
    (ROOT, ("setxattr", "alice/f", b"trusted.k")),
    (ALICE, ("setxattr", "tmp", b"user.k")),
    (ALICE, ("setxattr", "alice/link", b"user.k")),
    (ALICE, ("setxattr", "alice/f", b"security.k")),
    (BOB, ("getxattr", "alice/f", b"user.none")),
    (BOB, ("getxattr", "closed/f", b"user.none")),
    (ALICE, ("getxattr", "alice/link", b"user.none")),
    (BOB, ("removexattr", "alice/f", b"user.none")),
    (ALICE, ("setxattr", "alice/f", b"user.")),
    (ALICE, ("getxattr", "alice/f", b"trusted.")),
    (ROOT, ("getxattr", "alice/f", b"trusted.")),
    (BOB, ("setxattr", "alice/f", b"weird.k")),
    (ALICE, ("setxattr", "alice/f", b"weird.k")),
]
# Deliberate difference: system.* (POSIX ACLs) is ENOTSUP on the MDT, where ext4 stores ACLs.


def _case_id(case) -> str:
    cred, op = case
    who = {0: "root", 1000: "alice", 1001: "bob"}[cred.uid]
    return f"{who}-{op[0]}-{op[1]}" + (f"-{op[2]}" if len(op) > 2 and op[0] in ("rename", "link") else "") \
        + (f"-{op[2]:o}" if op[0] in ("chmod", "create") else "") + (f"-{op[2]}-{op[3]}" if op[0] == "chown" else "") \
        + (f"-{op[2].decode()}" if op[0].endswith("xattr") else "")


# ---- the kernel side ----------------------------------------------------------------------------

def kernel_op(base: str, op: tuple) -> None:
    def p(rel: str) -> str:
        return os.path.join(base, rel)
    kind = op[0]
    if kind == "create":
        os.close(os.open(p(op[1]), os.O_CREAT | os.O_EXCL | os.O_WRONLY, op[2]))
    elif kind == "mkdir":
        os.mkdir(p(op[1]), op[2])
    elif kind == "mknod_chr":
        os.mknod(p(op[1]), stat.S_IFCHR | 0o644, os.makedev(1, 3))
    elif kind == "symlink":
        os.symlink("t", p(op[1]))
    elif kind == "lookup":
        os.lstat(p(op[1]))
    elif kind == "unlink":
        os.unlink(p(op[1]))
    elif kind == "rmdir":
        os.rmdir(p(op[1]))
    elif kind == "rename":
        if _libc.renameat2(_AT_FDCWD, p(op[1]).encode(), _AT_FDCWD, p(op[2]).encode(), op[3]) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    elif kind == "link":
        os.link(p(op[1]), p(op[2]), follow_symlinks=False)
    elif kind == "chmod":
        os.chmod(p(op[1]), op[2])
    elif kind == "chown":
        os.chown(p(op[1]), op[2], op[3], follow_symlinks=False)
    elif kind == "truncate":
        os.truncate(p(op[1]), 0)
    elif kind == "utime_now":
        os.utime(p(op[1]), None)
    elif kind == "utime":
        os.utime(p(op[1]), ns=(1, 2))
    elif kind == "setxattr":
        os.setxattr(p(op[1]), op[2], b"v", follow_symlinks=False)
    elif kind == "getxattr":
        os.getxattr(p(op[1]), op[2], follow_symlinks=False)
    elif kind == "removexattr":
        os.removexattr(p(op[1]), op[2], follow_symlinks=False)
    else:
        raise AssertionError(kind)


def as_user(cred: Cred, fn) -> int:
    """Run fn in a child that has dropped to cred; its errno (0 on success)."""
    return run_as(cred.uid, cred.gid, fn, groups=cred.groups, umask=0)


def kernel_tree(base: str) -> dict[str, tuple[int, int, int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            s = os.lstat(full)
            out[os.path.relpath(full, base)] = (stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode) if not
                                                stat.S_ISLNK(s.st_mode) else 0o777, s.st_uid, s.st_gid, s.st_nlink)
    return out


# ---- the MDT side -----------------------------------------------------------------------------

def resolve(tx, cred: Cred, rel: str):
    fid = ROOT_FID
    for part in rel.split("/"):
        fid = tx.lookup(cred, fid, part.encode()).fid
    return fid


def split(rel: str) -> tuple[str, bytes]:
    parent, _, name = rel.rpartition("/")
    return parent, name.encode()


def mdt_op(store: Store, cred: Cred, op: tuple) -> None:
    kind = op[0]

    def parent_of(rel, tx):
        parent, name = split(rel)
        return (resolve(tx, cred, parent) if parent else ROOT_FID), name

    def fn(tx):
        if kind in ("create", "mkdir", "mknod_chr", "symlink"):
            pf, name = parent_of(op[1], tx)
            if kind == "create":
                tx.create(cred, pf, name, op[2])
            elif kind == "mkdir":
                tx.mkdir(cred, pf, name, op[2])
            elif kind == "mknod_chr":
                tx.create(cred, pf, name, stat.S_IFCHR | 0o644, 0x0103)
            else:
                tx.symlink(cred, pf, name, b"t")
        elif kind in ("unlink", "rmdir"):
            pf, name = parent_of(op[1], tx)
            getattr(tx, kind)(cred, pf, name)
        elif kind == "rename":
            spf, sn = parent_of(op[1], tx)
            dpf, dn = parent_of(op[2], tx)
            tx.rename(cred, spf, sn, dpf, dn, op[3])
        elif kind == "link":
            src = resolve(tx, cred, op[1])
            pf, name = parent_of(op[2], tx)
            tx.link(cred, src, pf, name)
        else:
            fid = resolve(tx, cred, op[1])
            if kind == "lookup":
                pass
            elif kind == "chmod":
                tx.setattr(cred, fid, SetAttr(valid=SA.MODE, mode=op[2]))
            elif kind == "chown":
                valid = (SA.UID if op[2] != KEEP else 0) | (SA.GID if op[3] != KEEP else 0)
                tx.setattr(cred, fid, SetAttr(valid=valid, uid=max(op[2], 0), gid=max(op[3], 0)))
            elif kind == "truncate":
                tx.setattr(cred, fid, SetAttr(valid=SA.SIZE, size=0))
            elif kind == "utime_now":
                tx.setattr(cred, fid, SetAttr(valid=SA.ATIME_NOW | SA.MTIME_NOW))
            elif kind == "utime":
                tx.setattr(cred, fid, SetAttr(valid=SA.ATIME | SA.MTIME, atime_ns=1, mtime_ns=2))
            elif kind == "setxattr":
                tx.setxattr(cred, fid, op[2], b"v", 0)
            elif kind == "getxattr":
                tx.getxattr(cred, fid, op[2])
            elif kind == "removexattr":
                tx.removexattr(cred, fid, op[2])
            else:
                raise AssertionError(kind)
    store.write(fn)


def mdt_tree(store: Store) -> dict[str, tuple[int, int, int, int, int]]:
    out = {}
    tx = store.read()

    def walk(fid, prefix):
        for e, a in tx.readdir(fid, 0, 1000):
            rel = prefix + e.name.decode()
            out[rel] = (stat.S_IFMT(a.mode), stat.S_IMODE(a.mode), a.uid, a.gid, a.nlink)
            if stat.S_ISDIR(a.mode):
                walk(a.fid, rel + "/")
    walk(ROOT_FID, "")
    return out


# ---- the test -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sandbox():
    d = tempfile.mkdtemp(prefix="lp-perm-")
    os.chmod(d, 0o755)                                  # others must reach the tree inside
    yield Path(d)
    shutil.rmtree(d)


def build(sandbox: Path, i: int) -> tuple[str, Store]:
    base = sandbox / f"k{i}"
    old = os.umask(0)
    try:
        base.mkdir(mode=0o755)
        Store.format(sandbox / f"m{i}", "lpperm")
        store = Store(sandbox / f"m{i}")
        for rel, kind, mode, uid, gid in SETUP:
            p = base / rel
            parent, name = split(rel)

            def mk(tx, kind=kind, mode=mode, uid=uid, gid=gid, parent=parent, name=name):
                pf = resolve(tx, ROOT, parent) if parent else ROOT_FID
                if kind == "d":
                    a = tx.mkdir(ROOT, pf, name, 0o755)
                elif kind == "f":
                    a = tx.create(ROOT, pf, name, 0o644)
                else:
                    a = tx.symlink(ROOT, pf, name, b"t")
                tx.setattr(ROOT, a.fid, SetAttr(valid=SA.UID | SA.GID, uid=uid, gid=gid))
                if kind != "l":
                    tx.setattr(ROOT, a.fid, SetAttr(valid=SA.MODE, mode=mode))
            store.write(mk)
            if kind == "d":
                p.mkdir()
            elif kind == "f":
                p.touch()
            else:
                p.symlink_to("t")
            os.chown(p, uid, gid, follow_symlinks=False)
            if kind != "l":
                os.chmod(p, mode)
    finally:
        os.umask(old)
    return str(base), store


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_permissions_match_kernel(sandbox, case):
    cred, op = case
    base, store = build(sandbox, CASES.index(case))
    try:
        assert mdt_tree(store) == kernel_tree(base)
        kerr = as_user(cred, lambda: kernel_op(base, op))
        try:
            mdt_op(store, cred, op)
            merr = 0
        except LpError as e:
            merr = e.errno
        assert (errno.errorcode.get(merr, merr), merr) == (errno.errorcode.get(kerr, kerr), kerr)
        assert mdt_tree(store) == kernel_tree(base)
        assert check_invariants(store) == []
    finally:
        store.close()
