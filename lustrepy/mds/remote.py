"""Names that cross MDTs, inside one MDT's transactions (Lustre's agent inodes and link EA).

The coordinator's side (the MDT of the parent directory): `add_stub` binds a name to a directory
whose inode lives on another MDT, through a stub inode row that holds its FID and type (table
remote_inodes); `drop_stub` removes such a name. The other side (the MDT of the inode):
`make_dir` makes a directory that has no dentry here, recording its name on the other MDT
(table remote_names), and `remove_dir` removes it. Each runs inside the caller's transaction;
mds/dne.py orders them across MDTs. Tables are described in schema.py.
"""

from __future__ import annotations

import errno
import stat
from typing import TYPE_CHECKING

from lustrepy.common import perm
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.records import Attr, Cred

if TYPE_CHECKING:
    from lustrepy.mds.namespace import Tx


def mdt_of_inode(tx: Tx, iid: int) -> int | None:
    """The MDT a stub stands for; None for an inode of this MDT."""
    r = tx.conn.execute("SELECT mdt FROM remote_inodes WHERE inode = ?", (iid,)).fetchone()
    return None if r is None else int(r[0])


def remote_mdt(tx: Tx, fid: Fid) -> int | None:
    """The MDT of `fid` when this MDT holds only a stub for it (ESTALE when it holds nothing)."""
    iid, _ = tx._node(fid)
    return mdt_of_inode(tx, iid)


def named_remote(tx: Tx, cred: Cred, parent: Fid, name: bytes) -> tuple[Attr, int] | None:
    """What `name` in `parent` binds when it is a stub: (its attributes here, its MDT)."""
    hit = tx._entry(cred, parent, name)[2]
    if hit is None:
        return None
    mdt = mdt_of_inode(tx, hit[1])
    return None if mdt is None else (hit[2], mdt)


def check_create(tx: Tx, cred: Cred, parent: Fid, name: bytes) -> Attr:
    """A remote mkdir may go ahead: the parent is a live directory we may write, the name free."""
    return tx._prepare_create(cred, parent, name)[1]


def add_stub(tx: Tx, cred: Cred, parent: Fid, name: bytes, made: Attr, mdt: int) -> Attr:
    """Bind `name` in `parent` to the directory `made` (its attributes on MDT `mdt`)."""
    tx._w()
    if not stat.S_ISDIR(made.mode):
        raise LpError(errno.EINVAL, "only directories live on another MDT than their name")
    pid, _ = tx._prepare_create(cred, parent, name)
    iid, a = tx._insert_inode(made.fid, made.mode, made.uid, made.gid)
    tx.conn.execute("INSERT INTO remote_inodes (inode, mdt) VALUES (?, ?)", (iid, mdt))
    tx._insert_dentry(pid, name, iid)
    tx._bump(pid, nlink=1, mtime=True)
    return a


def check_remove(tx: Tx, cred: Cred, parent: Fid, name: bytes) -> tuple[Fid, int]:
    """A remote rmdir may go ahead here: (the directory's FID, its MDT); ENOTDIR, EACCES, EPERM
    (sticky directory), ENOENT as a local rmdir would say."""
    _, pa, _, cid, ca = tx._victim(cred, parent, name)
    mdt = mdt_of_inode(tx, cid)
    if mdt is None:
        raise LpError(errno.EXDEV, f"{name!r} is not a remote directory")
    perm.may_delete(cred, pa, ca, isdir=True)
    return ca.fid, mdt


def drop_stub(tx: Tx, parent: Fid, name: bytes, fid: Fid) -> None:
    """Remove the name of a remote directory (its inode already gone on its MDT); nothing when
    the name binds something else by now."""
    tx._w()
    pid, _, hit = tx._node_child(parent, name)
    if hit is None or hit[2].fid != fid:
        return
    did, cid, _ = hit
    tx._delete_dentry(did)
    tx._bump(pid, nlink=-1, mtime=True)
    tx.conn.execute("DELETE FROM remote_inodes WHERE inode = ?", (cid,))
    tx.conn.execute("DELETE FROM inodes WHERE id = ?", (cid,))
    tx._seen.pop(fid, None)


# ---- the inode's MDT ---------------------------------------------------------------------

def make_dir(tx: Tx, mdt: int, parent: Fid, name: bytes, mode: int, uid: int, gid: int) -> Attr:
    """A directory of this MDT named `name` in `parent` on MDT `mdt` (no dentry here)."""
    tx._w()
    fid = tx._alloc_fid()
    iid, a = tx._insert_inode(fid, stat.S_IFDIR | (mode & 0o7777), uid, gid)
    tx.conn.execute("INSERT INTO remote_names (inode, mdt, parent_seq, parent_oid, parent_ver, name) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (iid, mdt, parent.seq, parent.oid, parent.ver, bytes(name)))
    return a


def remove_dir(tx: Tx, fid: Fid) -> Attr:
    """Remove directory `fid`, named on another MDT: ENOTEMPTY unless empty; the attributes after
    (nlink 0). A directory already gone is no error (a resent part)."""
    tx._w()
    iid, a = tx._node(fid)
    if not stat.S_ISDIR(a.mode):
        raise LpError(errno.ENOTDIR, f"{fid} is not a directory")
    if tx._has_entries(iid):
        raise LpError(errno.ENOTEMPTY, "directory not empty")
    tx.conn.execute("DELETE FROM remote_names WHERE inode = ?", (iid,))
    a, _, _ = tx._drop_link(iid, isdir=True)
    return a



def blocks_wbc(tx: Tx, fid: Fid) -> bool:
    """No write-back cache grant on this directory: a stub itself, or names a stub (the client's
    records could not move or remove such names)."""
    try:
        iid, _ = tx._node(fid)
    except LpError:
        return True
    if mdt_of_inode(tx, iid) is not None:
        return True
    return tx.conn.execute("SELECT 1 FROM dentries d JOIN remote_inodes r ON r.inode = d.child WHERE d.parent = ? "
                           "LIMIT 1", (iid,)).fetchone() is not None
