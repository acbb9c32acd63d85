"""The MDT side of the FID location database and of the MDT registry (Lustre's FLDB and the
MGS's list of MDTs).

MDT0 hands every other MDT a range of FID sequences when it first registers (`register`,
one transaction with the MDT's row), keeps every range in its `fld` table and every MDT in
`mdts`, and knows which MDTs beat lately (`Mdts`, in memory). MDT1.. keep their own ranges
(`adopt`) and a copy of the whole view from MDT0's last answer, so that any MDT can answer a
client's `Fld` request. The tables are described in schema.py.
"""

from __future__ import annotations

import errno
import threading
import time
from typing import TYPE_CHECKING, Callable

from lustrepy.common.errors import LpError
from lustrepy.common.fld import SUPER_SEQ, FldView, MdtInfo, SeqRange, first_range, index_of_uuid, mdt_uuid
from lustrepy.common.objid import valid_mdt

if TYPE_CHECKING:
    from lustrepy.mds.inodes import TxBase
    from lustrepy.mds.store import Store


def ranges(tx: TxBase) -> list[SeqRange]:
    return [SeqRange(s, e, m) for s, e, m in tx.conn.execute("SELECT start, end, mdt FROM fld ORDER BY start")]


def register(tx: TxBase, fsname: str, index: int, uuid: str, instance: str, address: str) -> list[SeqRange]:
    """MDT0: record MDT `index` (new, or known with this uuid and instance) and give it a range of
    sequences when it has none; returns every range."""
    if not valid_mdt(index) or index == 0:
        raise LpError(errno.EINVAL, f"MDT index {index} out of range 1..255")
    if uuid != mdt_uuid(fsname, index):
        raise LpError(errno.EINVAL, f"MDT {index} of {fsname} must be {mdt_uuid(fsname, index)}, not {uuid!r}")
    if not instance or len(instance) > 64:
        raise LpError(errno.EINVAL, "an MDT announces the instance of its format")
    row = tx.conn.execute("SELECT instance FROM mdts WHERE mdt_index = ?", (index,)).fetchone()
    if row is not None and row[0] != instance:
        raise LpError(errno.EEXIST, f"MDT index {index} is registered to another MDT (formatted as instance "
                                    f"{row[0]}, not {instance})")
    tx.conn.execute("INSERT INTO mdts (mdt_index, uuid, instance, address, registered_ns) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (mdt_index) DO UPDATE SET address = excluded.address",
                    (index, uuid, instance, address, tx.now))
    if tx.conn.execute("SELECT 1 FROM fld WHERE mdt = ?", (index,)).fetchone() is None:
        (top,) = tx.conn.execute("SELECT max(end) FROM fld").fetchone()
        tx.conn.execute("INSERT INTO fld (start, end, mdt) VALUES (?, ?, ?)", (top, top + SUPER_SEQ, index))
    return ranges(tx)


def registered(tx: TxBase) -> list[tuple[int, str, str, str]]:
    """MDT0: (index, uuid, instance, address) of every other MDT that ever registered."""
    return [(int(i), u, n, a) for i, u, n, a in
            tx.conn.execute("SELECT mdt_index, uuid, instance, address FROM mdts ORDER BY mdt_index")]


def adopt(tx: TxBase, index: int, got: list[SeqRange]) -> bool:
    """MDT1..: keep the ranges MDT0 gave this MDT; the first moves next_seq into it.
    True when something new was kept."""
    new = False
    for r in got:
        if r.mdt != index:
            continue
        if tx.conn.execute("SELECT 1 FROM fld WHERE start = ?", (r.start,)).fetchone() is None:
            tx.conn.execute("INSERT INTO fld (start, end, mdt) VALUES (?, ?, ?)", (r.start, r.end, r.mdt))
            new = True
    if new:
        (lo,) = tx.conn.execute("SELECT min(start) FROM fld WHERE mdt = ?", (index,)).fetchone()
        tx.conn.execute("UPDATE meta SET next_seq = max(next_seq, ?)", (lo,))
    return new


class Mdts:
    """What this MDT knows of the file system's MDTs and ranges, for Fld and announce replies.

    On MDT0 the truth (its tables, and heartbeats for liveness); on MDT1.. MDT0's last answer.
    Thread-safe; never does I/O but through the store handed in.
    """

    def __init__(self, store: Store, index: int, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.index = index
        self.timeout = timeout
        self._clock = clock
        self._mu = threading.Lock()
        self._heard: dict[int, float] = {}             # MDT0: index -> when it last beat (monotonic)
        self._copy: FldView | None = None               # MDT1..: MDT0's last view
        self.address = ""                               # this MDS's, once serving
        # more than one MDT (names may bind inodes of other MDTs): set once, never cleared
        self.several = index != 0 or bool(store.peek(registered))

    def beat(self, index: int) -> None:
        with self._mu:
            self._heard[index] = self._clock()
        self.several = True

    def keep(self, view: FldView) -> None:
        with self._mu:
            self._copy = view

    def view(self) -> FldView:
        """Every range and MDT known here (MDT0: all of them)."""
        fsname = self.store.fsname
        if self.index != 0:
            with self._mu:
                copy = self._copy
            if copy is not None:
                return copy
            own = self.store.peek(ranges)
            return FldView(own, (MdtInfo(self.index, mdt_uuid(fsname, self.index), self.address),))
        got, regs = self.store.peek(lambda tx: (ranges(tx), registered(tx)))
        now = self._clock()
        with self._mu:
            heard = dict(self._heard)
        mdts = [MdtInfo(0, mdt_uuid(fsname, 0), self.address)]
        mdts += [MdtInfo(i, u, a, now - heard.get(i, -1e18) < self.timeout) for i, u, _, a in regs]
        return FldView(got or [first_range()], tuple(mdts))


def index_of(uuid: str) -> int:
    i = index_of_uuid(uuid)
    if i is None:
        raise LpError(errno.EINVAL, f"{uuid!r} is not an MDT uuid")
    return i
