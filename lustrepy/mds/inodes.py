"""Row-level building blocks of one MDT transaction: find inodes and entries,
insert them, bump times and link counts, drop links, orphan or destroy inodes,
walk up the directory tree, hand out FIDs.

Knows the schema but no permission or POSIX precedence rules (namespace.py and
its helpers apply those). Never commits, rolls back or opens a connection.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import stat
import time
from typing import Any

from lustrepy.common.errors import LpError, StaleFid
from lustrepy.common.fid import FIRST_SEQ, SEQ_WIDTH, Fid, valid_fid
from lustrepy.common.layout import Layout, StripeObject
from lustrepy.common.records import DIR_BLOCKS, DIR_SIZE
from lustrepy.common.records import Attr
from lustrepy.mds.records import Forced
from lustrepy.mds.sqlerr import MdtFull
from lustrepy.mds.schema import ATTR_COLUMNS, attr_columns, layout_from_db, layout_to_db

log = logging.getLogger(__name__)

_SELECT = f"SELECT id, {ATTR_COLUMNS} FROM inodes"
_BY_FID = _SELECT + " WHERE seq = ? AND oid = ? AND ver = ?"
_CHILD = (f"SELECT d.id, i.id, {attr_columns('i')} "
          "FROM dentries d JOIN inodes i ON i.id = d.child WHERE d.parent = ? AND d.name = ?")
# A directory by FID and one of its entries by name, in one statement.
_NODE_CHILD = (f"SELECT p.id, {attr_columns('p')}, d.id, c.id, {attr_columns('c')} "
               "FROM inodes p LEFT JOIN dentries d ON d.parent = p.id AND d.name = ? "
               "LEFT JOIN inodes c ON c.id = d.child WHERE p.seq = ? AND p.oid = ? AND p.ver = ?")
_CHILD_AT = 15          # where _NODE_CHILD's entry columns start
_RETURNING = f" RETURNING id, {ATTR_COLUMNS}"
_BUMP = ("UPDATE inodes SET nlink = nlink + ?, ctime_ns = ?, generation = generation + 1 WHERE id = ?"
         + _RETURNING)
_BUMP_M = ("UPDATE inodes SET nlink = nlink + ?, mtime_ns = ?, ctime_ns = ?, generation = generation + 1 "
           "WHERE id = ?" + _RETURNING)
_ZERO = "UPDATE inodes SET nlink = 0, ctime_ns = ?, generation = generation + 1 WHERE id = ?" + _RETURNING
_INSERT = ("INSERT INTO inodes (seq, oid, ver, mode, nlink, uid, gid, size, blocks, atime_ns, mtime_ns, "
           "ctime_ns, rdev, generation, target, layout) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1,?,?)")
_ANCESTORS = ("WITH RECURSIVE up(id) AS (SELECT ? UNION SELECT d.parent FROM dentries d JOIN up "
              "ON d.child = up.id) SELECT id FROM up")
FID_RESERVE = 1024      # oids of the MDS's sequence reserved in meta at a time



def row_attr(r: tuple[Any, ...], off: int = 1) -> Attr:
    """An Attr from a row holding ATTR_COLUMNS starting at column `off`."""
    return Attr(Fid(r[off], r[off + 1], r[off + 2]), *r[off + 3:off + 14])


class ReadOnlyTx(RuntimeError):
    """A write method was called on a read-only Tx (Store.read())."""


_CHANGES_INODES = ("UPDATE inodes", "DELETE FROM inodes")
_ADDS_NAMES = ("INSERT INTO dentries", "UPDATE dentries")


class _Conn:
    """The transaction's connection: forgets the inodes a transaction has read (TxBase._seen)
    whenever a statement changes inode rows, and the names it found free (TxBase._free)
    whenever one may name something, so nothing remembered is ever stale."""

    __slots__ = ("_c", "_seen", "_free")

    def __init__(self, conn: sqlite3.Connection, seen: dict[Fid, tuple[int, Attr]],
                 free: set[tuple[int, bytes]]) -> None:
        self._c = conn
        self._seen = seen
        self._free = free

    def _forget(self, sql: str) -> None:
        if self._seen and sql.startswith(_CHANGES_INODES):
            self._seen.clear()
        if self._free and sql.startswith(_ADDS_NAMES):
            self._free.clear()

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if self._seen or self._free:
            self._forget(sql)
        return self._c.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        self._forget(sql)
        return self._c.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)


class FidRange:
    """The oids of the MDS's own sequence reserved for new inodes and not handed out yet,
    [next, end): meta.mds_next_oid is `end` once the transaction reserving them commits,
    so none is ever handed out twice; after a crash the unused rest is skipped (as Lustre's
    FID client does with the range its sequence server gave it). One per Store, used
    under its writer lock; the Store undoes a reservation its transaction rolled back."""

    __slots__ = ("seq", "next", "end", "_undo")

    def __init__(self) -> None:
        self.seq = self.next = self.end = 0
        self._undo: tuple[int, int, int] | None = None

    def reserved(self, seq: int, first: int, end: int) -> None:
        """The transaction under way moved meta's counters past [first, end) of `seq`."""
        if self._undo is None:
            self._undo = (self.seq, self.next, self.end)
        self.seq, self.next, self.end = seq, first, end

    def committed(self) -> None:
        self._undo = None

    def rolled_back(self) -> None:
        if self._undo is not None:
            self.seq, self.next, self.end = self._undo
            self._undo = None

    def give_back(self, conn: sqlite3.Connection) -> None:
        """A clean stop: meta's counter goes back to the first oid not handed out (autocommit)."""
        if self.next < self.end:
            conn.execute("UPDATE meta SET mds_next_oid = ? WHERE mds_seq = ?", (self.next, self.seq))
            self.end = self.next


