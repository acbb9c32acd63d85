"""Size on the MDS: when the size the MDT holds for a regular file is the file's.

A file's size lives in its objects; the MDT keeps a copy that clients may trust (and so
skip glimpsing the objects) only while it is known to match them: no handle is open for
writing, and no size went missing since the last report (the lost_sizes table). A writer's
close or fsync reports the size its client knows; a truncate sets the size before its
client cuts the objects, so until a writer reports one, the objects say; a writer opened
before such a change may report a size from before it (its close can arrive after the
change), so its report is not taken (STALE_WRITER). Functions over a transaction; they
never commit.
"""

from __future__ import annotations

from lustrepy.common.errors import StaleFid
from lustrepy.common.fid import Fid
from lustrepy.mds.inodes import TxBase
from lustrepy.mds.schema import STALE_WRITER


def state(tx: TxBase, fid: Fid) -> tuple[int, int, bool]:
    """(size, blocks, authoritative) of a regular file, read in one statement: one
    snapshot, so a writer's close that lands between two reads cannot pair the size
    from before it with the validity from after it (a stale size a client would keep
    under its lock, since closes call no lock back)."""
    r = tx.conn.execute(
        "SELECT i.size, i.blocks, (i.mode & 61440) = 32768 "
        "AND NOT EXISTS (SELECT 1 FROM lost_sizes l WHERE l.inode = i.id) "
        "AND NOT EXISTS (SELECT 1 FROM opens o WHERE o.inode = i.id AND o.writer <> 0) "
        "FROM inodes i WHERE i.seq = ? AND i.oid = ? AND i.ver = ?", (fid.seq, fid.oid, fid.ver)).fetchone()
    if r is None:
        raise StaleFid(f"inode {fid}")
    return int(r[0]), int(r[1]), bool(r[2])


def reported(tx: TxBase, iid: int, writer: int, size: tuple[int, int] | None, lost: bool) -> None:
    """A handle's close or fsync: a writer's (size, blocks) is recorded, unless the handle is a
    stale writer or its size is lost (then the objects say)."""
    if writer == STALE_WRITER or (writer and lost):
        from_objects(tx, iid)
    elif writer and size is not None:
        record(tx, iid, size)


def record(tx: TxBase, iid: int, size: tuple[int, int]) -> None:
    """(size, blocks) is the file's: the MDT's copy is authoritative again."""
    tx.conn.execute("UPDATE inodes SET size = ?, blocks = ? WHERE id = ?", (size[0], size[1], iid))
    tx.conn.execute("DELETE FROM lost_sizes WHERE inode = ?", (iid,))


def from_objects(tx: TxBase, iid: int) -> None:
    """Clients take the size from the file's objects until a writer reports one (a file
    without objects keeps the MDT's size: its objects take it when they are made)."""
    lo = tx._layout_of(iid)
    if lo is not None and lo.has_objects:
        tx.conn.execute("INSERT OR IGNORE INTO lost_sizes (inode, since_ns) VALUES (?, ?)", (iid, tx.now))


def size_set(tx: TxBase, iid: int, known: bool, by_handle: int) -> None:
    """A setattr set the size: writers opened before it (but `by_handle`, the handle that set
    it) become stale; the size is the file's when `known` (a writer's report), else the
    objects say until one comes (a truncate: its client cuts them after this)."""
    tx.conn.execute("UPDATE opens SET writer = ? WHERE inode = ? AND writer = 1 AND handle <> ?",
                    (STALE_WRITER, iid, by_handle))
    if known:
        tx.conn.execute("DELETE FROM lost_sizes WHERE inode = ?", (iid,))
    else:
        from_objects(tx, iid)
