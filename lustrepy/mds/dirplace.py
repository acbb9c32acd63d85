"""Which stripe of a striped directory a directory of this MDT is (table dir_stripes), so that a
name sent to the wrong stripe is refused (EREMCHG: the client asks for the stripes and sends it
again) and a stripe being removed takes no new name. Read inside the caller's transaction.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lustrepy.common.dirhash import Place, Stripes
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid

if TYPE_CHECKING:
    from lustrepy.mds.inodes import TxBase


def place(tx: TxBase, iid: int) -> Place | None:
    """Which stripe directory `iid` is (None: not part of a striped directory)."""
    r = tx.conn.execute("SELECT idx, count, hash, dying FROM dir_stripes WHERE inode = ?", (iid,)).fetchone()
    return None if r is None else Place(int(r[0]), int(r[1]), str(r[2]), bool(r[3]))


def check_place(tx: TxBase, iid: int, name: bytes) -> None:
    """A name that is not in directory `iid` may be looked up or made there: EREMCHG when it
    belongs to another stripe, ENOENT when the striped directory is going."""
    p = tx._places[iid] if iid in tx._places else tx._places.setdefault(iid, place(tx, iid))
    if p is not None:
        p.check(name)


def stripes_of(tx: TxBase, iid: int) -> Stripes | None:
    """A master's stripes (None for any other inode)."""
    r = tx.conn.execute("SELECT hash, stripes FROM dir_stripes WHERE inode = ? AND idx = 0", (iid,)).fetchone()
    if r is None:
        return None
    rows = json.loads(r[1])
    return Stripes(str(r[0]), tuple(Fid(s, o, v) for s, o, v, _ in rows), tuple(int(m) for *_, m in rows))


def master_of(tx: TxBase, fid: Fid) -> Fid | None:
    """The striped directory whose stripe directory `fid` is (None: not a stripe)."""
    try:
        iid, _ = tx._node(fid)
    except LpError:
        return None
    r = tx.conn.execute("SELECT master_seq, master_oid, master_ver FROM dir_stripes WHERE inode = ?",
                        (iid,)).fetchone()
    return None if r is None else Fid(*r)
