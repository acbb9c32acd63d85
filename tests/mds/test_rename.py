"""rename / renameat2 on the MDT: every POSIX edge case by hand, then a
state machine that runs random namespace operations against both the MDT and
the Linux kernel (a real directory in /tmp) and requires the same errno and
the same resulting tree after every step."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lustrepy.common.errors import LpError
from lustrepy.common.fid import ROOT_FID
from lustrepy.common.layout import Layout
from lustrepy.common.protocol import RENAME
from lustrepy.common.records import Cred
from lustrepy.mds.lfsck import check_invariants
from lustrepy.mds.namespace import SA, SetAttr
from lustrepy.mds.store import Store

pytestmark = pytest.mark.timeout(90)

ROOT = Cred(0, 0)
ALICE = Cred(1000, 1000)
BOB = Cred(1001, 1001)
R = ROOT_FID
NOREPLACE, EXCHANGE = RENAME.NOREPLACE, RENAME.EXCHANGE


def names(ops, fid):
    return sorted(e.name for e, _ in ops.read().readdir(fid, 0, 1 << 20))


def tree(ops):
    """{'a/b': fid} for a few levels of names, to see what moved where."""
    out = {}

    def walk(fid, prefix):
        for e, a in ops.read().readdir(fid, 0, 1 << 20):
            p = prefix + e.name.decode()
            out[p] = a.fid
            if stat.S_ISDIR(a.mode):
                walk(a.fid, p + "/")
    walk(R, "")
    return out


# ---- plain renames ---------------------------------------------------------------------------

def test_rename_within_directory_keeps_cookie(ops):
    d = ops.mkdir(ROOT, R, b"d", 0o755)
    for n in (b"a", b"b", b"c"):
        ops.create(ROOT, d.fid, n, 0o644)
    before = [(e.name, e.cookie) for e, _ in ops.read().readdir(d.fid, 0, 10)]
    f = ops.read().lookup(ROOT, d.fid, b"b")
    r = ops.rename(ROOT, d.fid, b"b", d.fid, b"z")
    assert r.source.fid == f.fid and r.target is None and not r.noop
    assert r.source.ctime_ns >= f.ctime_ns and r.source.generation == f.generation + 1
    assert r.src_parent == r.dst_parent == ops.read().getattr(d.fid)
    assert r.src_parent.mtime_ns == r.src_parent.ctime_ns == r.source.ctime_ns
    after = [(e.name, e.cookie) for e, _ in ops.read().readdir(d.fid, 0, 10)]
    assert after == [(b"a", before[0][1]), (b"z", before[1][1]), (b"c", before[2][1])]


def test_rename_across_directories_fixes_link_counts(ops):
    a = ops.mkdir(ROOT, R, b"a", 0o755)
    b = ops.mkdir(ROOT, R, b"b", 0o755)
    sub = ops.mkdir(ROOT, a.fid, b"sub", 0o755)
    ops.create(ROOT, a.fid, b"f", 0o644)
    r = ops.rename(ROOT, a.fid, b"sub", b.fid, b"moved")
    assert (r.src_parent.nlink, r.dst_parent.nlink) == (2, 3)
    assert r.src_parent.fid == a.fid and r.dst_parent.fid == b.fid
    assert ops.read().parent_of(sub.fid) == b.fid
    r = ops.rename(ROOT, a.fid, b"f", b.fid, b"f")
    assert (r.src_parent.nlink, r.dst_parent.nlink) == (2, 3)
    assert tree(ops).keys() == {"a", "b", "b/moved", "b/f"}
    assert ops.read().getattr(R).nlink == 4


def test_rename_errors_on_missing_and_bad_parents(ops):
    f = ops.create(ROOT, R, b"f", 0o644)
    assert ops.err("rename", ROOT, R, b"nope", R, b"x") == errno.ENOENT
    assert ops.err("rename", ROOT, f.fid, b"a", R, b"x") == errno.ENOTDIR
    assert ops.err("rename", ROOT, R, b"f", f.fid, b"x") == errno.ENOTDIR
    assert ops.err("rename", ROOT, R, b"f", R, b"a/b") == errno.EINVAL
    assert ops.err("rename", ROOT, R, b"f", R, b"x" * 256) == errno.ENAMETOOLONG
    assert ops.err("rename", ROOT, R, b"f", R, b"x", 3) == errno.EINVAL
    assert ops.err("rename", ROOT, R, b"f", R, b"x", 4) == errno.EINVAL


# ---- replacing a target -------------------------------------------------------------------------

def test_overwrite_file_destroys_victim(ops, osts):
    objs = osts(1)
    ops.create(ROOT, R, b"src", 0o644)
    victim = ops.create(ROOT, R, b"dst", 0o644, layout=Layout(objects=objs))
    r = ops.rename(ROOT, R, b"src", R, b"dst")
    assert r.target.fid == victim.fid and r.target.nlink == 0
    assert (r.destroyed, r.orphaned) == (objs, False)
    assert ops.read().pending_destroys(10) == [(objs[0].ost_index, objs[0].object_id)]
    assert names(ops, R) == [b"dst"]
    assert ops.err("getattr", victim.fid) == errno.ESTALE


def test_overwrite_open_file_orphans_victim(ops, osts):
    objs = osts(1)
    ops.create(ROOT, R, b"src", 0o644)
    victim = ops.create(ROOT, R, b"dst", 0o644, layout=Layout(objects=objs))
    h = ops.open(victim.fid, "c")
    r = ops.rename(ROOT, R, b"src", R, b"dst")
    assert (r.destroyed, r.orphaned, r.target.nlink) == ((), True, 0)
    assert ops.read().pending_destroys(10) == []
    assert ops.close(h) == objs


def test_overwrite_file_with_other_links(ops):
    ops.create(ROOT, R, b"src", 0o644)
    victim = ops.create(ROOT, R, b"dst", 0o644)
    ops.link(ROOT, victim.fid, R, b"other")
    r = ops.rename(ROOT, R, b"src", R, b"dst")
    assert (r.target.nlink, r.destroyed, r.orphaned) == (1, (), False)
    assert ops.read().lookup(ROOT, R, b"other").nlink == 1


def test_dir_over_empty_dir(ops):
    a = ops.mkdir(ROOT, R, b"a", 0o755)
    ops.mkdir(ROOT, a.fid, b"x", 0o755)
    b = ops.mkdir(ROOT, R, b"b", 0o755)
    empty = ops.mkdir(ROOT, b.fid, b"e", 0o755)
    r = ops.rename(ROOT, a.fid, b"x", b.fid, b"e")
    assert r.target.fid == empty.fid and r.target.nlink == 0
    assert (r.src_parent.nlink, r.dst_parent.nlink) == (2, 3)      # one subdir left b, one arrived
    assert ops.err("getattr", empty.fid) == errno.ESTALE
    # within one directory
    ops.mkdir(ROOT, R, b"p", 0o755)
    ops.mkdir(ROOT, R, b"q", 0o755)
    before = ops.read().getattr(R).nlink
    r = ops.rename(ROOT, R, b"p", R, b"q")
    assert r.src_parent.nlink == before - 1


def test_dir_over_nonempty_dir_and_kind_mismatches(ops):
    a = ops.mkdir(ROOT, R, b"a", 0o755)
    full = ops.mkdir(ROOT, R, b"full", 0o755)
    ops.create(ROOT, full.fid, b"f", 0o644)
    ops.create(ROOT, R, b"file", 0o644)
    assert ops.err("rename", ROOT, R, b"a", R, b"full") == errno.ENOTEMPTY
    assert ops.err("rename", ROOT, R, b"a", R, b"file") == errno.ENOTDIR
    assert ops.err("rename", ROOT, R, b"file", R, b"a") == errno.EISDIR
    ops.symlink(ROOT, R, b"link", b"a")
    assert ops.err("rename", ROOT, R, b"a", R, b"link") == errno.ENOTDIR
    assert ops.err("rename", ROOT, R, b"link", R, b"a") == errno.EISDIR
    assert ops.read().getattr(a.fid).nlink == 2


def test_dir_into_itself_or_descendant(ops):
    a = ops.mkdir(ROOT, R, b"a", 0o755)
    b = ops.mkdir(ROOT, a.fid, b"b", 0o755)
    c = ops.mkdir(ROOT, b.fid, b"c", 0o755)
    assert ops.err("rename", ROOT, R, b"a", a.fid, b"x") == errno.EINVAL
    assert ops.err("rename", ROOT, R, b"a", c.fid, b"x") == errno.EINVAL
    assert ops.err("rename", ROOT, R, b"a", c.fid, b"x", EXCHANGE) == errno.ENOENT
    ops.create(ROOT, c.fid, b"f", 0o644)
    assert ops.err("rename", ROOT, R, b"a", c.fid, b"f", EXCHANGE) == errno.EINVAL
    # the target is an ancestor of the source
    assert ops.err("rename", ROOT, b.fid, b"c", R, b"a") == errno.ENOTEMPTY
    assert ops.err("rename", ROOT, b.fid, b"c", a.fid, b"b") == errno.ENOTEMPTY
    assert ops.err("rename", ROOT, b.fid, b"c", R, b"a", EXCHANGE) == errno.EINVAL
    # moving up is fine
    ops.rename(ROOT, b.fid, b"c", R, b"c")
    assert tree(ops).keys() == {"a", "a/b", "c", "c/f"}


def test_same_inode_is_a_noop(ops):
    f = ops.create(ROOT, R, b"f", 0o644)
    ops.link(ROOT, f.fid, R, b"g")
    before = ops.read().getattr(R)
    r = ops.rename(ROOT, R, b"f", R, b"g")
    assert r.noop and r.source.fid == r.target.fid == f.fid
    assert names(ops, R) == [b"f", b"g"] and ops.read().getattr(f.fid).nlink == 2
    assert ops.read().getattr(R) == before
    assert ops.rename(ROOT, R, b"f", R, b"f").noop
    assert ops.rename(ROOT, R, b"f", R, b"g", EXCHANGE).noop
    assert ops.err("rename", ROOT, R, b"f", R, b"g", NOREPLACE) == errno.EEXIST
    d = ops.mkdir(ROOT, R, b"d", 0o755)
    assert ops.rename(ROOT, R, b"d", R, b"d").noop
    assert ops.read().getattr(d.fid).nlink == 2


def test_noreplace(ops):
    ops.create(ROOT, R, b"a", 0o644)
    ops.create(ROOT, R, b"b", 0o644)
    assert ops.err("rename", ROOT, R, b"a", R, b"b", NOREPLACE) == errno.EEXIST
    assert ops.err("rename", ROOT, R, b"zz", R, b"b", NOREPLACE) == errno.ENOENT
    ops.rename(ROOT, R, b"a", R, b"c", NOREPLACE)
    assert names(ops, R) == [b"b", b"c"]


def test_exchange(ops):
    a = ops.mkdir(ROOT, R, b"a", 0o755)
    b = ops.mkdir(ROOT, R, b"b", 0o755)
    fa = ops.create(ROOT, a.fid, b"fa", 0o644)
    sub = ops.mkdir(ROOT, b.fid, b"sub", 0o755)
    assert ops.err("rename", ROOT, a.fid, b"fa", b.fid, b"none", EXCHANGE) == errno.ENOENT
    assert ops.err("rename", ROOT, a.fid, b"none", b.fid, b"sub", EXCHANGE) == errno.ENOENT
    # file <-> directory across parents: '..' of the directory moves, link counts follow
    r = ops.rename(ROOT, a.fid, b"fa", b.fid, b"sub", EXCHANGE)
    assert r.source.fid == fa.fid and r.target.fid == sub.fid
    assert (r.src_parent.nlink, r.dst_parent.nlink) == (3, 2)
    assert ops.read().lookup(ROOT, a.fid, b"fa").fid == sub.fid
    assert ops.read().lookup(ROOT, b.fid, b"sub").fid == fa.fid
    assert ops.read().parent_of(sub.fid) == a.fid
    # directory <-> directory: counts unchanged
    other = ops.mkdir(ROOT, b.fid, b"other", 0o755)
    r = ops.rename(ROOT, a.fid, b"fa", b.fid, b"other", EXCHANGE)
    assert (r.src_parent.nlink, r.dst_parent.nlink) == (3, 3)
    assert ops.read().parent_of(other.fid) == a.fid and ops.read().parent_of(sub.fid) == b.fid
    # file <-> file in one directory, and a non-empty directory may be exchanged
    ops.create(ROOT, sub.fid, b"inside", 0o644)
    r = ops.rename(ROOT, b.fid, b"sub", b.fid, b"other", EXCHANGE)
    assert r.src_parent.nlink == 3
    t = tree(ops)
    assert t == {"a": a.fid, "a/fa": other.fid, "b": b.fid, "b/sub": sub.fid, "b/other": fa.fid,
                 "b/sub/inside": t["b/sub/inside"]}


# ---- permissions -------------------------------------------------------------------------------

def test_rename_permissions(ops):
    pub = ops.mkdir(ROOT, R, b"pub", 0o777)
    ops.setattr(ROOT, pub.fid, SetAttr(valid=SA.MODE, mode=0o777))
    mine = ops.mkdir(ALICE, pub.fid, b"alice", 0o755)
    ops.create(ALICE, mine.fid, b"f", 0o644)
    assert ops.err("rename", BOB, mine.fid, b"f", pub.fid, b"g") == errno.EACCES     # no w on source dir
    ops.create(BOB, pub.fid, b"bobs", 0o644)
    assert ops.err("rename", BOB, pub.fid, b"bobs", mine.fid, b"x") == errno.EACCES   # no w on target dir
    ops.create(ALICE, mine.fid, b"x", 0o644)
    assert ops.err("rename", BOB, pub.fid, b"bobs", mine.fid, b"x") == errno.EACCES
    # a directory changing parents needs write permission on itself ('..' changes)
    ro = ops.mkdir(ALICE, mine.fid, b"ro", 0o555)
    assert ops.err("rename", ALICE, mine.fid, b"ro", pub.fid, b"ro") == errno.EACCES
    ops.rename(ALICE, mine.fid, b"ro", mine.fid, b"ro2")                              # same parent: fine
    ops.rename(ROOT, mine.fid, b"ro2", pub.fid, b"ro")                                # root: fine
    assert ops.read().parent_of(ro.fid) == pub.fid
    # no search permission on a parent
    closed = ops.mkdir(ALICE, pub.fid, b"closed", 0o700)
    ops.create(ALICE, closed.fid, b"f", 0o644)
    assert ops.err("rename", BOB, closed.fid, b"f", pub.fid, b"f") == errno.EACCES
    assert ops.err("rename", BOB, pub.fid, b"bobs", closed.fid, b"f") == errno.EACCES


def test_rename_sticky(ops):
    tmp = ops.mkdir(ROOT, R, b"tmp", 0o755)
    ops.setattr(ROOT, tmp.fid, SetAttr(valid=SA.MODE, mode=0o1777))
    ops.create(ALICE, tmp.fid, b"alice", 0o666)
    ops.create(BOB, tmp.fid, b"bob", 0o666)
    assert ops.err("rename", BOB, tmp.fid, b"alice", tmp.fid, b"mine") == errno.EPERM
    assert ops.err("rename", BOB, tmp.fid, b"bob", tmp.fid, b"alice") == errno.EPERM     # would replace hers
    assert ops.err("rename", BOB, tmp.fid, b"bob", tmp.fid, b"alice", EXCHANGE) == errno.EPERM
    ops.rename(BOB, tmp.fid, b"bob", tmp.fid, b"bob2")                                  # his own: fine
    assert ops.err("rename", ALICE, tmp.fid, b"alice", tmp.fid, b"bob2") == errno.EPERM
    ops.rename(ROOT, tmp.fid, b"alice", tmp.fid, b"bob2")                                # root may
    assert names(ops, tmp.fid) == [b"bob2"]
    # the directory's owner may move anyone's entries
    ops.setattr(ROOT, tmp.fid, SetAttr(valid=SA.UID, uid=1000))
    ops.rename(ALICE, tmp.fid, b"bob2", tmp.fid, b"taken")


def test_rename_into_removed_directory(ops):
    d = ops.mkdir(ROOT, R, b"d", 0o755)
    ops.create(ROOT, R, b"f", 0o644)
    h = ops.open(d.fid, "c")
    ops.rmdir(ROOT, R, b"d")
    assert ops.err("rename", ROOT, R, b"f", d.fid, b"f") == errno.ENOENT
    ops.close(h)


# ---- the state machine: MDT vs the Linux kernel ------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100


def renameat2(old: str, new: str, flags: int) -> None:
    if _libc.renameat2(_AT_FDCWD, old.encode(), _AT_FDCWD, new.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _kernel_exchange_works() -> bool:
    d = tempfile.mkdtemp()
    try:
        Path(d, "a").touch()
        Path(d, "b").touch()
        renameat2(f"{d}/a", f"{d}/b", EXCHANGE)
        return True
    except (OSError, AttributeError):
        return False
    finally:
        shutil.rmtree(d)


NAMES = ["a", "b", "c"]
FLAGS = [0, NOREPLACE, EXCHANGE] if _kernel_exchange_works() else [0, NOREPLACE]
_ERR_OF_KERNEL = {errno.EOPNOTSUPP: errno.ENOTSUP}


class NamespaceVsKernel(RuleBasedStateMachine):
    """Each rule does one operation on both sides; results and trees must agree."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="lp-ns-")
        self.kbase = os.path.join(self.tmp, "k")
        os.mkdir(self.kbase)
        Store.format(Path(self.tmp, "mdt"), "lpmodel")
        self.store = Store(Path(self.tmp, "mdt"))

    def teardown(self) -> None:
        try:
            assert check_invariants(self.store) == []
        finally:
            self.store.close()
            shutil.rmtree(self.tmp)

    # -- resolving paths on both sides --
    def kpath(self, parts) -> str:
        return os.path.join(self.kbase, *parts)

    def mresolve(self, parts):
        fid = R
        tx = self.store.read()
        for p in parts:
            fid = tx.lookup(ROOT, fid, p.encode()).fid
        return fid

    def both(self, op, kernel_fn, mdt_fn) -> None:
        try:
            kernel_fn()
            kerr = 0
        except OSError as e:
            kerr = _ERR_OF_KERNEL.get(e.errno, e.errno)
        try:
            self.store.write(mdt_fn)
            merr = 0
        except LpError as e:
            merr = e.errno
        assert merr == kerr, f"mdt {errno.errorcode.get(merr, merr)} vs kernel {errno.errorcode.get(kerr, kerr)}"
        event(f"{op}: {errno.errorcode.get(kerr, 'ok')}")

    # -- rules: parents and sources are drawn from what exists, names from a small set --
    def existing(self) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
        """(directories, all entries) as sorted path tuples, from the kernel's tree."""
        dirs, entries = [()], []
        for dirpath, dirnames, filenames in os.walk(self.kbase):
            rel = os.path.relpath(dirpath, self.kbase)
            base = () if rel == "." else tuple(rel.split(os.sep))
            dirs += [base + (d,) for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            entries += [base + (n,) for n in dirnames + filenames]
        return sorted(dirs), sorted(entries)

    def parent_name(self, data, max_depth: int = 3) -> tuple[tuple[str, ...], str]:
        dirs = [d for d in self.existing()[0] if len(d) < max_depth]
        return data.draw(st.sampled_from(dirs)), data.draw(st.sampled_from(NAMES))

    def source(self, data) -> tuple[str, ...]:
        """Mostly an existing entry; sometimes any name in an existing directory."""
        dirs, entries = self.existing()
        if entries and data.draw(st.integers(0, 5)):
            return data.draw(st.sampled_from(entries))
        return data.draw(st.sampled_from(dirs)) + (data.draw(st.sampled_from(NAMES)),)

    @rule(data=st.data())
    def mkdir(self, data):
        parent, name = self.parent_name(data, max_depth=3)
        pf = self.mresolve(parent)
        self.both("mkdir", lambda: os.mkdir(self.kpath(parent + (name,)), 0o755),
                  lambda tx: tx.mkdir(ROOT, pf, name.encode(), 0o755))

    @rule(data=st.data())
    def create(self, data):
        parent, name = self.parent_name(data, max_depth=4)
        pf = self.mresolve(parent)
        self.both("create", lambda: os.close(os.open(self.kpath(parent + (name,)),
                                                     os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)),
                  lambda tx: tx.create(ROOT, pf, name.encode(), 0o644))

    @rule(data=st.data())
    def symlink(self, data):
        parent, name = self.parent_name(data, max_depth=4)
        pf = self.mresolve(parent)
        self.both("symlink", lambda: os.symlink("target", self.kpath(parent + (name,))),
                  lambda tx: tx.symlink(ROOT, pf, name.encode(), b"target"))

    @rule(data=st.data())
    def link(self, data):
        entries = self.existing()[1]
        if not entries:
            return
        src = data.draw(st.sampled_from(entries))
        parent, name = self.parent_name(data, max_depth=4)
        sf, pf = self.mresolve(src), self.mresolve(parent)
        self.both("link", lambda: os.link(self.kpath(src), self.kpath(parent + (name,)), follow_symlinks=False),
                  lambda tx: tx.link(ROOT, sf, pf, name.encode()))

    @rule(data=st.data())
    def unlink(self, data):
        victim = self.source(data)
        pf = self.mresolve(victim[:-1])
        self.both("unlink", lambda: os.unlink(self.kpath(victim)),
                  lambda tx: tx.unlink(ROOT, pf, victim[-1].encode()))

    @rule(data=st.data())
    def rmdir(self, data):
        victim = self.source(data)
        pf = self.mresolve(victim[:-1])
        self.both("rmdir", lambda: os.rmdir(self.kpath(victim)),
                  lambda tx: tx.rmdir(ROOT, pf, victim[-1].encode()))

    @rule(data=st.data(), flags=st.sampled_from(FLAGS))
    def rename(self, data, flags):
        src = self.source(data)
        dirs, entries = self.existing()
        if entries and data.draw(st.booleans()):
            dst = data.draw(st.sampled_from(entries))
        else:
            dst = data.draw(st.sampled_from(dirs)) + (data.draw(st.sampled_from(NAMES)),)
        spf, dpf = self.mresolve(src[:-1]), self.mresolve(dst[:-1])
        self.both(f"rename{flags}", lambda: renameat2(self.kpath(src), self.kpath(dst), flags),
                  lambda tx: tx.rename(ROOT, spf, src[-1].encode(), dpf, dst[-1].encode(), flags))

    # -- the trees agree --
    @invariant()
    def same_tree(self):
        kernel, mdt = {}, {}

        def same_names(t):
            """Each path with its kind, nlink, target, and every path naming the same inode."""
            groups: dict[object, list[str]] = {}
            for rel, (_, _, ident, _) in t.items():
                groups.setdefault(ident, []).append(rel)
            return {rel: (k, n, tuple(sorted(groups[ident])), x) for rel, (k, n, ident, x) in t.items()}
        for dirpath, dirnames, filenames in os.walk(self.kbase):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                s = os.lstat(p)
                rel = os.path.relpath(p, self.kbase)
                extra = os.readlink(p).encode() if stat.S_ISLNK(s.st_mode) else None
                kernel[rel] = (stat.S_IFMT(s.st_mode), s.st_nlink, s.st_ino, extra)
        tx = self.store.read()

        def walk(fid, prefix):
            for e, a in tx.readdir(fid, 0, 1000):
                rel = prefix + e.name.decode()
                extra = tx.readlink(a.fid) if stat.S_ISLNK(a.mode) else None
                mdt[rel] = (stat.S_IFMT(a.mode), a.nlink, a.fid, extra)
                assert e.type == stat.S_IFMT(a.mode)
                if stat.S_ISDIR(a.mode):
                    walk(a.fid, rel + "/")
        walk(R, "")
        assert same_names(mdt) == same_names(kernel)
        assert tx.getattr(R).nlink == os.lstat(self.kbase).st_nlink


NamespaceVsKernel.TestCase.settings = settings(
    max_examples=int(os.environ.get("LP_NS_EXAMPLES", "80")), stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_namespace_matches_kernel = NamespaceVsKernel.TestCase
