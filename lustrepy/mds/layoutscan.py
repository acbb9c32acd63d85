"""The MDT's side of the layout check across servers (lfsctl lfsck): what the MDT says of objects.

scan() reads one snapshot, through its own read-only connection, of every file's objects with the
size the MDT records when that size is authoritative, the precreation pools, the names across
MDTs (crossnames.py) and the destroy queue, and hands it out a page at a time. verify() reads the
present state of the objects and files that the OSTs' listings made suspect, so a change made
between the snapshot and the listings is never taken for damage. Neither writes anything:
repairs are lfsck_repair.py's.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lustrepy.common.fid import Fid
from lustrepy.common.layout import StripeObject
from lustrepy.common.lfsckrec import CrossName, FileObjects, FileState, ObjectState, Pending, Pool
from lustrepy.common.objid import group_of
from lustrepy.mds import crossnames
from lustrepy.mds.mdtpaths import path_of
from lustrepy.mds.schema import NAMED_OBJECTS, layout_from_db

log = logging.getLogger(__name__)

T = TypeVar("T")

PAGE_FILES = 2048           # files (or queued objects) a page holds by default
PAGE_MAX = 65536

# A regular file's size is authoritative when no writer has it open and its size was not lost
# (the rule of namespace.Tx.size_state, for every file at once).
_FILES = ("SELECT i.id, i.seq, i.oid, i.ver, i.layout, i.size, "
          "NOT EXISTS (SELECT 1 FROM lost_sizes l WHERE l.inode = i.id) "
          "AND NOT EXISTS (SELECT 1 FROM opens o WHERE o.inode = i.id AND o.writer <> 0) "
          "FROM inodes i WHERE i.layout IS NOT NULL AND (i.mode & 61440) = 32768")
_NAMED = f"SELECT i.seq, i.oid, i.ver, n.stripe, n.ost, n.obj FROM ({NAMED_OBJECTS}) n JOIN inodes i ON i.id = n.inode"


@dataclass(frozen=True, slots=True)
class ScanPage:
    """One page of the snapshot: pools (first page only), files, names across MDTs (stubs, remote
    names, unfinished operations across MDTs), queued objects; `last` ends it."""

    pools: tuple[Pool, ...] = ()
    files: tuple[FileObjects, ...] = ()
    queued: tuple[StripeObject, ...] = ()
    last: bool = False
    stubs: tuple[CrossName, ...] = ()
    remote_names: tuple[CrossName, ...] = ()
    pending: tuple[Pending, ...] = ()


def open_snapshot(db_path: Path) -> sqlite3.Connection:
    """A read-only connection of its own with a read transaction begun: one snapshot."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN")
    return conn


def scan(conn: sqlite3.Connection, page_files: int = PAGE_FILES) -> Iterator[ScanPage]:
    """Pages of the snapshot `conn` holds: pools first, then files, names across MDTs, then the
    destroy queue; the last page has `last` set. The caller closes `conn` (also when it stops early)."""
    n = max(1, min(page_files or PAGE_FILES, PAGE_MAX))
    pools = tuple(Pool(*r) for r in conn.execute("SELECT ost_index, next_id, last_id FROM pools ORDER BY ost_index"))
    yield ScanPage(pools=pools)
    batch: list[FileObjects] = []
    for row in conn.execute(_FILES + " ORDER BY i.id"):
        batch.extend(_file(row))
        if len(batch) >= n:
            yield ScanPage(files=tuple(batch))
            batch = []
    if batch:
        yield ScanPage(files=tuple(batch))
    for stubs in _chunks(crossnames.stubs(conn), n):
        yield ScanPage(stubs=stubs)
    for names in _chunks(crossnames.remote_names(conn), n):
        yield ScanPage(remote_names=names)
    for ops in _chunks(crossnames.pending(conn), n):
        yield ScanPage(pending=ops)
    queued: list[StripeObject] = []
    for ost, oid in conn.execute("SELECT ost_index, object_id FROM destroy_queue ORDER BY id"):
        queued.append(StripeObject(ost, oid))
        if len(queued) >= n:
            yield ScanPage(queued=tuple(queued))
            queued = []
    yield ScanPage(queued=tuple(queued), last=True)


def _chunks(items: list[T], n: int) -> Iterator[tuple[T, ...]]:
    for i in range(0, len(items), n):
        yield tuple(items[i:i + n])


def _file(row: tuple[int, int, int, int, str, int, int]) -> list[FileObjects]:
    """The file's objects, one record per mirror (a stale mirror's size is not the file's)."""
    _, seq, oid, ver, text, size, valid = row
    try:
        lo = layout_from_db(text)
    except (ValueError, KeyError, TypeError):
        return []                       # an unusable layout: the MDT's own checks report it
    return [FileObjects(Fid(seq, oid, ver), m.layout.stripe_size, m.layout.objects, size, bool(valid) and not m.stale)
            for m in lo.components()]


def verify(conn: sqlite3.Connection, objects: Iterable[StripeObject], fids: Iterable[Fid], mdt_index: int = 0
           ) -> tuple[list[ObjectState], list[FileState]]:
    """The present state of `objects` and `fids`, read from the snapshot `conn` holds (open_snapshot)
    of MDT `mdt_index` (an object of another MDT's id range was never handed out by this one)."""
    return _object_states(conn, list(objects), mdt_index), [_file_state(conn, f) for f in fids]


def _object_states(conn: sqlite3.Connection, objects: list[StripeObject], mdt_index: int) -> list[ObjectState]:
    if not objects:
        return []
    wanted = set(objects)
    owners: dict[StripeObject, tuple[Fid, int]] = {}
    for seq, oid, ver, stripe, ost, obj in conn.execute(_NAMED):
        key = StripeObject(int(ost), int(obj))
        if key in wanted:
            owners[key] = (Fid(seq, oid, ver), int(stripe))
    nexts = dict(conn.execute("SELECT ost_index, next_id FROM pools").fetchall())
    out = []
    for o in objects:
        queued = conn.execute("SELECT 1 FROM destroy_queue WHERE ost_index = ? AND object_id = ?",
                              (o.ost_index, o.object_id)).fetchone() is not None
        owner, stripe = owners.get(o, (None, 0))
        handed_out = group_of(o.object_id) == mdt_index and o.object_id < nexts.get(o.ost_index, 1)
        out.append(ObjectState(o, owner, stripe, queued, handed_out))
    return out


def _file_state(conn: sqlite3.Connection, fid: Fid) -> FileState:
    row = conn.execute(_FILES + " AND i.seq = ? AND i.oid = ? AND i.ver = ?", (fid.seq, fid.oid, fid.ver)).fetchone()
    if row is None:
        return FileState(fid, None, "")
    files = _file(row)
    return FileState(fid, files[0] if files else None, path_of(conn, row[0]))
