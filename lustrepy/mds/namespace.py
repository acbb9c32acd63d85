"""The MDS namespace: POSIX rules over the MDT database, one Tx per transaction.

Every method raises LpError with the errno a local Linux file system would
give, checked in the order Linux checks them. Callers pass the Cred of the
requester for permission checks. Times are integer nanoseconds; every change
bumps the changed inodes' generation and ctime, entry changes bump the
parent's mtime and ctime, and a directory's nlink is 2 + its subdirectories.

A Tx never commits, rolls back, sleeps, takes locks or speaks to other
servers: Store.write() wraps it in one transaction, and the caller holds the
MDS locks and talks to the OSTs. Larger rule sets live beside it (the permission
rules in lustrepy.common.perm): setattr.py, rename.py, xattr.py, resources.py (object pools,
destroy queue, OST registry); inodes.py holds the row-level steps and FIDs.
"""

from __future__ import annotations

import errno
import logging
import stat

from lustrepy.common.errors import LpError
from lustrepy.common.fid import ROOT_FID, Fid
from lustrepy.common.layout import Layout, StripeObject
from lustrepy.common.names import check_name, check_symlink_target
from lustrepy.common.records import Attr, Cred, DirEntry
from lustrepy.common import perm
from lustrepy.mds import dirplace
from lustrepy.mds import rename as _rename
from lustrepy.mds import resources as _res
from lustrepy.mds import setattr as _setattr
from lustrepy.mds import som as _som
from lustrepy.mds import xattr as _xattr
from lustrepy.mds.inodes import ReadOnlyTx, TxBase, row_attr
from lustrepy.common.protocol import SA
from lustrepy.mds.records import (
    LINK_MAX,
    OstRecord,
    Renamed,
    SetAttr,
    Unlinked,
)
from lustrepy.mds.schema import ATTR_COLUMNS, attr_columns, layout_from_db, layout_to_db

__all__ = [
    "LINK_MAX",
    "SA",
    "OstRecord",
    "ReadOnlyTx",
    "Renamed",
    "SetAttr",
    "Tx",
    "Unlinked",
]

log = logging.getLogger(__name__)

_NODE_TYPES = (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK)
_READDIR = (f"SELECT d.id, d.name, {attr_columns('i')} "
            "FROM dentries d JOIN inodes i ON i.id = d.child "
            "WHERE d.parent = ? AND d.id > ? ORDER BY d.id LIMIT ?")
_DEFAULT_LAYOUT = ("WITH RECURSIVE up(id, depth) AS (SELECT ?, 0 UNION ALL SELECT d.parent, up.depth + 1 "
                   "FROM dentries d JOIN up ON d.child = up.id WHERE up.depth < 4096) "
                   "SELECT i.default_layout FROM up JOIN inodes i ON i.id = up.id "
                   "WHERE i.default_layout IS NOT NULL ORDER BY up.depth LIMIT 1")
_MAX_COOKIE = (1 << 63) - 1


def _group(cred: Cred, pa: Attr) -> int:
    """The gid of a new inode in directory `pa`: the directory's when it is setgid, else the creator's."""
    return pa.gid if pa.mode & stat.S_ISGID else cred.gid


def _live(dir_attr: Attr) -> None:
    """Nothing can be created in a removed directory (still open somewhere)."""
    if dir_attr.nlink == 0:
        raise LpError(errno.ENOENT, f"directory {dir_attr.fid} has been removed")


