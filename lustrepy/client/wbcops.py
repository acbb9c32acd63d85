"""Metadata operations a client performs locally under a WBC grant.

llite calls these when the directory an operation changes is covered by a
WBC lock this client holds (lustrepy.client.wbc): the change is journalled as
an update record first, then applied to the inode table, and the caller
answers the kernel without any RPC. Each function returns None when it cannot
act locally (no FID at hand, the directory's listing not known, an object
this client did not make), and llite then goes to the MDS as usual, after
sending the records so far.

Objects made under a grant are cached under a "cache cookie" of the grant
instead of an MDS lock; when the grant goes, those cookies are revoked like
locks and the kernel forgets what they covered.

Runs in the FUSE thread; never blocks beyond a journal write.
"""

from __future__ import annotations

import errno
import stat
import time
from dataclasses import replace

from lustrepy.client.inodes import Inode, InodeTable, Revoked
from lustrepy.client.wbc import Grant, Wbc
from lustrepy.common import perm
from lustrepy.common.errors import LpError
from lustrepy.common.names import check_xattr
from lustrepy.common.protocol import RENAME, SA
from lustrepy.common.records import DIR_BLOCKS, DIR_SIZE, Attr, Cred
from lustrepy.ldlm.inodebits import IBit
from lustrepy.rpc.convert import fid_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb

USER_NS = b"user."
# plain ints: the inode table ORs and tests these on every operation, and IntFlag arithmetic is slow
MADE_BITS = int(IBit.LOOKUP | IBit.UPDATE | IBit.PERM | IBit.LAYOUT | IBit.XATTR)
WBC_DIR_BITS = int(IBit.UPDATE | IBit.PERM)


