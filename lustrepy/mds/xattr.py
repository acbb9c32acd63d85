"""Extended attributes: the namespaces this MDS stores and who may touch them, as Linux.

user.*     regular files and directories only; read needs r, write needs w
           permission; on a sticky directory only the owner or root writes.
trusted.*  root only (hidden from others' listings).
security.* anyone reads, root writes.
system.* (POSIX ACLs) and unknown namespaces: ENOTSUP, so tools fall back to
mode bits instead of storing ACLs nobody enforces. The layout xattr is served
by the request handlers, not stored here.

Called by namespace.Tx inside a transaction; never commits.
"""

from __future__ import annotations

import errno
import stat

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.names import check_xattr
from lustrepy.common.records import Attr, Cred
from lustrepy.common import perm
from lustrepy.mds.inodes import TxBase
from lustrepy.common.protocol import XATTR, check_bits

USER, TRUSTED, SECURITY = b"user.", b"trusted.", b"security."


def _may(cred: Cred, a: Attr, name: bytes, write: bool) -> None:
    """Linux's xattr_permission (and commoncap's rule for security.*), then the
    name's namespace: EINVAL for an empty name in it, ENOTSUP for one not stored here."""
    if name.startswith(SECURITY):
        if write and cred.uid != 0:
            raise LpError(errno.EPERM, "only root sets security.* attributes")
    elif name.startswith(b"system."):
        pass
    elif name.startswith(TRUSTED):
        if cred.uid != 0:
            raise LpError(errno.EPERM if write else errno.ENODATA, "trusted.* attributes are root's")
    else:
        if name.startswith(USER):
            if not (stat.S_ISREG(a.mode) or stat.S_ISDIR(a.mode)):
                raise LpError(errno.EPERM if write else errno.ENODATA,
                              "user.* attributes only on regular files and directories")
            if write and stat.S_ISDIR(a.mode) and a.mode & stat.S_ISVTX and not perm.is_owner(cred, a):
                raise LpError(errno.EPERM, "sticky directory: only the owner sets user.* attributes")
        perm.require(cred, a, perm.W if write else perm.R)
    for ns in (USER, TRUSTED, SECURITY):
        if name.startswith(ns):
            if len(name) == len(ns):
                raise LpError(errno.EINVAL, f"empty attribute name in {ns.decode()}")
            return
    raise LpError(errno.ENOTSUP, f"extended attribute namespace of {name!r} not supported")


def getxattr(tx: TxBase, cred: Cred, fid: Fid, name: bytes) -> bytes:
    check_xattr(name)
    iid, a = tx._node(fid)
    _may(cred, a, name, write=False)
    r = tx.conn.execute("SELECT value FROM xattrs WHERE inode = ? AND name = ?", (iid, name)).fetchone()
    if r is None:
        raise LpError(errno.ENODATA, f"no attribute {name!r}")
    return bytes(r[0])


def listxattr(tx: TxBase, cred: Cred, fid: Fid) -> list[bytes]:
    """Names of the attributes `cred` may see (no permission needed to list, as Linux)."""
    iid, _ = tx._node(fid)
    names = [bytes(r[0]) for r in tx.conn.execute("SELECT name FROM xattrs WHERE inode = ? ORDER BY name", (iid,))]
    if cred.uid != 0:
        names = [n for n in names if not n.startswith(TRUSTED)]
    return names


def setxattr(tx: TxBase, cred: Cred, fid: Fid, name: bytes, value: bytes, flags: int) -> None:
    check_bits(XATTR, flags, "setxattr flag")
    check_xattr(name, value)
    iid, a = tx._node(fid)
    _may(cred, a, name, write=True)
    exists = tx.conn.execute("SELECT 1 FROM xattrs WHERE inode = ? AND name = ?", (iid, name)).fetchone()
    if exists and flags & XATTR.CREATE:
        raise LpError(errno.EEXIST, f"attribute {name!r} exists")
    if not exists and flags & XATTR.REPLACE:
        raise LpError(errno.ENODATA, f"no attribute {name!r}")
    tx.growing()
    tx.conn.execute("INSERT OR REPLACE INTO xattrs (inode, name, value) VALUES (?, ?, ?)",
                    (iid, bytes(name), bytes(value)))
    tx._bump(iid)


def removexattr(tx: TxBase, cred: Cred, fid: Fid, name: bytes) -> None:
    check_xattr(name)
    iid, a = tx._node(fid)
    _may(cred, a, name, write=True)
    if tx.conn.execute("DELETE FROM xattrs WHERE inode = ? AND name = ?", (iid, name)).rowcount == 0:
        raise LpError(errno.ENODATA, f"no attribute {name!r}")
    tx._bump(iid)
