"""Mirror state on the MDS: a writer's report that a mirror missed a write; mirrors added and split off.

A client that cannot write an in-sync mirror (its OST failed or timed out)
asks the MDS to mark that mirror stale, then finishes the write on the others.
The change bumps the layout generation and is made under the file's LAYOUT
lock (taken by the caller, reint), so every client that cached the layout
drops it and reads the new one before its next I/O. The last in-sync mirror
is never marked stale: the writer then has nowhere left and fails with EIO.

`extend` adds mirrors to a file (an unmirrored one becomes mirror 1 of a
mirrored layout), stale until the resync copies the file into them; `split`
takes a mirror out of a layout (never the last in-sync one) and queues its
objects for destruction, or keeps them as a new file beside the file
(`NAME.mirror~ID`, as `lfs mirror split` does), owned as the file is, its size
taken from the objects.

Functions over the caller's transaction; no state, no I/O but SQL.
"""

from __future__ import annotations

import errno
import stat
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import MAX_MIRRORS, Layout, Mirror, mirror_of
from lustrepy.common.protocol import SA
from lustrepy.common.records import Attr, Cred
from lustrepy.mds.records import SetAttr
from lustrepy.mds import resources
from lustrepy.mds.schema import layout_to_db

if TYPE_CHECKING:
    from lustrepy.mds.namespace import Tx


def mark_stale(tx: Tx, fid: Fid, mirror_id: int) -> Attr:
    """Mirror `mirror_id` of the file missed a write: stale until resynced. Marking a stale
    mirror again changes nothing (a resent or second report)."""
    iid, a, lo = _mirrored(tx, fid)
    m = mirror_of(lo, mirror_id)
    if m.stale and not m.syncing:
        return a
    if not m.stale and len(lo.in_sync()) <= 1:
        raise LpError(errno.EIO, f"mirror {mirror_id} is the last in-sync mirror of {fid}")
    # a resync under way is called off: its copy missed this write (the resyncer sees it and retries)
    return store(tx, iid, replace_mirror(lo, replace(m, stale=True, syncing=False)))


def replace_mirror(lo: Layout, new: Mirror) -> Layout:
    """`lo` with the mirror of new's id replaced by `new`."""
    return replace(lo, mirrors=tuple(new if m.mirror_id == new.mirror_id else m for m in lo.mirrors))


def store(tx: Tx, iid: int, lo: Layout) -> Attr:
    """Replace the file's layout by `lo` with the next generation."""
    lo = replace(lo, generation=lo.generation + 1)
    lo.check()
    tx.conn.execute("UPDATE inodes SET layout = ? WHERE id = ?", (layout_to_db(lo), iid))
    return tx._bump(iid)


def extend(tx: Tx, fid: Fid, count: int, add: Callable[[Tx, Layout, int], Layout]) -> Attr:
    """Add `count` mirrors to a file with objects; `add` places them (Mdt.add_mirrors)."""
    tx._w()
    iid, a = tx._node(fid)
    lo = tx._layout_of(iid)
    if lo is None or not lo.has_objects:
        raise LpError(errno.EINVAL, f"{fid} has no objects to mirror (write it first, or mirror create a new file)")
    if not 1 <= count <= MAX_MIRRORS - len(lo.components()):
        raise LpError(errno.EINVAL, f"{fid} has {len(lo.components())} mirrors: it can get 1 to "
                                    f"{MAX_MIRRORS - len(lo.components())} more, not {count}")
    return store(tx, iid, add(tx, lo, count))


def split(tx: Tx, fid: Fid, mirror_id: int, destroy: bool, parent: Fid | None = None) -> Attr:
    """Take the mirror out of the file's layout; destroy its objects, or keep them as a new file
    beside the file in `parent` (the directory the caller locked; EAGAIN when the file moved)."""
    iid, a, lo = _mirrored(tx, fid)
    m = mirror_of(lo, mirror_id)
    rest = tuple(x for x in lo.mirrors if x.mirror_id != mirror_id)
    if not any(not x.stale for x in rest):
        raise LpError(errno.EINVAL, f"mirror {mirror_id} is the last in-sync mirror of {fid}")
    if destroy:
        resources.queue_destroy(tx, {(o.ost_index, o.object_id) for o in m.layout.objects})
    else:
        where = name_of(tx, iid)
        if where is None or parent is None or where[0] != parent:
            raise LpError(errno.EAGAIN, f"{fid} has no name in the directory locked for it (moved or unlinked)")
        objs = m.layout.objects
        kept = tx.create(Cred(), parent, where[1] + b".mirror~%d" % mirror_id, stat.S_IFREG | (a.mode & 0o7777),
                         layout=Layout(stripe_size=m.layout.stripe_size, stripe_count=len(objs),
                                       stripe_offset=objs[0].ost_index, objects=objs))
        tx.setattr(Cred(), kept.fid, SetAttr(valid=SA.UID | SA.GID, uid=a.uid, gid=a.gid))   # the file's owner
        tx.size_from_objects(kept.fid)
    return store(tx, iid, replace(lo, mirrors=rest, mirror_count=len(rest)))


def name_of(tx: Tx, iid: int) -> tuple[Fid, bytes] | None:
    """One name of inode `iid`: its directory's FID and the name there (None: it has none)."""
    row = tx.conn.execute("SELECT i.seq, i.oid, i.ver, d.name FROM dentries d JOIN inodes i ON i.id = d.parent "
                          "WHERE d.child = ? ORDER BY d.id LIMIT 1", (iid,)).fetchone()
    return None if row is None else (Fid(row[0], row[1], row[2]), bytes(row[3]))


def _mirrored(tx: Tx, fid: Fid) -> tuple[int, Attr, Layout]:
    """The file's inode id, attributes and mirrored layout, in a writing transaction (EINVAL: not mirrored)."""
    tx._w()
    iid, a = tx._node(fid)
    lo = tx._layout_of(iid)
    if lo is None or not lo.mirrors:
        raise LpError(errno.EINVAL, f"{fid} is not a mirrored file")
    return iid, a, lo
