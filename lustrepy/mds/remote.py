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
import json
import stat
from typing import TYPE_CHECKING, Any

from lustrepy.common import perm
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.records import Attr, Cred
from lustrepy.mds import dirplace

if TYPE_CHECKING:
    from lustrepy.mds.namespace import Tx


def log_add(tx: Tx, entry: dict[str, Any]) -> int:
    """A new row of dne_log for operation `entry`; its id."""
    tx._w()
    cur = tx.conn.execute("INSERT INTO dne_log (op, created_ns) VALUES (?, ?)", (json.dumps(entry), tx.now))
    assert cur.lastrowid is not None
    return int(cur.lastrowid)


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
    the name binds something else by now (a directory's FID is never bound again once gone)."""
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


def seal(tx: Tx, fid: Fid, on: bool) -> None:
    """Directory `fid` of this MDT, whose name on another MDT a rename replaces: sealed (`on`:
    ENOTEMPTY unless empty; its links drop to 0, so no name is made in it and no write-back cache
    granted) until removed, or unsealed (the rename was refused: links back to 2)."""
    iid, a = tx._node(fid)
    if not stat.S_ISDIR(a.mode):
        raise LpError(errno.ENOTDIR, f"{fid} is not a directory")
    if on:
        if tx._has_entries(iid):
            raise LpError(errno.ENOTEMPTY, "directory not empty")
        if a.nlink:
            tx._bump(iid, nlink=-a.nlink)
    elif a.nlink == 0:
        tx._bump(iid, nlink=2)


def dir_elsewhere(tx: Tx, parent: Fid, name: bytes) -> tuple[Fid, int] | None:
    """The directory of another MDT `name` in `parent` binds, and that MDT (None: none such)."""
    hit = tx._node_child(parent, name)[2]
    if hit is None or not stat.S_ISDIR(hit[2].mode):
        return None
    m = mdt_of_inode(tx, hit[1])
    return None if m is None else (hit[2].fid, m)


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
    """No write-back cache grant on this directory: a stub itself, a stripe of a striped
    directory (names go by hash to stripes on other MDTs), one whose subdirectories are striped
    by default, or names a stub (the client's records could not move or remove such names)."""
    try:
        iid, a = tx._node(fid)
    except LpError:
        return True
    if a.nlink == 0:
        return True             # removed, or sealed while a rename replaces it
    if mdt_of_inode(tx, iid) is not None or dirplace.place(tx, iid) is not None:
        return True
    if tx.conn.execute("SELECT 1 FROM dir_defaults WHERE inode = ? AND count > 1", (iid,)).fetchone():
        return True             # its new subdirectories are striped: made by the MDTs
    return tx.conn.execute("SELECT 1 FROM dentries d JOIN remote_inodes r ON r.inode = d.child WHERE d.parent = ? "
                           "LIMIT 1", (iid,)).fetchone() is not None


# ---- names of non-directories across MDTs (renames, links and unlinks between MDTs) ---------

def check_unbind(tx: Tx, cred: Cred, parent: Fid, name: bytes, *, dirs: bool = False
                 ) -> tuple[Attr, int | None, int]:
    """A name may leave `parent` (rename away, unlink): (what it binds, that inode's MDT, None
    for this one, the dentry's id). ENOENT, EACCES, EPERM (sticky) as a local unlink says; EXDEV
    for a directory unless `dirs` (its move stays inside one striped directory)."""
    _, pa, did, cid, ca = tx._victim(cred, parent, name)
    isdir = stat.S_ISDIR(ca.mode)
    if isdir and not dirs:
        raise LpError(errno.EXDEV, "moving a directory between MDTs is not supported")
    perm.may_delete(cred, pa, ca, isdir=isdir)
    return ca, mdt_of_inode(tx, cid), did


def unbind(tx: Tx, parent: Fid, name: bytes, fid: Fid, dentry: int) -> None:
    """Take the name away (its inode's link count, or its stub's, goes down; a stub no name uses
    goes); nothing when it is no longer the dentry `dentry` (ids are never reused: a name made
    again since is another dentry, which a late redo must not take). A directory's name moving
    away leaves its inode's links as they are (its name is on the other MDT now)."""
    tx._w()
    pid, _, hit = tx._node_child(parent, name)
    if hit is None or hit[2].fid != fid or hit[0] != dentry:
        return
    did, cid, ca = hit
    isdir = stat.S_ISDIR(ca.mode)
    tx._delete_dentry(did)
    tx._bump(pid, nlink=-1 if isdir else 0, mtime=True)
    if mdt_of_inode(tx, cid) is None:
        if not isdir:
            tx._drop_link(cid)
        return
    if isdir:               # a directory's stub has one name: gone unless a rename here gave it its new one
        if tx.conn.execute("SELECT 1 FROM dentries WHERE child = ? LIMIT 1", (cid,)).fetchone() is None:
            _drop_stub_row(tx, cid, fid)
        return
    if tx._bump(cid, nlink=-1).nlink <= 0:
        _drop_stub_row(tx, cid, fid)


def _drop_stub_row(tx: Tx, cid: int, fid: Fid) -> None:
    tx.conn.execute("DELETE FROM remote_inodes WHERE inode = ?", (cid,))
    tx.conn.execute("DELETE FROM inodes WHERE id = ?", (cid,))
    tx._seen.pop(fid, None)


def still_bound(tx: Tx, parent: Fid, name: bytes, fid: Fid, dentry: int) -> bool:
    """Is `name` in `parent` still the dentry `dentry` binding `fid`?"""
    hit = tx._node_child(parent, name)[2]
    return hit is not None and hit[0] == dentry and hit[2].fid == fid


def check_bind(tx: Tx, cred: Cred, parent: Fid, name: bytes, fid: Fid, mode: int, noreplace: bool,
               sealed: Fid | None = None) -> tuple[int, tuple[int, int, Attr] | None, int | None]:
    """May `name` in `parent` come to bind `fid` (of type `mode`)? Reads only: (the parent's row,
    what the name binds now, that inode's MDT, None for this one). EEXIST, EISDIR, ENOTDIR,
    ENOTEMPTY, EACCES as a local rename says; EXDEV for a directory of another MDT there unless it
    is `sealed` (empty and taking no new name on its MDT: DneUpdate SEAL)."""
    isdir = stat.S_ISDIR(mode)
    pid, pa, hit = tx._entry(cred, parent, name)
    if pa.nlink == 0:
        raise LpError(errno.ENOENT, f"directory {parent} has been removed")
    if hit is None:
        perm.may_create(cred, pa)
        return pid, None, None
    _, vid, va = hit
    if va.fid == fid:
        return pid, hit, None       # already so: as a rename of two names of one inode
    if noreplace:
        raise LpError(errno.EEXIST, f"{name!r} exists")
    if stat.S_ISDIR(va.mode) and not isdir:
        raise LpError(errno.EISDIR, f"{name!r} is a directory")
    if isdir and not stat.S_ISDIR(va.mode):
        raise LpError(errno.ENOTDIR, f"{name!r} is not a directory")
    vmdt = mdt_of_inode(tx, vid)
    if isdir and vmdt is not None and va.fid != sealed:
        raise LpError(errno.EXDEV, f"{name!r} is a directory of another MDT that changed meanwhile")
    if isdir and vmdt is None and tx._has_entries(vid):
        raise LpError(errno.ENOTEMPTY, f"directory {name!r} is not empty")
    perm.may_delete(cred, pa, va, isdir=isdir)
    return pid, hit, vmdt


def bind(tx: Tx, cred: Cred, parent: Fid, name: bytes, fid: Fid, fid_mdt: int, here: int, mode: int,
         noreplace: bool, sealed: Fid | None = None, owner: tuple[int, int] | None = None) -> tuple[Fid, int] | None:
    """The destination's part: `name` in `parent` binds `fid` (an inode of MDT `fid_mdt`), what
    is there replaced (a non-directory unlinked; for a directory, an empty directory of this MDT
    removed, or the name of the `sealed` one of another MDT), as check_bind allows. A stub made
    for `fid` carries `owner` (uid, gid: the inode's, which a sticky directory's checks here
    read), else the caller's. Returns the replaced inode and its MDT when that is another MDT
    (which must drop the name, UNNAME, or the sealed directory, RMDIR)."""
    tx._w()
    isdir = stat.S_ISDIR(mode)
    pid, hit, vmdt = check_bind(tx, cred, parent, name, fid, mode, noreplace, sealed)
    gone: tuple[Fid, int] | None = None
    if hit is not None:
        did, vid, va = hit
        if va.fid == fid:
            return None
        tx._delete_dentry(did)
        if isdir:                   # an empty directory gives its place up
            tx._bump(pid, nlink=-1)
            if vmdt is None:
                tx._drop_link(vid, isdir=True)
            else:
                gone = (va.fid, vmdt)
                _drop_stub_row(tx, vid, va.fid)
        elif vmdt is None:
            tx._drop_link(vid)
        else:
            gone = (va.fid, vmdt)
            if tx._bump(vid, nlink=-1).nlink <= 0:
                _drop_stub_row(tx, vid, va.fid)
    if fid_mdt == here:
        iid, _ = tx._node(fid)
        if not isdir:
            tx._bump(iid, nlink=1)
    else:
        row = tx.conn.execute("SELECT id FROM inodes WHERE seq = ? AND oid = ? AND ver = ?",
                              (fid.seq, fid.oid, fid.ver)).fetchone()
        if row is not None:
            iid = int(row[0])
            tx._bump(iid, nlink=0 if isdir else 1)
        else:
            uid, gid = owner if owner is not None else (cred.uid, cred.gid)
            iid, _ = tx._insert_inode(fid, stat.S_IFMT(mode) or stat.S_IFREG, uid, gid)
            tx.conn.execute("INSERT INTO remote_inodes (inode, mdt) VALUES (?, ?)", (iid, fid_mdt))
    tx._insert_dentry(pid, name, iid)
    tx._bump(pid, nlink=1 if isdir else 0, mtime=True)
    return gone


def change_names(tx: Tx, fid: Fid, old: tuple[int, Fid, bytes] | None, new: tuple[int, Fid, bytes] | None) -> Attr:
    """The inode's part: names other MDTs hold for it change (`old` goes, `new` comes, each (MDT,
    parent, name)); its link count follows, ctime is now. At no name left it is orphaned when
    open, else destroyed with its objects queued. Its attributes after."""
    tx._w()
    iid, _ = tx._node(fid)
    delta = 0
    if old is not None:
        m, p, n = old
        cur = tx.conn.execute("DELETE FROM remote_names WHERE inode = ? AND mdt = ? AND parent_seq = ? AND "
                              "parent_oid = ? AND parent_ver = ? AND name = ?", (iid, m, p.seq, p.oid, p.ver, bytes(n)))
        delta -= cur.rowcount
    if new is not None:
        m, p, n = new
        tx.conn.execute("INSERT OR IGNORE INTO remote_names (inode, mdt, parent_seq, parent_oid, parent_ver, name) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (iid, m, p.seq, p.oid, p.ver, bytes(n)))
        delta += 1
    if stat.S_ISDIR(tx._node(fid)[1].mode):
        return tx._bump(iid)        # a directory's links count its subdirectories, not its names
    if delta < 0:
        a, _, _ = tx._drop_link(iid)
        return a
    return tx._bump(iid, nlink=delta)


def add_name(tx: Tx, fid: Fid, mdt: int, parent: Fid, name: bytes) -> None:
    """This MDT's inode gets a name on MDT `mdt` (a rename away from here): the local name it
    loses is taken by `unbind`, so the count is made even here."""
    iid, a = tx._node(fid)
    tx.conn.execute("INSERT OR IGNORE INTO remote_names (inode, mdt, parent_seq, parent_oid, parent_ver, name) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (iid, mdt, parent.seq, parent.oid, parent.ver, bytes(name)))
    tx._bump(iid, nlink=0 if stat.S_ISDIR(a.mode) else 1)


# ---- owners of inodes named on other MDTs ---------------------------------------------------

def owner_changed(tx: Tx, fid: Fid) -> None:
    """The owner of this MDT's inode `fid` changed: when other MDTs hold names of it, an operation
    is logged that gives their stubs the owner (a sticky directory's checks there read it)."""
    iid, _ = tx._node(fid)
    if tx.conn.execute("SELECT 1 FROM remote_names WHERE inode = ? LIMIT 1", (iid,)).fetchone() is not None:
        log_add(tx, {"kind": "owner", "fid": [fid.seq, fid.oid, fid.ver]})


def owner_now(tx: Tx, fid: Fid) -> tuple[Attr, list[int]] | None:
    """This MDT's inode `fid` and the MDTs holding names of it; None when it is gone."""
    try:
        iid, a = tx._node(fid)
    except LpError:
        return None
    return a, sorted({int(r[0]) for r in tx.conn.execute("SELECT mdt FROM remote_names WHERE inode = ?", (iid,))})


def set_stub_owner(tx: Tx, fid: Fid, uid: int, gid: int) -> None:
    """The stub of another MDT's inode `fid` here takes its owner (nothing when there is none)."""
    tx._w()
    tx.conn.execute("UPDATE inodes SET uid = ?, gid = ? WHERE seq = ? AND oid = ? AND ver = ? AND id IN "
                    "(SELECT inode FROM remote_inodes)", (uid, gid, fid.seq, fid.oid, fid.ver))
    tx._seen.pop(fid, None)
