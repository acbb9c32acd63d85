"""The MDT consistency checker: one check per invariant stated in schema.py.

check_invariants() reads one consistent snapshot through its own read-only
connection and returns human-readable problems (empty when consistent); the
caller decides how to report them. It never repairs anything and never writes.
"""

from __future__ import annotations

import logging
import sqlite3
import stat
from collections import Counter
from pathlib import Path

from lustrepy.common.errors import LpError
from lustrepy.common.fid import ROOT_FID, ROOT_SEQ, SEQ_WIDTH, Fid
from lustrepy.common.layout import Layout
from lustrepy.common.names import check_name
from lustrepy.mds.schema import layout_from_db
from lustrepy.mds.store import DB_NAME, Store

log = logging.getLogger(__name__)

_TYPES = {stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK}
_XATTR_NS = (b"user.", b"trusted.", b"security.")


def check_invariants(store: Store | Path) -> list[str]:
    """Problems found in the MDT database of `store` (an open Store or an MDT directory)."""
    path = store.db_path if isinstance(store, Store) else Path(store) / DB_NAME
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")                   # one snapshot for every check
        problems = _Checker(conn).run()
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    log.debug("lfsck of %s: %d problems", path, len(problems))
    return problems


class _Checker:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.c = conn
        self.out: list[str] = []
        # id -> (fid, mode, nlink, size, generation, target, layout, default_layout)
        self.inodes = {r[0]: (Fid(r[1], r[2], r[3]), *r[4:]) for r in conn.execute(
            "SELECT id, seq, oid, ver, mode, nlink, size, generation, target, layout, default_layout FROM inodes")}
        self.dentries = conn.execute("SELECT id, parent, name, child FROM dentries").fetchall()
        # stubs of inodes on other MDTs, and names other MDTs hold for inodes here (remote.py)
        self.stubs = dict(conn.execute("SELECT inode, mdt FROM remote_inodes").fetchall())
        self.rnamed = Counter(r[0] for r in conn.execute("SELECT inode FROM remote_names"))
        # a striped directory's further stripes are named by their master, on its MDT
        self.rnamed.update(r[0] for r in conn.execute("SELECT inode FROM dir_stripes WHERE idx > 0"))
        self.layouts: dict[int, Layout] = {}

    def bad(self, msg: str) -> None:
        self.out.append(msg)

    def run(self) -> list[str]:
        for check in (self.meta, self.foreign_keys, self.root, self.modes, self.symlinks, self.layout_columns,
                      self.dentry_ends, self.names, self.file_links, self.dir_links, self.dir_names, self.tree,
                      self.stub_rows,
                      self.orphans, self.lost_sizes, self.xattrs, self.objects, self.destroy_queue, self.pools, self.cookies,
                      self.replies, self.client_seqs):
            check()
        return self.out

    def _isdir(self, iid: int) -> bool:
        return stat.S_ISDIR(self.inodes[iid][1])

    # ---- meta ----------------------------------------------------------------------------------

    def meta(self) -> None:
        rows = self.c.execute("SELECT next_seq, mds_seq, mds_next_oid, default_layout FROM meta").fetchall()
        if len(rows) != 1:
            self.bad(f"meta has {len(rows)} rows, not 1")
            return
        next_seq, mds_seq, mds_next, dl = rows[0]
        for iid, (fid, *_) in self.inodes.items():
            if fid.seq != ROOT_SEQ and fid.seq >= next_seq and iid not in self.stubs:
                self.bad(f"inode {fid} lies in a sequence not handed out yet (next_seq {next_seq:#x})")
            if fid.seq == mds_seq and fid.oid >= mds_next:
                self.bad(f"inode {fid} lies beyond the MDS's next oid {mds_next:#x}")
        if mds_seq and (mds_seq >= next_seq or not 1 <= mds_next <= SEQ_WIDTH + 1):
            self.bad(f"MDS sequence {mds_seq:#x}:{mds_next:#x} out of range (next_seq {next_seq:#x})")
        try:
            lo = layout_from_db(dl)
            lo.check()
        except (LpError, ValueError, KeyError, TypeError) as e:
            self.bad(f"file system default layout unusable: {e}")

    def foreign_keys(self) -> None:
        for table, rowid, parent, _ in self.c.execute("PRAGMA foreign_key_check"):
            self.bad(f"{table} row {rowid} refers to a missing {parent} row")

    # ---- inodes ----------------------------------------------------------------------------------

    def root(self) -> None:
        ids = [i for i, v in self.inodes.items() if v[0] == ROOT_FID]
        if not ids:
            self.bad("root directory missing")
        elif not self._isdir(ids[0]):
            self.bad("root is not a directory")
        self.root_id = ids[0] if ids else None

    def modes(self) -> None:
        for fid, mode, _, _, gen, *_ in self.inodes.values():
            if stat.S_IFMT(mode) not in _TYPES:
                self.bad(f"inode {fid} has mode {mode:#o} of no known type")
            if gen < 1:
                self.bad(f"inode {fid} has generation {gen}")

    def symlinks(self) -> None:
        for fid, mode, _, size, _, target, *_ in self.inodes.values():
            if stat.S_ISLNK(mode) != (target is not None):
                self.bad(f"inode {fid}: symlink target present iff symlink broken")
            elif target is not None and size != len(target):
                self.bad(f"symlink {fid} has size {size}, target of {len(target)} bytes")

    def layout_columns(self) -> None:
        for iid, (fid, mode, _, _, _, _, lo, dl) in self.inodes.items():
            if lo is not None:
                if not stat.S_ISREG(mode):
                    self.bad(f"inode {fid} is not a regular file but has a layout")
                try:
                    self.layouts[iid] = layout_from_db(lo)
                    self.layouts[iid].check()
                except (LpError, ValueError, KeyError, TypeError) as e:
                    self.bad(f"inode {fid} has an unusable layout: {e}")
            if dl is not None:
                if not stat.S_ISDIR(mode):
                    self.bad(f"inode {fid} is not a directory but has a default layout")
                try:
                    d = layout_from_db(dl)
                    d.check()
                    if d.has_objects:
                        self.bad(f"directory {fid} has a default layout naming objects")
                except (LpError, ValueError, KeyError, TypeError) as e:
                    self.bad(f"directory {fid} has an unusable default layout: {e}")

    # ---- dentries --------------------------------------------------------------------------------

    def dentry_ends(self) -> None:
        for did, parent, name, child in self.dentries:
            p, c = self.inodes.get(parent), self.inodes.get(child)
            if p is None or c is None:
                self.bad(f"dentry {did} {bytes(name)!r} is dangling (parent {parent}, child {child})")
                continue
            if not stat.S_ISDIR(p[1]) or p[2] < 2:
                self.bad(f"dentry {bytes(name)!r} lives in {p[0]}, which is not a linked directory")
            if c[2] < 1:
                self.bad(f"dentry {bytes(name)!r} in {p[0]} names {c[0]}, which has nlink {c[2]}")

    def names(self) -> None:
        for did, _, name, _ in self.dentries:
            try:
                check_name(bytes(name))
            except LpError as e:
                self.bad(f"dentry {did} has an invalid name {bytes(name)!r}: {e.message}")

    def file_links(self) -> None:
        names = Counter(child for _, _, _, child in self.dentries)
        for iid, (fid, mode, nlink, *_) in self.inodes.items():
            if not stat.S_ISDIR(mode) and nlink != names[iid] + self.rnamed[iid]:
                self.bad(f"inode {fid} has nlink {nlink} but {names[iid]} names here and {self.rnamed[iid]} on "
                         "other MDTs")

    def dir_links(self) -> None:
        subdirs = Counter(parent for _, parent, _, child in self.dentries
                          if child in self.inodes and self._isdir(child))
        named = {child for _, _, _, child in self.dentries} | set(self.rnamed)
        for iid, (fid, mode, nlink, *_) in self.inodes.items():
            if not stat.S_ISDIR(mode):
                continue
            if iid in named or iid == self.root_id:
                want = 2 + subdirs[iid]
                if nlink != want:
                    self.bad(f"directory {fid} has nlink {nlink}, not 2 + {subdirs[iid]} subdirectories")
            elif nlink != 0:
                self.bad(f"directory {fid} is named nowhere but has nlink {nlink}")

    def dir_names(self) -> None:
        names = Counter(child for _, _, _, child in self.dentries)
        for iid, (fid, mode, nlink, *_) in self.inodes.items():
            if not stat.S_ISDIR(mode):
                continue
            want = 0 if iid == self.root_id or nlink == 0 else 1
            if names[iid] + self.rnamed[iid] != want:
                self.bad(f"directory {fid} is named by {names[iid]} dentries and {self.rnamed[iid]} names on "
                         f"other MDTs, not {want}")

    def tree(self) -> None:
        children: dict[int, list[int]] = {}
        for _, parent, _, child in self.dentries:
            if child in self.inodes and self._isdir(child):
                children.setdefault(parent, []).append(child)
        seen: set[int] = set()
        todo = ([self.root_id] if self.root_id is not None else []) + list(self.rnamed)
        while todo:
            d = todo.pop()
            if d in seen:
                self.bad(f"directory {self.inodes[d][0]} is reached twice (a loop or a second name)")
                continue
            seen.add(d)
            todo.extend(children.get(d, ()))
        for iid, (fid, mode, nlink, *_) in self.inodes.items():
            if stat.S_ISDIR(mode) and nlink and iid not in seen:
                self.bad(f"directory {fid} is not reachable from root")

    def stub_rows(self) -> None:
        parents = {parent for _, parent, _, _ in self.dentries}
        names = Counter(child for _, _, _, child in self.dentries)
        for iid in self.stubs:
            v = self.inodes.get(iid)
            if v is None:
                continue        # foreign_keys says it
            fid, mode, nlink, _, _, _, lo, _ = v
            if stat.S_ISDIR(mode):
                if nlink != 2 or lo is not None or iid in parents or names[iid] != 1:
                    self.bad(f"stub of remote directory {fid} is not a directory named once with nothing in it")
            elif lo is not None or names[iid] < 1 or self.rnamed[iid]:
                self.bad(f"stub of remote file {fid} has a layout, no name, or names on other MDTs")

    # ---- opens and orphans -------------------------------------------------------------------------

    def orphans(self) -> None:
        orphans = {r[0] for r in self.c.execute("SELECT inode FROM orphans")}
        opened = {r[0] for r in self.c.execute("SELECT DISTINCT inode FROM opens")}
        for iid, (fid, _, nlink, *_) in self.inodes.items():
            if (nlink == 0) != (iid in orphans):
                self.bad(f"inode {fid} has nlink {nlink} but is {'' if iid in orphans else 'not '}an orphan")
        for iid in orphans:
            if iid in self.inodes and iid not in opened:
                self.bad(f"orphan {self.inodes[iid][0]} has no open handle (should have been destroyed)")

    def lost_sizes(self) -> None:
        for (iid,) in self.c.execute("SELECT inode FROM lost_sizes"):
            if iid not in self.inodes:
                continue                                # reported by foreign_keys
            fid, mode, *_ = self.inodes[iid]
            lo = self.layouts.get(iid)                  # parsed by layout_columns
            if not stat.S_ISREG(mode) or lo is None or not lo.has_objects:
                self.bad(f"inode {fid} has a lost size but is not a regular file with objects")

    def xattrs(self) -> None:
        for iid, name, value in self.c.execute("SELECT inode, name, value FROM xattrs"):
            name = bytes(name)
            if iid not in self.inodes:
                continue                                # reported by foreign_keys
            fid, mode = self.inodes[iid][:2]
            if not name.startswith(_XATTR_NS) or len(name) > 255:
                self.bad(f"inode {fid} has an xattr {name!r} outside the stored namespaces")
            if len(value) > 65536:
                self.bad(f"inode {fid} xattr {name!r} holds {len(value)} bytes")
            if name.startswith(b"user.") and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                self.bad(f"inode {fid} is not a file or directory but has {name!r}")

    # ---- objects --------------------------------------------------------------------------------------

    def objects(self) -> None:
        osts = {r[0] for r in self.c.execute("SELECT ost_index FROM osts")}
        owner: dict[tuple[int, int], Fid] = {}
        for iid, lo in self.layouts.items():
            fid = self.inodes[iid][0]
            for o in lo.all_objects():
                key = (o.ost_index, o.object_id)
                if key in owner:
                    self.bad(f"object {key} belongs to both {owner[key]} and {fid}")
                owner[key] = fid
                if o.ost_index not in osts:
                    self.bad(f"inode {fid} has an object on unregistered OST index {o.ost_index}")
        self.owner = owner
        self.osts = osts

    def destroy_queue(self) -> None:
        for ost, oid in self.c.execute("SELECT ost_index, object_id FROM destroy_queue"):
            if (ost, oid) in self.owner:
                self.bad(f"object {(ost, oid)} is queued for destruction but used by {self.owner[(ost, oid)]}")
            if ost not in self.osts:
                self.bad(f"object {(ost, oid)} is queued for destruction on unregistered OST index {ost}")

    def pools(self) -> None:
        pools = {r[0]: (r[1], r[2]) for r in self.c.execute("SELECT ost_index, next_id, last_id FROM pools")}
        for ost, (nxt, last) in pools.items():
            if nxt > last + 1:
                self.bad(f"pool of OST index {ost} is inverted ({nxt} > {last} + 1)")
            if ost not in self.osts:
                self.bad(f"pool of unregistered OST index {ost}")
        for (ost, oid), fid in self.owner.items():
            if ost in pools and oid >= pools[ost][0]:
                self.bad(f"inode {fid} uses object {(ost, oid)}, not yet taken from the pool")

    def cookies(self) -> None:
        r = self.c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'dentries'").fetchone()
        top = max((d[0] for d in self.dentries), default=0)
        if top and (r is None or r[0] < top):
            self.bad(f"dentry cookie counter {r[0] if r else None} is behind the largest cookie {top}")

    def replies(self) -> None:
        r = self.c.execute("SELECT count(*) FROM (SELECT transno FROM replies GROUP BY transno "
                           "HAVING count(*) > 1)").fetchone()
        if r[0]:
            self.bad(f"{r[0]} transnos are carried by more than one saved reply")

    def client_seqs(self) -> None:
        """Sequences owned by clients were handed out, and not to the MDS itself."""
        if self.c.execute("SELECT 1 FROM sqlite_master WHERE name = 'seq_owners'").fetchone() is None:
            return                      # an MDT from before the table: start_up adds it
        next_seq, mds_seq = self.c.execute("SELECT next_seq, mds_seq FROM meta").fetchone()
        for seq, client in self.c.execute("SELECT seq, client_id FROM seq_owners"):
            if seq >= next_seq or seq == mds_seq or seq == ROOT_SEQ:
                self.bad(f"sequence {seq:#x} owned by {client} was never handed out to a client")

