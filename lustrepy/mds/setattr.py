"""setattr rules: chmod, chown/chgrp, truncate (the MDS's lazy size) and utimens,
with Linux's permission checks, their order, and the setuid/setgid clearing
(the rules themselves are lustrepy.common.perm.check_setattr, which the
client's write-back cache applies too).

Called by namespace.Tx.setattr inside a transaction; never punches objects on
the OSTs (that is the caller's job) and never commits.
"""

from __future__ import annotations


from lustrepy.common.fid import Fid
from lustrepy.common.records import Attr, Cred
from lustrepy.common import perm
from lustrepy.mds.inodes import TxBase, row_attr
from lustrepy.common.protocol import SA
from lustrepy.mds.records import SetAttr
from lustrepy.mds import som
from lustrepy.mds.schema import ATTR_COLUMNS


def setattr(tx: TxBase, cred: Cred, fid: Fid, sa: SetAttr) -> Attr:
    iid, a = tx._node(fid)
    v = sa.valid
    if not v:
        return a
    by_handle = bool(v & SA.SIZE and sa.open_handle and tx.conn.execute(
        "SELECT 1 FROM opens WHERE handle = ? AND inode = ?", (sa.open_handle, iid)).fetchone())
    mode = perm.check_setattr(cred, a, perm.Change(v, sa.mode, sa.uid, sa.gid, sa.size, writer=by_handle))
    now = tx.now
    cols: dict[str, int] = {}
    if v & SA.SIZE:
        cols["size"] = sa.size
        cols["blocks"] = sa.blocks if sa.blocks else min(a.blocks, (sa.size + 511) // 512)
        if not v & (SA.MTIME | SA.MTIME_NOW):
            cols["mtime_ns"] = now
    if v & SA.UID:
        cols["uid"] = sa.uid
    if v & SA.GID:
        cols["gid"] = sa.gid
    if mode != a.mode:
        cols["mode"] = mode
    if v & SA.ATIME_NOW:
        cols["atime_ns"] = now
    elif v & SA.ATIME:
        cols["atime_ns"] = sa.atime_ns
    if v & SA.MTIME_NOW:
        cols["mtime_ns"] = now
    elif v & SA.MTIME:
        cols["mtime_ns"] = sa.mtime_ns
    if v & SA.CTIME:
        cols["ctime_ns"] = sa.ctime_ns
    else:
        cols["ctime_ns"] = now

    sets = ", ".join(f"{k} = ?" for k in cols)
    r = tx.conn.execute(f"UPDATE inodes SET {sets}, generation = generation + 1 WHERE id = ? "
                        f"RETURNING id, {ATTR_COLUMNS}", (*cols.values(), iid)).fetchall()
    if "size" in cols:
        som.size_set(tx, iid, bool(v & SA.SIZE_KNOWN), sa.open_handle if by_handle else 0)
    return row_attr(r[0])