class LocalOps:
    def __init__(self, table: InodeTable, wbc: Wbc) -> None:
        self.table = table
        self.wbc = wbc

    # ---- grants --------------------------------------------------------------------------

    def grant_for(self, parent: Inode) -> Grant | None:
        """The grant under which entries of `parent` change locally, if its listing is known."""
        g = self.wbc.local(parent.fid)
        if g is None:
            return None
        with self.table.mu:
            if parent.complete is None or parent.attr is None or not parent.bits & IBit.UPDATE:
                return None
        return g

    def adopted(self, g: Grant, node: Inode) -> None:
        """A new grant on `node`: its WBC lock keeps the directory's attributes and listing."""
        self.table.attach_lock(node.fid, g.cookie, WBC_DIR_BITS)

    def dropped(self, g: Grant) -> list[Revoked]:
        """The grant is gone: what its cache cookies covered, for the kernel to forget."""
        out = []
        for c in sorted(g.pseudo):
            r = self.table.revoke(c)
            if r is None:
                continue
            out.append(r)
            node = self.table.get(r.ino)
            if node is None:
                continue
            with self.table.mu:
                if node.wbc_grant != g.cookie:
                    continue
                node.wbc_grant = 0
                node.wbc_xattrs = {}            # the MDS has them now
            self.table.let_go(node.ino)         # kept after the kernel forgot it: no longer
        return out

    # ---- creation ------------------------------------------------------------------------------

    def create(self, g: Grant, parent: Inode, name: bytes, mode: int, rdev: int, cred: Cred,
               target: bytes = b"") -> Inode | None:
        """A new file, device, FIFO, directory or symlink named `name` in `parent`."""
        fid = self.wbc.new_fid(g.mdt)
        if fid is None:
            return None
        if not stat.S_IFMT(mode):
            mode |= stat.S_IFREG
        is_dir = stat.S_ISDIR(mode)
        seq = 0
        with self.wbc.op_lock:
            if g.revoking:
                return None
            now = time.time_ns()
            with self.table.mu:
                if parent.complete is None or parent.attr is None:
                    return None
                if name in parent.complete:
                    raise LpError(errno.EEXIST, "file exists")
                pattr = parent.attr
            gid = cred.gid
            if pattr.mode & stat.S_ISGID:           # BSD group semantics of a setgid directory
                gid = pattr.gid
                if is_dir:
                    mode |= stat.S_ISGID
            size = len(target) if stat.S_ISLNK(mode) else (DIR_SIZE if is_dir else 0)
            attr = Attr(fid, mode, 2 if is_dir else 1, cred.uid, gid, size, DIR_BLOCKS if is_dir else 0,
                        now, now, now, rdev)
            pf, ff = fid_to_pb(parent.fid), fid_to_pb(fid)
            if is_dir:
                self.wbc.record(cred, now, mdt=g.mdt, mkdir=mpb.MkdirOp(parent=pf, name=name, mode=mode, fid=ff))
            elif stat.S_ISLNK(mode):
                self.wbc.record(cred, now, mdt=g.mdt, symlink=mpb.SymlinkOp(parent=pf, name=name, target=target, fid=ff))
            else:
                seq = self.wbc.record(cred, now, mdt=g.mdt, create=mpb.CreateOp(parent=pf, name=name, mode=mode, rdev=rdev,
                                                                     fid=ff, delay_layout=True))
            node, _ = self.table.learn(fid, attr, size_valid=True, lock=self.wbc.pseudo_cookie(g),
                                       bits=MADE_BITS, name=(parent.ino, name), lookup=True)
            with self.table.mu:
                node.wbc_grant = g.cookie
                node.wbc_create_seq = seq
                node.size_local = True
                if is_dir:
                    node.complete = set()
                self.table.entry_added(parent.ino, name)
                parent.negatives.discard(name)
                parent.attr = replace(pattr, nlink=pattr.nlink + (1 if is_dir else 0), mtime_ns=now,
                                      ctime_ns=now)
            if is_dir:
                self.wbc.add_dir(g, fid)
        return node

    # ---- removal ---------------------------------------------------------------------------------

    def remove(self, g: Grant, parent: Inode, name: bytes, cred: Cred, *, rmdir: bool) -> bool:
        """unlink/rmdir of an object made under the grant; False: not one of those."""
        victim = self.table.child(parent.ino, name)
        if victim is None or victim.wbc_grant != g.cookie:
            return False
        with self.wbc.op_lock:
            if g.revoking:
                return False
            with self.table.mu:
                va, pa = victim.attr, parent.attr
                if va is None or pa is None or parent.complete is None:
                    return False
                if not _may_lose_name(victim, va, want_dir=rmdir):
                    return False
            now = time.time_ns()
            pf = fid_to_pb(parent.fid)
            if rmdir:
                self.wbc.record(cred, now, mdt=g.mdt, rmdir=mpb.RmdirOp(parent=pf, name=name))
            else:
                self.wbc.record(cred, now, mdt=g.mdt, unlink=mpb.UnlinkOp(parent=pf, name=name))
            with self.table.mu:
                parent.complete.discard(name)
                parent.attr = replace(pa, nlink=pa.nlink - (1 if rmdir else 0), mtime_ns=now, ctime_ns=now)
                self._unname(victim, parent, name, now)
            if rmdir:
                self.wbc.remove_dir(g, victim.fid)
        return True

    # ---- names ---------------------------------------------------------------------------------

    def link(self, g: Grant, node: Inode, parent: Inode, name: bytes, cred: Cred) -> bool:
        """A hard link, in a directory of the grant, to a file made under it."""
        if node.wbc_grant != g.cookie:
            return False
        with self.wbc.op_lock:
            if g.revoking:
                return False
            with self.table.mu:
                a, pa = node.attr, parent.attr
                if a is None or pa is None or parent.complete is None or a.nlink == 0:
                    return False
                if stat.S_ISDIR(a.mode):
                    raise LpError(errno.EPERM, "hard link to a directory")
                if name in parent.complete:
                    raise LpError(errno.EEXIST, "file exists")
            now = time.time_ns()
            self.wbc.record(cred, now, mdt=g.mdt, link=mpb.LinkOp(fid=fid_to_pb(node.fid), parent=fid_to_pb(parent.fid),
                                                       name=name))
            with self.table.mu:
                node.attr = replace(a, nlink=a.nlink + 1, ctime_ns=now)
                parent.complete.add(name)
                parent.attr = replace(pa, mtime_ns=now, ctime_ns=now)
            self.table.add_name(node, parent.ino, name)
        return True

    def rename(self, g: Grant, sp: Inode, old: bytes, dp: Inode, new: bytes, flags: int,
               cred: Cred) -> Inode | bool:
        """rename(2) of an object made under the grant, between directories of the grant.
        Returns False when it cannot be done here, True when done, or the inode the new
        name replaced (the caller forgets what it kept of it)."""
        moved = self.table.child(sp.ino, old)
        if moved is None or moved.wbc_grant != g.cookie or flags & ~RENAME.NOREPLACE:
            return False                                    # RENAME.EXCHANGE goes to the MDS
        with self.wbc.op_lock:
            if g.revoking:
                return False
            with self.table.mu:
                if sp.complete is None or dp.complete is None or sp.attr is None or dp.attr is None:
                    return False
                ma = moved.attr
                if ma is None or old not in sp.complete:
                    return False
                target = self.table.child(dp.ino, new) if new in dp.complete else None
                if new in dp.complete:
                    if flags & RENAME.NOREPLACE:
                        raise LpError(errno.EEXIST, "file exists")
                    if target is None or target.wbc_grant != g.cookie or target.attr is None:
                        return False
                    if target is moved:
                        return True                         # two names of one file: nothing to do
                is_dir = stat.S_ISDIR(ma.mode)
                if is_dir and self._beneath(dp, moved, g):
                    raise LpError(errno.EINVAL, "a directory cannot move beneath itself")
                if target is not None and (target.attr is None
                                           or not _may_lose_name(target, target.attr, want_dir=is_dir)):
                    return False
            now = time.time_ns()
            self.wbc.record(cred, now, mdt=g.mdt, rename=mpb.RenameOp(src_parent=fid_to_pb(sp.fid), src_name=old,
                                                           dst_parent=fid_to_pb(dp.fid), dst_name=new, flags=flags))
            with self.table.mu:
                self.table.remove_name(sp.ino, old)
                sp.complete.discard(old)
                moved.attr = replace(ma, ctime_ns=now)
                t_dir = target is not None and is_dir      # a replaced name is of the moved one's kind
                if target is not None:
                    self._unname(target, dp, new, now)
                dp.complete.add(new)
                self.table.add_name(moved, dp.ino, new)
                links = (1 if is_dir else 0)
                sp.attr = replace(sp.attr, nlink=sp.attr.nlink - links, mtime_ns=now, ctime_ns=now)
                dp.attr = replace(dp.attr, nlink=dp.attr.nlink + links - (1 if t_dir else 0),
                                  mtime_ns=now, ctime_ns=now)
            if t_dir and target is not None:
                self.wbc.remove_dir(g, target.fid)
        return target if target is not None else True

    def _unname(self, victim: Inode, parent: Inode, name: bytes, now: int) -> None:
        """`victim` loses its name `name` in `parent` (an unlink, rmdir, or a rename over it);
        called with table.mu held."""
        a = victim.attr
        assert a is not None
        is_dir = stat.S_ISDIR(a.mode)
        victim.attr = replace(a, nlink=0 if is_dir else max(0, a.nlink - 1), ctime_ns=now)
        self.table.remove_name(parent.ino, name)

    def _beneath(self, node: Inode, top: Inode, g: Grant) -> bool:
        """`node` is `top` or lies beneath it (walking up through directories of the grant)."""
        seen = 0
        cur: Inode | None = node
        while cur is not None and seen < 4096:
            if cur is top:
                return True
            if cur.wbc_grant != g.cookie or not cur.names:
                return False
            cur = self.table.get(next(iter(cur.names))[0])
            seen += 1
        return False

    # ---- extended attributes ---------------------------------------------------------------------

    def setxattr(self, node: Inode, name: bytes, value: bytes | None, cred: Cred) -> bool:
        """Set (value) or remove (None) a user.* attribute of an object made here. Other
        namespaces, and objects not made here, go to the MDS."""
        if not name.startswith(USER_NS) or len(name) == len(USER_NS):
            return False
        g = self.wbc.live(node.wbc_grant) if node.wbc_grant else None
        if g is None:
            return False
        check_xattr(name, value)
        with self.wbc.op_lock:
            if g.revoking:
                return False
            with self.table.mu:
                a = node.attr
                if a is None:
                    return False
                if not (stat.S_ISREG(a.mode) or stat.S_ISDIR(a.mode)):
                    raise LpError(errno.EPERM, "user.* attributes only on regular files and directories")
                if (stat.S_ISDIR(a.mode) and a.mode & stat.S_ISVTX and cred.uid not in (0, a.uid)):
                    raise LpError(errno.EPERM, "sticky directory: only the owner sets user.* attributes")
                if value is None and name not in node.wbc_xattrs:
                    raise LpError(errno.ENODATA, "no such attribute")
            now = time.time_ns()
            fid = fid_to_pb(node.fid)
            if value is None:
                self.wbc.record(cred, now, mdt=g.mdt, removexattr=mpb.RemovexattrOp(fid=fid, name=name))
            else:
                self.wbc.record(cred, now, mdt=g.mdt, setxattr=mpb.SetxattrOp(fid=fid, name=name, value=value))
            with self.table.mu:
                if value is None:
                    del node.wbc_xattrs[name]
                else:
                    node.wbc_xattrs[name] = bytes(value)
                node.attr = replace(a, ctime_ns=now)
        return True

    # ---- attributes ----------------------------------------------------------------------------------

    def setattr(self, node: Inode, op: dict, cred: Cred) -> bool:
        """chmod/chown/utimes (and a size that does not change) of an object made here, under
        the permission rules the MDS applies to the record (lustrepy.common.perm): a change
        refused here is refused before anything changes, and one done here is one the MDS
        accepts when the record reaches it."""
        valid = op["valid"]
        g = self.wbc.live(node.wbc_grant) if node.wbc_grant else None
        if g is None:
            return False
        with self.wbc.op_lock:
            if g.revoking:
                return False
            with self.table.mu:
                a = node.attr
                if a is None or (valid & SA.SIZE and (op.get("size", 0) != 0 or a.size != 0)):
                    return False
            mode = perm.check_setattr(cred, a, perm.Change(valid, op.get("mode", 0), op.get("uid", 0),
                                                           op.get("gid", 0), op.get("size", 0)))
            now = time.time_ns()
            fields = {k: v for k, v in op.items() if k not in ("valid", "size", "open_handle")}
            self.wbc.record(cred, now, mdt=g.mdt, setattr=mpb.SetattrOp(fid=fid_to_pb(node.fid), valid=valid & ~SA.SIZE,
                                                             **fields))
            changes: dict = {"mode": mode, "ctime_ns": now}
            for bit, now_bit, key in ((SA.ATIME, SA.ATIME_NOW, "atime_ns"), (SA.MTIME, SA.MTIME_NOW, "mtime_ns")):
                if valid & now_bit:
                    changes[key] = now
                elif valid & bit:
                    changes[key] = op[key]
            for bit, key in ((SA.UID, "uid"), (SA.GID, "gid"), (SA.CTIME, "ctime_ns")):
                if valid & bit:
                    changes[key] = op[key]
            with self.table.mu:
                node.attr = replace(a, **changes)
        return True


def _may_lose_name(victim: Inode, a: Attr, *, want_dir: bool) -> bool:
    """May `victim` (attributes `a`) lose a name here: unlinked or rmdir'ed (want_dir), or
    replaced by a rename of a file (or a directory)? Raises the errno a wrong kind or a
    non-empty directory gives; False when the MDS must do it (a directory whose entries
    are not all known, an open file that the MDS keeps as an orphan)."""
    is_dir = stat.S_ISDIR(a.mode)
    if want_dir and not is_dir:
        raise LpError(errno.ENOTDIR, "not a directory")
    if not want_dir and is_dir:
        raise LpError(errno.EISDIR, "is a directory")
    if is_dir and victim.complete is None:
        return False
    if is_dir and victim.complete:
        raise LpError(errno.ENOTEMPTY, "directory not empty")
    return is_dir or not victim.opens