class TxBase:
    """One transaction's view of the database (the caller owns begin/commit)."""

    def __init__(self, conn: sqlite3.Connection, *, writable: bool, now_ns: int = 0,
                 fids: FidRange | None = None, stable: bool | None = None, forced: Forced | None = None) -> None:
        # A request reads the same inodes several times (the parent for its permission, its
        # default layout, its times; the child for the reply): each is read once per
        # transaction while no statement changes inode rows.
        self._seen: dict[Fid, tuple[int, Attr]] = {}
        # A create looks its name up (to open what may be there) and then checks it is free:
        # where nobody else changes anything meanwhile (`stable`: a write transaction, or a read
        # holding the writer lock), a miss is remembered.
        self._free: set[tuple[int, bytes]] = set()
        # Which stripe of a striped directory each directory read is (None: none), as _seen
        self._places: dict[int, Any] = {}
        self.conn = _Conn(conn, self._seen, self._free)
        self.writable = writable
        self.stable = writable if stable is None else stable
        self.now = now_ns or time.time_ns()
        self.fids = fids            # None: a range of this transaction's own when it needs one
        self.forced = forced        # a replayed update: the results it must reproduce
        self._forced_fids = list(forced.fids) if forced is not None else []
        self.full = False           # the MDT's disk is full: no new inode, name or xattr (MdtFull)
        # directories' ancestors over all MDTs, gathered under the rename lock (mds/dnetree.py)
        self.climbed: dict[Fid, frozenset[Fid]] = {}

    def _w(self) -> None:
        if not self.writable:
            raise ReadOnlyTx("write operation on a read-only transaction")

    def knowing(self, earlier: TxBase) -> None:
        """Start from what a stable `earlier` read, the database not having changed since."""
        self._seen.update(earlier._seen)
        self._free.update(earlier._free)
        self._places.update(earlier._places)

    # ---- finding ----------------------------------------------------------------------

    def _node(self, fid: Fid) -> tuple[int, Attr]:
        """(row id, attributes) of the inode `fid` names; StaleFid (ESTALE) when it names
        none: every FID-addressed operation, and a lookup in a directory that is gone,
        answers ESTALE from here, so the client's kernel walks the path again."""
        hit = self._seen.get(fid)
        if hit is not None:
            return hit
        r = self.conn.execute(_BY_FID, (fid.seq, fid.oid, fid.ver)).fetchone()
        if r is None:
            raise StaleFid(f"inode {fid}")
        hit = self._seen[fid] = (r[0], row_attr(r))
        return hit

    def _child(self, parent_id: int, name: bytes) -> tuple[int, int, Attr] | None:
        """(dentry id, child inode id, child attr) of `name` in directory `parent_id`."""
        key = (parent_id, bytes(name))
        if key in self._free:
            return None
        r = self.conn.execute(_CHILD, key).fetchone()
        if r is None:
            if self.stable:
                self._free.add(key)
            return None
        return r[0], r[1], row_attr(r, 2)

    def _node_child(self, fid: Fid, name: bytes) -> tuple[int, Attr, tuple[int, int, Attr] | None]:
        """_node(fid) and _child of `name` in it; one statement when the directory is not known yet."""
        hit = self._seen.get(fid)
        if hit is not None:
            return hit[0], hit[1], self._child(hit[0], name)
        r = self.conn.execute(_NODE_CHILD, (name, fid.seq, fid.oid, fid.ver)).fetchone()
        if r is None:
            raise StaleFid(f"inode {fid}")
        pid, pa = self._seen[fid] = (r[0], row_attr(r))
        if r[_CHILD_AT] is None:
            if self.stable:
                self._free.add((pid, bytes(name)))
            return pid, pa, None
        return pid, pa, (r[_CHILD_AT], r[_CHILD_AT + 1], row_attr(r, _CHILD_AT + 2))

    def _has_entries(self, dir_id: int) -> bool:
        return self.conn.execute("SELECT 1 FROM dentries WHERE parent = ? LIMIT 1", (dir_id,)).fetchone() is not None

    def _is_open(self, iid: int) -> bool:
        return self.conn.execute("SELECT 1 FROM opens WHERE inode = ? LIMIT 1", (iid,)).fetchone() is not None

    def _ancestors(self, dir_id: int) -> set[int]:
        """`dir_id` and every directory above it, up to root."""
        return {r[0] for r in self.conn.execute(_ANCESTORS, (dir_id,))}

    def _layout_of(self, iid: int) -> Layout | None:
        r = self.conn.execute("SELECT layout FROM inodes WHERE id = ?", (iid,)).fetchone()
        return layout_from_db(r[0]) if r and r[0] is not None else None

    # ---- changing -----------------------------------------------------------------------

    def _bump(self, iid: int, *, nlink: int = 0, mtime: bool = False) -> Attr:
        """ctime (and mtime) = now, nlink += `nlink`, generation + 1; the new attributes."""
        raw = self.conn._c          # changes row iid only: what was read of other inodes stays true
        if mtime:
            r = raw.execute(_BUMP_M, (nlink, self.now, self.now, iid)).fetchall()
        else:
            r = raw.execute(_BUMP, (nlink, self.now, iid)).fetchall()
        a = row_attr(r[0])
        self._seen[a.fid] = (iid, a)
        return a

    def _insert_inode(self, fid: Fid, mode: int, uid: int, gid: int, *, rdev: int = 0,
                      target: bytes | None = None, layout: Layout | None = None) -> tuple[int, Attr]:
        self.growing()
        if stat.S_ISDIR(mode):
            nlink, size, blocks = 2, DIR_SIZE, DIR_BLOCKS
        else:
            nlink, size, blocks = 1, len(target) if target is not None else 0, 0
        now = self.now
        cur = self.conn.execute(_INSERT, (fid.seq, fid.oid, fid.ver, mode, nlink, uid, gid, size, blocks,
                                          now, now, now, rdev, target,
                                          layout_to_db(layout) if layout is not None else None))
        assert cur.lastrowid is not None
        made = self._seen[fid] = (cur.lastrowid, Attr(fid, mode, nlink, uid, gid, size, blocks, now, now, now, rdev, 1))
        return made

    def growing(self) -> None:
        """The transaction adds to the namespace: refused while the MDT's disk is full."""
        if self.full:
            raise MdtFull()

    def _insert_dentry(self, parent_id: int, name: bytes, child_id: int) -> int:
        self.growing()
        cur = self.conn.execute("INSERT INTO dentries (parent, name, child) VALUES (?, ?, ?)",
                                (parent_id, name, child_id))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _delete_dentry(self, dentry_id: int) -> None:
        self.conn.execute("DELETE FROM dentries WHERE id = ?", (dentry_id,))

    def _drop_link(self, iid: int, *, isdir: bool = False) -> tuple[Attr, tuple[StripeObject, ...], bool]:
        """One name of inode `iid` is gone (its dentry already deleted): nlink - 1 (0 for a
        directory), ctime = now; at nlink 0 the inode is orphaned when open, else destroyed.
        Returns (attributes after, objects queued for destruction, orphaned)."""
        if isdir:
            a = row_attr(self.conn.execute(_ZERO, (self.now, iid)).fetchall()[0])
        else:
            a = self._bump(iid, nlink=-1)
        if a.nlink > 0:
            return a, (), False
        destroyed, orphaned = self._release(iid)
        return a, destroyed, orphaned

    def _release(self, iid: int) -> tuple[tuple[StripeObject, ...], bool]:
        """An inode reached nlink 0: orphan it while open, else destroy it now."""
        if self._is_open(iid):
            self.conn.execute("INSERT OR IGNORE INTO orphans (inode, since_ns) VALUES (?, ?)", (iid, self.now))
            return (), True
        return self._destroy(iid), False

    def _destroy(self, iid: int) -> tuple[StripeObject, ...]:
        """Delete an unnamed, unopened inode; its objects go to destroy_queue."""
        lo = self._layout_of(iid)
        objs = lo.all_objects() if lo is not None else ()
        if objs:
            self.conn.executemany(
                "INSERT OR IGNORE INTO destroy_queue (ost_index, object_id, queued_ns) VALUES (?, ?, ?)",
                [(o.ost_index, o.object_id, self.now) for o in objs])
        self.conn.execute("DELETE FROM xattrs WHERE inode = ?", (iid,))
        self.conn.execute("DELETE FROM orphans WHERE inode = ?", (iid,))
        self.conn.execute("DELETE FROM dir_defaults WHERE inode = ?", (iid,))
        self.conn.execute("DELETE FROM inodes WHERE id = ?", (iid,))
        return objs

    # ---- FIDs -----------------------------------------------------------------------------

    def _new_seq(self) -> int:
        """A FID sequence never handed out (a replay: the one its first reply gave)."""
        if self.forced is not None and self.forced.seq:
            seq = self.forced.seq
            if self.conn.execute("SELECT 1 FROM seq_owners WHERE seq = ?", (seq,)).fetchone():
                raise LpError(errno.EEXIST, f"sequence {seq:#x} is handed out")
            self.conn.execute("UPDATE meta SET next_seq = max(next_seq, ?)", (seq + 1,))
            return seq
        seq = int(self.conn.execute("UPDATE meta SET next_seq = next_seq + 1 RETURNING next_seq - 1").fetchall()[0][0])
        if seq < FIRST_SEQ:     # MDT1.. before MDT0 gave it a range (fld.adopt)
            raise LpError(errno.EAGAIN, "this MDT has no FID sequences yet: it has not reached MDT0")
        return seq

    def _forced_handle(self) -> int | None:
        """The open handle a replayed open must give again (None: a new one)."""
        handle = self.forced.handle if self.forced is not None and self.forced.handle else None
        if handle is not None and self.conn.execute("SELECT 1 FROM opens WHERE handle = ?", (handle,)).fetchone():
            raise LpError(errno.EEXIST, f"open handle {handle} is in use")
        return handle

    def _alloc_fid(self) -> Fid:
        """The next FID of the MDS's own sequence, from the reserved range; a range is
        reserved when it runs out (in a fresh sequence when the current one is used up).
        A replayed update takes the FIDs its first reply named instead."""
        if self._forced_fids:
            fid = self._forced_fids.pop(0)
            self._claim_fid(fid)
            return fid
        f = self.fids
        if f is None:
            f = self.fids = FidRange()
        if f.next >= f.end:
            seq, oid = self.conn.execute("SELECT mds_seq, mds_next_oid FROM meta").fetchone()
            if seq == 0 or oid > SEQ_WIDTH:
                seq, oid = self._new_seq(), 1
            end = min(oid + FID_RESERVE, SEQ_WIDTH + 1)
            self.conn.execute("UPDATE meta SET mds_seq = ?, mds_next_oid = ?", (seq, end))
            f.reserved(seq, oid, end)
        oid = f.next
        f.next = oid + 1
        return Fid(f.seq, oid, 0)

    def _claim_fid(self, fid: Fid) -> None:
        """A caller-chosen FID (a client's sequence, or a replayed MDS one): check its
        shape and that it is free, and move the counters past it so it is never handed out."""
        if not valid_fid(fid) or fid.seq < FIRST_SEQ:
            raise LpError(errno.EINVAL, f"{fid} is not a FID this file system hands out")
        if self.conn.execute("SELECT 1 FROM inodes WHERE seq = ? AND oid = ? AND ver = ?",
                             (fid.seq, fid.oid, fid.ver)).fetchone():
            raise LpError(errno.EEXIST, f"FID {fid} is in use")
        next_seq, mds_seq, mds_next = self.conn.execute(
            "SELECT next_seq, mds_seq, mds_next_oid FROM meta").fetchone()
        if fid.seq >= next_seq:
            log.info("FID %s lies in a sequence not handed out yet; skipping past it", fid)
            self.conn.execute("UPDATE meta SET next_seq = ?", (fid.seq + 1,))
        if fid.seq == mds_seq and fid.oid >= mds_next:
            self.conn.execute("UPDATE meta SET mds_next_oid = ?", (fid.oid + 1,))
        f = self.fids
        if f is not None and fid.seq == f.seq and fid.oid >= f.next:
            f.next = fid.oid + 1        # the reserved oids up to it are skipped

    def check_client_fid(self, fid: Fid, client_id: str = "") -> None:
        """EINVAL unless `fid` lies in a sequence handed out to clients: a valid shape, a
        sequence at or above FIRST_SEQ that has been handed out (below next_seq), and not the
        sequence the MDS names its own inodes from; EPERM when `client_id` is given and the
        sequence was handed to another client. For FIDs clients name files with while they
        work alone (write-back cache), which must come from a sequence they were given."""
        if not valid_fid(fid) or fid.seq < FIRST_SEQ:
            raise LpError(errno.EINVAL, f"{fid} is not a FID this file system hands out")
        next_seq, mds_seq = self.conn.execute("SELECT next_seq, mds_seq FROM meta").fetchone()
        if fid.seq >= next_seq:
            raise LpError(errno.EINVAL, f"FID {fid} lies in a sequence never handed out")
        if fid.seq == mds_seq:
            raise LpError(errno.EINVAL, f"FID {fid} lies in the MDS's own sequence")
        if client_id:
            r = self.conn.execute("SELECT client_id FROM seq_owners WHERE seq = ?", (fid.seq,)).fetchone()
            if r is not None and r[0] != client_id:
                raise LpError(errno.EPERM, f"FID {fid} lies in a sequence handed to another client")

    # ---- update-record replay ----------------------------------------------------------------

    def replay_seq(self, client_id: str) -> int:
        """The last update record of `client_id` done (applied or consumed); 0: none."""
        r = self.conn.execute("SELECT last_seq FROM replay_seqs WHERE client_id = ?", (client_id,)).fetchone()
        return int(r[0]) if r else 0

    def advance_replay_seq(self, client_id: str, seq: int, prev: int | None = None) -> bool:
        """Mark record `seq` of `client_id` done, in this transaction. Only the record after the
        last one done (`prev`, by default seq - 1) may be marked: otherwise nothing changes and
        False is returned."""
        self._w()
        if seq < 1 or self.replay_seq(client_id) != (seq - 1 if prev is None else prev) or (prev or 0) >= seq:
            return False
        self.conn.execute("INSERT OR REPLACE INTO replay_seqs (client_id, last_seq, updated_ns) VALUES (?, ?, ?)",
                          (client_id, seq, self.now))
        return True
