"""setattr rules: chmod, chown/chgrp, truncate (the MDS's lazy size) and utimens,
with Linux's permission checks, their order, and the setuid/setgid clearing.

Called by namespace.Tx.setattr inside a transaction; never punches objects on
the OSTs (that is the caller's job) and never commits.
"""

from __future__ import annotations

import errno
import stat

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import MAX_FILE_SIZE
from lustrepy.common.records import Attr, Cred
from lustrepy.mds import perm
from lustrepy.mds.inodes import TxBase, row_attr
from lustrepy.mds.records import SA, SetAttr
from lustrepy.mds.schema import ATTR_COLUMNS


def _kill_sxid(cred: Cred, a: Attr, mode: int, gid: int) -> int:
    """Mode after a change of owner or contents: setuid goes; setgid goes when
    group-executable, or when the caller is neither in the group nor root."""
    mode &= ~stat.S_ISUID
    if mode & stat.S_ISGID and (mode & stat.S_IXGRP or (cred.uid != 0 and not cred.in_group(gid))):
        mode &= ~stat.S_ISGID
    return mode


def setattr(tx: TxBase, cred: Cred, fid: Fid, sa: SetAttr) -> Attr:
    iid, a = tx._node(fid)
    v = sa.valid
    if not v:
        return a
    now = tx.now
    cols: dict[str, int] = {}
    mode = a.mode
    kill = False                    # clear setuid/setgid unless the mode is set explicitly

    if v & SA.SIZE:
        if stat.S_ISDIR(a.mode):
            raise LpError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(a.mode) or sa.size < 0:
            raise LpError(errno.EINVAL, "only a regular file has a size to set")
        by_handle = sa.open_handle and tx.conn.execute(
            "SELECT 1 FROM opens WHERE handle = ? AND inode = ?", (sa.open_handle, iid)).fetchone()
        if not by_handle:
            perm.require(cred, a, perm.W)
        if sa.size > MAX_FILE_SIZE:
            raise LpError(errno.EFBIG, f"size {sa.size} beyond the largest file")
        cols["size"] = sa.size
        cols["blocks"] = sa.blocks if sa.blocks else min(a.blocks, (sa.size + 511) // 512)
        if not v & (SA.MTIME | SA.MTIME_NOW):
            cols["mtime_ns"] = now
        if cred.uid != 0 and mode & (stat.S_ISUID | stat.S_ISGID):
            kill = True

    gid = a.gid
    if v & SA.UID:
        if not (cred.uid == 0 or (cred.uid == a.uid and sa.uid == a.uid)):
            raise LpError(errno.EPERM, "only root may change a file's owner")
        cols["uid"] = sa.uid
    if v & SA.GID:
        if not (cred.uid == 0 or (cred.uid == a.uid and (sa.gid == a.gid or cred.in_group(sa.gid)))):
            raise LpError(errno.EPERM, "only the owner may change the group, to one of its own")
        gid = cols["gid"] = sa.gid
    if v & (SA.UID | SA.GID) and not stat.S_ISDIR(a.mode):
        kill = True

    if v & SA.MODE:
        perm.require_owner(cred, a, "change the mode")
        mode = stat.S_IFMT(a.mode) | (sa.mode & 0o7777)
        if mode & stat.S_ISGID and cred.uid != 0 and not cred.in_group(gid):
            mode &= ~stat.S_ISGID
    elif kill:
        mode = stat.S_IFMT(a.mode) | _kill_sxid(cred, a, a.mode & 0o7777, gid)
    if mode != a.mode:
        cols["mode"] = mode

    explicit = bool((v & SA.ATIME and not v & SA.ATIME_NOW) or (v & SA.MTIME and not v & SA.MTIME_NOW))
    if explicit:
        perm.require_owner(cred, a, "set explicit times")
    elif v & (SA.ATIME_NOW | SA.MTIME_NOW) and not perm.is_owner(cred, a) and not perm.allowed(cred, a, perm.W):
        raise LpError(errno.EACCES, "permission denied setting times")
    if v & SA.ATIME_NOW:
        cols["atime_ns"] = now
    elif v & SA.ATIME:
        cols["atime_ns"] = sa.atime_ns
    if v & SA.MTIME_NOW:
        cols["mtime_ns"] = now
    elif v & SA.MTIME:
        cols["mtime_ns"] = sa.mtime_ns
    if v & SA.CTIME:
        if not perm.is_owner(cred, a) and not perm.allowed(cred, a, perm.W):
            raise LpError(errno.EPERM, "only the owner or a writer may set ctime")
        cols["ctime_ns"] = sa.ctime_ns
    else:
        cols["ctime_ns"] = now

    sets = ", ".join(f"{k} = ?" for k in cols)
    r = tx.conn.execute(f"UPDATE inodes SET {sets}, generation = generation + 1 WHERE id = ? "
                        f"RETURNING id, {ATTR_COLUMNS}", (*cols.values(), iid)).fetchall()
    return row_attr(r[0])