class Tx(TxBase):
    """The namespace operations of one transaction (read-only when made by Store.read())."""

    # ---- reads ---------------------------------------------------------------------------

    def getattr(self, fid: Fid) -> Attr:
        return self._node(fid)[1]

    def lookup(self, cred: Cred, parent: Fid, name: bytes) -> Attr:
        """The attributes of `name` in directory `parent` (needs search permission)."""
        return self._victim(cred, parent, name)[4]

    def find(self, cred: Cred, parent: Fid, name: bytes) -> Attr | None:
        """lookup, with None for a name that names nothing (where a miss is the common case,
        as for a create, an exception costs more than the lookup)."""
        hit = self._entry(cred, parent, name)[2]
        return None if hit is None else hit[2]

    def parent_of(self, fid: Fid) -> Fid | None:
        """The directory that names directory `fid` ('..'); root for root, None once removed."""
        iid, a = self._node(fid)
        if not stat.S_ISDIR(a.mode):
            raise LpError(errno.ENOTDIR, f"{fid} is not a directory")
        r = self.conn.execute("SELECT i.seq, i.oid, i.ver FROM dentries d JOIN inodes i ON i.id = d.parent "
                              "WHERE d.child = ?", (iid,)).fetchone()
        if r is None:       # named on another MDT (remote_names), or root
            r = self.conn.execute("SELECT parent_seq, parent_oid, parent_ver FROM remote_names WHERE inode = ? "
                                  "LIMIT 1", (iid,)).fetchone()
        if r is not None:
            return Fid(*r)
        return fid if a.nlink else None

    def layout_dir(self, fid: Fid, asked: Fid) -> Fid:
        """The directory whose default layout file `fid` takes: `asked` when this MDT holds it (a
        file named on several MDTs may be asked about with another's), else one naming it here."""
        try:
            if stat.S_ISDIR(self._node(asked)[1].mode):      # not a stub of another MDT's inode
                return asked
        except LpError:
            pass
        r = self.conn.execute("SELECT i.seq, i.oid, i.ver FROM dentries d JOIN inodes i ON i.id = d.parent "
                              "WHERE d.child = ? LIMIT 1", (self._node(fid)[0],)).fetchone()
        return Fid(*r) if r is not None else ROOT_FID

    def readlink(self, fid: Fid) -> bytes:
        iid, a = self._node(fid)
        if not stat.S_ISLNK(a.mode):
            raise LpError(errno.EINVAL, f"{fid} is not a symlink")
        return bytes(self.conn.execute("SELECT target FROM inodes WHERE id = ?", (iid,)).fetchone()[0])

    def readdir(self, fid: Fid, cookie: int, max_entries: int) -> list[tuple[DirEntry, Attr]]:
        """Up to `max_entries` entries after `cookie` (0: from the start), in cookie order.

        Cookies are the dentries' ids, drawn from a counter that never goes back, so a
        listing resumed after a cookie neither skips nor repeats an entry whatever is
        added or removed meanwhile (entries added meanwhile may or may not appear)."""
        iid, a = self._node(fid)
        if not stat.S_ISDIR(a.mode):
            raise LpError(errno.ENOTDIR, f"{fid} is not a directory")
        if max_entries <= 0 or cookie >= _MAX_COOKIE:
            return []
        out = []
        for r in self.conn.execute(_READDIR, (iid, max(cookie, 0), max_entries)):
            at = row_attr(r, 2)
            out.append((DirEntry(bytes(r[1]), at.fid, stat.S_IFMT(at.mode), r[0]), at))
        return out

    def get_layout(self, fid: Fid) -> Layout | None:
        """A regular file's layout (None: none yet, or not a regular file)."""
        iid, _ = self._node(fid)
        return self._layout_of(iid)

    def default_layout(self, dir_fid: Fid) -> Layout:
        """The striping new files in `dir_fid` get: the nearest default set on the
        directory or above it, else the file system's default."""
        iid, a = self._node(dir_fid)
        if not stat.S_ISDIR(a.mode):
            raise LpError(errno.ENOTDIR, f"{dir_fid} is not a directory")
        r = self.conn.execute(_DEFAULT_LAYOUT, (iid,)).fetchone()
        if r is None:
            r = self.conn.execute("SELECT default_layout FROM meta").fetchone()
        return layout_from_db(r[0])

    def own_default_layout(self, dir_fid: Fid) -> Layout | None:
        """The default layout set on `dir_fid` itself (None: it inherits)."""
        iid, a = self._node(dir_fid)
        if not stat.S_ISDIR(a.mode):
            raise LpError(errno.ENOTDIR, f"{dir_fid} is not a directory")
        r = self.conn.execute("SELECT default_layout FROM inodes WHERE id = ?", (iid,)).fetchone()
        return layout_from_db(r[0]) if r[0] is not None else None

    def getxattr(self, cred: Cred, fid: Fid, name: bytes) -> bytes:
        return _xattr.getxattr(self, cred, fid, name)

    def listxattr(self, cred: Cred, fid: Fid) -> list[bytes]:
        return _xattr.listxattr(self, cred, fid)

    def statfs_files(self) -> int:
        """Inodes in use (files, directories, symlinks, orphans)."""
        return int(self.conn.execute("SELECT count(*) FROM inodes").fetchone()[0])

    def open_count(self, fid: Fid) -> int:
        iid, _ = self._node(fid)
        return int(self.conn.execute("SELECT count(*) FROM opens WHERE inode = ?", (iid,)).fetchone()[0])

    def open_clients(self) -> list[str]:
        """Clients holding open handles (recovery closes those of clients that never come back)."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT client_id FROM opens ORDER BY client_id")]

    def pending_destroys(self, limit: int) -> list[tuple[int, int]]:
        return _res.pending_destroys(self, limit)

    def pool_sizes(self) -> dict[int, int]:
        return _res.pool_sizes(self)

    def pool_range(self, ost_index: int) -> tuple[int, int] | None:
        return _res.pool_range(self, ost_index)

    def ost_list(self) -> list[OstRecord]:
        return _res.ost_list(self)

    # ---- creating ------------------------------------------------------------------------

    def _entry(self, cred: Cred, parent: Fid, name: bytes) -> tuple[int, Attr, tuple[int, int, Attr] | None]:
        """The directory `parent` (row id, attributes) and what `name` names in it (dentry id,
        inode id, attributes; None: nothing), once we may search it and the name is valid."""
        pid, pa, hit = self._node_child(parent, name)
        perm.may_lookup(cred, pa)
        check_name(name)
        if hit is None:             # a name of another stripe, or a stripe being removed, is not here
            dirplace.check_place(self, pid, name)
        return pid, pa, hit

    def _prepare_create(self, cred: Cred, parent: Fid, name: bytes) -> tuple[int, Attr]:
        """Checks shared by every create, in Linux's order: the parent is a live
        directory we may search, the name is free, and we may write the parent."""
        pid, pa, hit = self._entry(cred, parent, name)
        _live(pa)
        if hit is not None:
            raise LpError(errno.EEXIST, f"{name!r} exists in {parent}")
        perm.may_create(cred, pa)
        return pid, pa

    def _fid(self, fid: Fid | None) -> Fid:
        if fid is None:
            return self._alloc_fid()
        self._claim_fid(fid)
        return fid

    def create(self, cred: Cred, parent: Fid, name: bytes, mode: int, rdev: int = 0, *,
               fid: Fid | None = None, layout: Layout | None = None) -> Attr:
        """mknod: a regular file (type bits 0 mean regular), FIFO, socket or device
        (devices: root only). `layout` is stored as given; None leaves the file without one."""
        self._w()
        fmt = stat.S_IFMT(mode) or stat.S_IFREG
        if fmt not in _NODE_TYPES:
            raise LpError(errno.EINVAL, f"cannot create an inode of type {fmt:#o} here")
        pid, pa = self._prepare_create(cred, parent, name)
        if fmt in (stat.S_IFCHR, stat.S_IFBLK) and cred.uid != 0:
            raise LpError(errno.EPERM, "only root creates device nodes")
        if layout is not None:
            if fmt != stat.S_IFREG:
                raise LpError(errno.EINVAL, "only regular files have layouts")
            layout.check()
        gid = _group(cred, pa)
        bits = mode & 0o7777
        if (bits & (stat.S_ISGID | stat.S_IXGRP)) == (stat.S_ISGID | stat.S_IXGRP) \
                and cred.uid != 0 and not cred.in_group(gid):
            bits &= ~stat.S_ISGID
        iid, a = self._insert_inode(self._fid(fid), fmt | bits, cred.uid, gid,
                                    rdev=rdev if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0, layout=layout)
        self._insert_dentry(pid, name, iid)
        self._bump(pid, mtime=True)
        return a

    def mkdir(self, cred: Cred, parent: Fid, name: bytes, mode: int, *, fid: Fid | None = None) -> Attr:
        self._w()
        pid, pa = self._prepare_create(cred, parent, name)
        bits = mode & 0o1777
        if pa.mode & stat.S_ISGID:
            bits |= stat.S_ISGID
        iid, a = self._insert_inode(self._fid(fid), stat.S_IFDIR | bits, cred.uid, _group(cred, pa))
        self._insert_dentry(pid, name, iid)
        self._bump(pid, nlink=1, mtime=True)
        return a

    def symlink(self, cred: Cred, parent: Fid, name: bytes, target: bytes, *, fid: Fid | None = None) -> Attr:
        self._w()
        check_symlink_target(target)
        pid, pa = self._prepare_create(cred, parent, name)
        iid, a = self._insert_inode(self._fid(fid), stat.S_IFLNK | 0o777, cred.uid, _group(cred, pa),
                                    target=bytes(target))
        self._insert_dentry(pid, name, iid)
        self._bump(pid, mtime=True)
        return a

    def link(self, cred: Cred, fid: Fid, parent: Fid, name: bytes) -> Attr:
        """A new name for an existing non-directory."""
        self._w()
        iid, a = self._node(fid)
        pid, pa = self._prepare_create(cred, parent, name)
        if stat.S_ISDIR(a.mode):
            raise LpError(errno.EPERM, "hard links to directories are not allowed")
        if a.nlink == 0:
            raise LpError(errno.ENOENT, f"{fid} has no name left to link to")
        if a.nlink >= LINK_MAX:
            raise LpError(errno.EMLINK, f"{fid} has {a.nlink} links already")
        self._insert_dentry(pid, name, iid)
        self._bump(pid, mtime=True)
        return self._bump(iid, nlink=1)

    # ---- removing --------------------------------------------------------------------------

    def _victim(self, cred: Cred, parent: Fid, name: bytes) -> tuple[int, Attr, int, int, Attr]:
        """What `name` names in `parent` (ENOENT when nothing): _entry's parent, dentry, inode."""
        pid, pa, hit = self._entry(cred, parent, name)
        if hit is None:
            raise LpError(errno.ENOENT, f"no entry {name!r} in {parent}")
        return pid, pa, hit[0], hit[1], hit[2]

    def unlink(self, cred: Cred, parent: Fid, name: bytes) -> Unlinked:
        """Remove a name of a non-directory. On its last name the inode becomes an
        orphan when open (kept until the last close), else it is destroyed and its
        objects are queued for destruction in this same transaction."""
        self._w()
        pid, pa, did, cid, ca = self._victim(cred, parent, name)
        perm.may_delete(cred, pa, ca, isdir=False)
        self._delete_dentry(did)
        self._bump(pid, mtime=True)
        a, destroyed, orphaned = self._drop_link(cid)
        return Unlinked(a, destroyed, orphaned)

    def rmdir(self, cred: Cred, parent: Fid, name: bytes) -> Attr:
        """Remove an empty directory; the removed directory's attributes (nlink 0)."""
        self._w()
        pid, pa, did, cid, ca = self._victim(cred, parent, name)
        perm.may_delete(cred, pa, ca, isdir=True)
        if ca.fid == ROOT_FID:
            raise LpError(errno.EBUSY, "cannot remove the root directory")
        if self._has_entries(cid):
            raise LpError(errno.ENOTEMPTY, f"directory {name!r} is not empty")
        if dirplace.place(self, cid) is not None:
            raise LpError(errno.EXDEV, f"{name!r} is a striped directory: its MDTs remove it together")
        self._delete_dentry(did)
        self._bump(pid, nlink=-1, mtime=True)
        a, _, _ = self._drop_link(cid, isdir=True)
        return a

    def rename(self, cred: Cred, src_parent: Fid, src_name: bytes, dst_parent: Fid, dst_name: bytes,
               flags: int = 0) -> Renamed:
        """rename / renameat2 (flags: RENAME bits)."""
        self._w()
        return _rename.rename(self, cred, src_parent, src_name, dst_parent, dst_name, flags)

    # ---- attributes ------------------------------------------------------------------------

    def setattr(self, cred: Cred, fid: Fid, sa: SetAttr) -> Attr:
        self._w()
        return _setattr.setattr(self, cred, fid, sa)

    def set_size(self, fid: Fid, size: int, blocks: int, *, mtime_ns: int | None = None) -> Attr:
        """Record a regular file's size and blocks as learned from its objects (the lazy
        size; never authoritative). mtime_ns, when given, moves mtime forward only."""
        self._w()
        iid, a = self._node(fid)
        if not stat.S_ISREG(a.mode):
            raise LpError(errno.EINVAL, f"{fid} is not a regular file")
        if size < 0 or blocks < 0:
            raise LpError(errno.EINVAL, "negative size or blocks")
        mt = max(a.mtime_ns, mtime_ns) if mtime_ns is not None else a.mtime_ns
        r = self.conn.execute("UPDATE inodes SET size = ?, blocks = ?, mtime_ns = ?, generation = generation + 1 "
                              f"WHERE id = ? RETURNING id, {ATTR_COLUMNS}", (size, blocks, mt, iid)).fetchall()
        return row_attr(r[0])

    def setxattr(self, cred: Cred, fid: Fid, name: bytes, value: bytes, flags: int = 0) -> None:
        self._w()
        _xattr.setxattr(self, cred, fid, name, value, flags)

    def removexattr(self, cred: Cred, fid: Fid, name: bytes) -> None:
        self._w()
        _xattr.removexattr(self, cred, fid, name)

    # ---- layouts -----------------------------------------------------------------------------

    def set_layout(self, fid: Fid, layout: Layout) -> Attr:
        """Give a regular file its layout: EEXIST when it already has objects, EINVAL
        for anything but a regular file or a malformed layout."""
        self._w()
        iid, a = self._node(fid)
        if not stat.S_ISREG(a.mode):
            raise LpError(errno.EINVAL, f"{fid} is not a regular file")
        cur = self._layout_of(iid)
        if cur is not None and cur.has_objects:
            raise LpError(errno.EEXIST, f"{fid} already has a layout")
        layout.check()
        self.conn.execute("UPDATE inodes SET layout = ? WHERE id = ?", (layout_to_db(layout), iid))
        return self._bump(iid)

    def set_default_layout(self, cred: Cred, dir_fid: Fid, layout: Layout | None) -> Attr:
        """Set (None: clear, inherit again) a directory's default layout; owner or root."""
        self._w()
        iid, a = self._node(dir_fid)
        if not stat.S_ISDIR(a.mode):
            raise LpError(errno.ENOTDIR, f"{dir_fid} is not a directory")
        perm.require_owner(cred, a, "set a directory's default layout")
        if layout is not None:
            if layout.has_objects:
                raise LpError(errno.EINVAL, "a default layout names no objects")
            layout.check()
        self.conn.execute("UPDATE inodes SET default_layout = ? WHERE id = ?",
                          (layout_to_db(layout) if layout is not None else None, iid))
        return self._bump(iid)

    # ---- opens -----------------------------------------------------------------------------

    def open(self, fid: Fid, client_id: str, writer: bool = False) -> int:
        """Record an open handle; an open inode outlives its last name until closed."""
        self._w()
        iid, _ = self._node(fid)
        handle = self._forced_handle()
        cur = self.conn.execute("INSERT INTO opens (handle, inode, client_id, opened_ns, writer) "
                                "VALUES (?, ?, ?, ?, ?)", (handle, iid, client_id, self.now, int(writer)))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def size_valid(self, fid: Fid) -> bool:
        """Is the MDS's size of this regular file authoritative (no handle open for writing)?"""
        return self.size_state(fid)[2]

    def size_state(self, fid: Fid) -> tuple[int, int, bool]:
        """(size, blocks, authoritative) of a regular file (mds.som)."""
        return _som.state(self, fid)

    def close(self, handle: int, size: tuple[int, int] | None = None, *,
              size_lost: bool = False) -> tuple[StripeObject, ...]:
        """Drop an open handle (an unknown one is a no-op: it was closed already, or its
        client evicted). A writer's close may report (size, blocks) as its client knows them
        (size on MDS); size_lost says its size will never come (the MDS closes it for a client
        that is gone, or the writer could not learn it), so the size here stops being
        authoritative (lost_sizes). The last close of an orphan destroys it; its objects are returned."""
        self._w()
        r = self.conn.execute("DELETE FROM opens WHERE handle = ? RETURNING inode, writer, "
                              "EXISTS (SELECT 1 FROM orphans o WHERE o.inode = opens.inode)", (handle,)).fetchall()
        if not r:
            log.debug("close of unknown handle %d", handle)
            return ()
        iid, writer, orphan = r[0]
        _som.reported(self, iid, writer, size, size_lost)
        if not orphan or self._is_open(iid):
            return ()
        return self._destroy(iid)

    def report_size(self, handle: int, size: tuple[int, int]) -> None:
        """A writer's fsync: the (size, blocks) its client knows is recorded; the handle stays
        open (an unknown handle or a reader's is a no-op)."""
        self._w()
        r = self.conn.execute("SELECT inode, writer FROM opens WHERE handle = ?", (handle,)).fetchone()
        if r is not None:
            _som.reported(self, r[0], r[1], size, False)

    def size_from_objects(self, fid: Fid) -> None:
        """Until a writer reports its size, clients take the file's size from its objects."""
        self._w()
        _som.from_objects(self, self._node(fid)[0])

    def close_client(self, client_id: str) -> tuple[StripeObject, ...]:
        """Close every handle of a client (disconnect or eviction): the sizes its writers knew
        did not come, so those files' sizes are taken from their objects until reported."""
        self._w()
        out: list[StripeObject] = []
        for (h,) in self.conn.execute("SELECT handle FROM opens WHERE client_id = ?", (client_id,)).fetchall():
            out.extend(self.close(h, size_lost=True))
        return tuple(out)

    # ---- sequences, pools, destroys, OSTs --------------------------------------------------

    def alloc_seq(self, client_id: str = "") -> int:
        """A fresh FID sequence of SEQ_WIDTH oids, never handed out again, owned by `client_id`.
        The caller must make it durable (Store.sync) before anyone names files from it."""
        self._w()
        seq = self._new_seq()
        if client_id:
            self.conn.execute("INSERT INTO seq_owners (seq, client_id) VALUES (?, ?)", (seq, client_id))
        return seq

    def destroy_done(self, items: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> None:
        self._w()
        _res.destroy_done(self, items)

    def pool_add(self, ost_index: int, first: int, last: int) -> None:
        self._w()
        _res.pool_add(self, ost_index, first, last)

    def pool_take(self, ost_index: int, n: int) -> list[int]:
        self._w()
        return _res.pool_take(self, ost_index, n)

    def ost_register(self, index: int, uuid: str, address: str) -> None:
        self._w()
        _res.ost_register(self, index, uuid, address)
