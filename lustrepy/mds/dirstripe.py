"""Striped directories inside one MDT's transactions (Lustre's LMV EA and slave stripes): making
and removing the master and the further stripes (dirplace.py says which stripe a directory is).

A striped directory is a master inode (stripe 0, named by its dentry, here) and one shard
directory per further stripe, each on another MDT with no dentry (table dir_stripes, described
in schema.py). mds/dnestripe.py orders the MDTs' parts of making and removing one.
"""

from __future__ import annotations

import errno
import json
import stat
from typing import TYPE_CHECKING

from lustrepy.common import perm
from lustrepy.common.dirhash import Stripes
from lustrepy.mds.dirplace import stripes_of
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.records import Attr, Cred

if TYPE_CHECKING:
    from lustrepy.mds.inodes import TxBase
    from lustrepy.mds.namespace import Tx


def stripes_of_fid(tx: Tx, fid: Fid) -> Stripes | None:
    try:
        iid, a = tx._node(fid)
    except LpError:
        return None
    return stripes_of(tx, iid) if stat.S_ISDIR(a.mode) else None


def add_master(tx: Tx, fid: Fid, here: int, stripes: Stripes) -> None:
    """Directory `fid` (made in this transaction) is stripe 0 of `stripes`."""
    iid, _ = tx._node(fid)
    rows = [[f.seq, f.oid, f.ver, m] for f, m in zip(stripes.fids, stripes.mdts, strict=True)]
    tx.conn.execute("INSERT INTO dir_stripes (inode, idx, count, hash, master_seq, master_oid, master_ver, "
                    "master_mdt, stripes) VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?)",
                    (iid, stripes.count, stripes.hash_type, fid.seq, fid.oid, fid.ver, here, json.dumps(rows)))


def make_shard(tx: Tx, master: Fid, master_mdt: int, index: int, count: int, hash_type: str, mode: int,
               uid: int, gid: int) -> Attr:
    """Stripe `index` of the striped directory `master`: a directory of this MDT without a name."""
    tx._w()
    if not 0 < index < count:
        raise LpError(errno.EINVAL, f"stripe {index} of {count}")
    iid, a = tx._insert_inode(tx._alloc_fid(), stat.S_IFDIR | (mode & 0o7777), uid, gid)
    tx.conn.execute("INSERT INTO dir_stripes (inode, idx, count, hash, master_seq, master_oid, master_ver, "
                    "master_mdt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (iid, index, count, hash_type, master.seq, master.oid, master.ver, master_mdt))
    return a


def set_dying(tx: Tx, fid: Fid, dying: bool) -> None:
    """A stripe takes no new names from now (ENOTEMPTY unless it is empty), or again."""
    tx._w()
    try:
        iid, _ = tx._node(fid)
    except LpError:
        if dying:
            raise
        return                      # gone: nothing to take back
    if dying and tx._has_entries(iid):
        raise LpError(errno.ENOTEMPTY, "directory not empty")
    tx.conn.execute("UPDATE dir_stripes SET dying = ? WHERE inode = ?", (int(dying), iid))


def remove_shard(tx: Tx, fid: Fid) -> None:
    """Remove a stripe killed before (gone already is no error)."""
    tx._w()
    try:
        iid, _ = tx._node(fid)
    except LpError:
        return
    if tx._has_entries(iid):
        raise LpError(errno.ENOTEMPTY, "directory not empty")
    tx.conn.execute("DELETE FROM dir_stripes WHERE inode = ?", (iid,))
    tx._drop_link(iid, isdir=True)


def check_remove(tx: Tx, cred: Cred, parent: Fid, name: bytes) -> tuple[Fid, Stripes] | None:
    """When `name` in `parent` is a striped directory's master: its FID and stripes, once it
    may be removed as far as this MDT says (permissions; its own stripe empty)."""
    _, pa, _, cid, ca = tx._victim(cred, parent, name)
    if not stat.S_ISDIR(ca.mode):
        return None
    s = stripes_of(tx, cid)
    if s is None:
        return None
    perm.may_delete(cred, pa, ca, isdir=True)
    if tx._has_entries(cid):
        raise LpError(errno.ENOTEMPTY, "directory not empty")
    return ca.fid, s


def remove_master(tx: Tx, cred: Cred, parent: Fid, name: bytes, fid: Fid) -> Attr:
    """The last step of removing a striped directory: its master and its name."""
    tx._w()
    iid, _ = tx._node(fid)
    tx.conn.execute("DELETE FROM dir_stripes WHERE inode = ?", (iid,))
    return tx.rmdir(cred, parent, name)


def default_of(tx: TxBase, fid: Fid) -> tuple[int, str] | None:
    """How new subdirectories of `fid` are striped (None: as plain directories)."""
    try:
        iid, _ = tx._node(fid)
    except LpError:
        return None
    r = tx.conn.execute("SELECT count, hash FROM dir_defaults WHERE inode = ?", (iid,)).fetchone()
    return None if r is None else (int(r[0]), str(r[1]))


def set_default(tx: Tx, cred: Cred | None, fid: Fid, default: tuple[int, str] | None) -> Attr:
    """Set (None: clear) a directory's default striping; its owner or root (None: the MDS's own)."""
    tx._w()
    iid, a = tx._node(fid)
    if not stat.S_ISDIR(a.mode):
        raise LpError(errno.ENOTDIR, f"{fid} is not a directory")
    if cred is not None:
        perm.require_owner(cred, a, "set a directory's default striping")
    if default is None:
        tx.conn.execute("DELETE FROM dir_defaults WHERE inode = ?", (iid,))
    else:
        tx.conn.execute("INSERT OR REPLACE INTO dir_defaults (inode, count, hash) VALUES (?, ?, ?)",
                        (iid, default[0], default[1]))
    return tx._bump(iid)
