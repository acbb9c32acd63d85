"""rename and renameat2 (RENAME_NOREPLACE, RENAME_EXCHANGE) with Linux's rules and errno order.

Checks, as do_renameat2 and vfs_rename make them: search permission on both
parents; the source exists (ENOENT); NOREPLACE with a target (EEXIST);
EXCHANGE without one (ENOENT); the source is the destination parent or above
it (EINVAL); the target is the source parent or above it (ENOTEMPTY, EINVAL
for an exchange); both names on one inode (success, nothing changes); delete
permission and the sticky bit on the source, then on the target or create
permission on the destination; a directory changing parents needs write
permission on itself ('..' changes); kind mismatches (ENOTDIR, EISDIR); a
non-empty directory target (ENOTEMPTY).

A replaced target loses that name as unlink or rmdir would (orphaned while
open, else destroyed with its objects queued). The moved entry keeps its
readdir cookie. Called by namespace.Tx inside a transaction; never commits.
"""

from __future__ import annotations

import errno
import stat

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import StripeObject
from lustrepy.common.names import check_name
from lustrepy.common.protocol import RENAME, check_bits
from lustrepy.common.records import Attr, Cred
from lustrepy.common import perm
from lustrepy.mds.inodes import TxBase
from lustrepy.mds.records import Renamed


_SUBTREE_STUB = ("WITH RECURSIVE down(id) AS (SELECT ? UNION SELECT d.child FROM dentries d JOIN down "
                 "ON d.parent = down.id) SELECT 1 FROM down JOIN remote_inodes r ON r.inode = down.id "
                 "JOIN inodes i ON i.id = down.id WHERE (i.mode & 61440) = 16384 LIMIT 1")
_NAMED_ELSEWHERE = "SELECT 1 FROM remote_names WHERE inode IN ({}) LIMIT 1"


def _no_loop_across_mdts(tx: TxBase, moved: int, moved_fid: Fid, new_parent: int, new_parent_fid: Fid) -> None:
    """Where the new parent's ancestors over all MDTs were gathered (the MDS holds the rename
    lock, mds/dnetree.py): EINVAL when directory `moved` is among them. Else (a replayed record)
    EXDEV where the move could close a loop through other MDTs: the new parent's ancestors here
    end at a directory named on another MDT, and `moved`'s subtree here holds a directory of
    another MDT (through which it could be above that name); `mv` copies instead."""
    climbed = tx.climbed.get(new_parent_fid)
    if climbed is not None:
        if moved_fid in climbed:
            raise LpError(errno.EINVAL, "cannot move a directory into itself")
        return
    if tx.conn.execute("SELECT 1 FROM remote_inodes LIMIT 1").fetchone() is None:
        return                  # no name here binds another MDT's inode: no path leaves this MDT downwards
    up = tx._ancestors(new_parent)
    if not tx.conn.execute(_NAMED_ELSEWHERE.format(",".join("?" * len(up))), tuple(up)).fetchone():
        return
    if tx.conn.execute(_SUBTREE_STUB, (moved,)).fetchone():
        raise LpError(errno.EXDEV, "moving this directory there could close a loop through other MDTs")


def rename(tx: TxBase, cred: Cred, src_parent: Fid, src_name: bytes, dst_parent: Fid, dst_name: bytes,
           flags: int = 0) -> Renamed:
    check_bits(RENAME, flags, "rename flag")
    if flags == RENAME.NOREPLACE | RENAME.EXCHANGE:
        raise LpError(errno.EINVAL, "rename flags NOREPLACE and EXCHANGE exclude each other")
    exchange = bool(flags & RENAME.EXCHANGE)
    spid, spa = tx._node(src_parent)
    dpid, dpa = tx._node(dst_parent)
    perm.may_lookup(cred, spa)
    check_name(src_name)
    perm.may_lookup(cred, dpa)
    check_name(dst_name)
    src = tx._child(spid, src_name)
    if src is None:
        raise LpError(errno.ENOENT, f"no entry {src_name!r} in {src_parent}")
    sdid, sid, sa = src
    if dpa.nlink == 0:
        raise LpError(errno.ENOENT, f"directory {dst_parent} has been removed")
    dst = tx._child(dpid, dst_name)
    if dst is not None and flags & RENAME.NOREPLACE:
        raise LpError(errno.EEXIST, f"{dst_name!r} exists in {dst_parent}")
    if dst is None and exchange:
        raise LpError(errno.ENOENT, f"no entry {dst_name!r} in {dst_parent} to exchange with")
    s_isdir = stat.S_ISDIR(sa.mode)
    d_isdir = dst is not None and stat.S_ISDIR(dst[2].mode)
    cross = spid != dpid
    if cross:
        if s_isdir and sid in tx._ancestors(dpid):
            raise LpError(errno.EINVAL, "cannot move a directory into itself")
        if d_isdir and dst is not None and dst[1] in tx._ancestors(spid):
            raise LpError(errno.EINVAL if exchange else errno.ENOTEMPTY, "the target contains the source")
        if s_isdir:
            _no_loop_across_mdts(tx, sid, sa.fid, dpid, dst_parent)
        if exchange and d_isdir and dst is not None:
            _no_loop_across_mdts(tx, dst[1], dst[2].fid, spid, src_parent)
    if dst is not None and dst[1] == sid:
        return Renamed(sa, dst[2], spa, dpa if cross else spa, noop=True)

    perm.may_delete(cred, spa, sa, s_isdir)
    if dst is None:
        perm.may_create(cred, dpa)
    else:
        perm.may_delete(cred, dpa, dst[2], d_isdir if exchange else s_isdir)
    if cross:
        if s_isdir:
            perm.require(cred, sa, perm.W)
        if exchange and d_isdir and dst is not None:
            perm.require(cred, dst[2], perm.W)
    if dst is not None and d_isdir and not exchange and tx._has_entries(dst[1]):
        raise LpError(errno.ENOTEMPTY, f"directory {dst_name!r} is not empty")

    delta = {spid: 0, dpid: 0}
    target: Attr | None = None
    destroyed: tuple[StripeObject, ...] = ()
    orphaned = False
    if exchange:
        assert dst is not None
        ddid, did, _ = dst
        tx.conn.execute("UPDATE dentries SET child = CASE id WHEN ? THEN ? ELSE ? END WHERE id IN (?, ?)",
                        (sdid, did, sid, sdid, ddid))
        if cross and s_isdir != d_isdir:
            moved = 1 if s_isdir else -1        # a directory leaves src_parent (+1 the other way)
            delta[spid] -= moved
            delta[dpid] += moved
        target = tx._bump(did)
    else:
        if dst is not None:
            ddid, did, _ = dst
            tx._delete_dentry(ddid)
            if d_isdir:
                delta[dpid] -= 1
            target, destroyed, orphaned = tx._drop_link(did, isdir=d_isdir)
        tx.conn.execute("UPDATE dentries SET parent = ?, name = ? WHERE id = ?", (dpid, bytes(dst_name), sdid))
        if cross and s_isdir:
            delta[spid] -= 1
            delta[dpid] += 1
    source = tx._bump(sid)
    new_sp = tx._bump(spid, nlink=delta[spid], mtime=True)
    new_dp = tx._bump(dpid, nlink=delta[dpid], mtime=True) if cross else new_sp
    return Renamed(source, target, new_sp, new_dp, destroyed, orphaned)
