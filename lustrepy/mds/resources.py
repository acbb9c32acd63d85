"""The MDT's bookkeeping beside the namespace: precreated object pools, the
destroy queue and the OST registry (FID sequences are in inodes.py).

Called by namespace.Tx inside a transaction; never talks to an OSS and never commits.
"""

from __future__ import annotations

import errno
import logging

from lustrepy.common.errors import LpError
from lustrepy.common.objid import group_base, group_of
from lustrepy.mds.inodes import TxBase
from lustrepy.mds.records import OstRecord
from lustrepy.mds.schema import NAMED_OBJECTS

log = logging.getLogger(__name__)


# ---- destroy queue ------------------------------------------------------------------------

def pending_destroys(tx: TxBase, limit: int) -> list[tuple[int, int]]:
    """The oldest queued (ost_index, object_id) pairs, at most `limit`."""
    return [(r[0], r[1]) for r in tx.conn.execute(
        "SELECT ost_index, object_id FROM destroy_queue ORDER BY id LIMIT ?", (max(limit, 0),))]


def destroy_done(tx: TxBase, items: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> None:
    tx.conn.executemany("DELETE FROM destroy_queue WHERE ost_index = ? AND object_id = ?",
                        [(int(i), int(o)) for i, o in items])


# ---- precreated object pools -----------------------------------------------------------------

def pool_range(tx: TxBase, ost_index: int) -> tuple[int, int] | None:
    """(next_id, last_id) of an OST's pool; None when nothing was ever precreated there."""
    r = tx.conn.execute("SELECT next_id, last_id FROM pools WHERE ost_index = ?", (ost_index,)).fetchone()
    return (r[0], r[1]) if r else None


def pool_ranges(tx: TxBase) -> dict[int, tuple[int, int]]:
    """(next_id, last_id) of every OST's pool."""
    return {r[0]: (r[1], r[2]) for r in tx.conn.execute("SELECT ost_index, next_id, last_id FROM pools")}


def sizes_of(ranges: dict[int, tuple[int, int]]) -> dict[int, int]:
    """Objects left in each pool of pool_ranges()."""
    return {i: top - nxt + 1 for i, (nxt, top) in ranges.items()}


def pool_sizes(tx: TxBase) -> dict[int, int]:
    return sizes_of(pool_ranges(tx))


def pool_take_each(tx: TxBase, ranges: dict[int, tuple[int, int]], osts: list[int]) -> list[int]:
    """One object id from each of `osts`' pools (distinct OSTs), `ranges` being pool_ranges()
    read in this transaction; one statement for all. ENOSPC if a pool is empty."""
    ids = []
    for i in osts:
        nxt, top = ranges.get(i, (1, 0))
        if nxt > top:
            raise LpError(errno.ENOSPC, f"no precreated objects on OST{i:04x}")
        ids.append(nxt)
    tx.conn.execute(f"UPDATE pools SET next_id = next_id + 1 WHERE ost_index IN ({','.join('?' * len(osts))})",
                    osts)
    return ids


def pool_add(tx: TxBase, ost_index: int, first: int, last: int) -> None:
    """Objects [first, last] now exist on the OST, unused.

    Ids at or below the pool's last_id are known already (given out or pooled) and
    are ignored, so adding a range twice is harmless. A range that leaves a gap
    after last_id replaces what is left of the pool; those unused objects go to
    the destroy queue so nothing leaks. So do the objects in the gap itself: the OST
    made them for this MDT (the ids are of its range, objid.py) in a precreation whose
    record this MDT lost in a crash, so no file names them (a file's create is logged
    after the record of the pool its objects came from)."""
    if first < 1 or last < first:
        raise LpError(errno.EINVAL, f"bad object range [{first}, {last}]")
    cur = pool_range(tx, ost_index)
    if cur is None:
        base = group_base(group_of(first))
        _lost(tx, ost_index, base + 1, first - 1)
        tx.conn.execute("INSERT INTO pools (ost_index, next_id, last_id) VALUES (?, ?, ?)", (ost_index, first, last))
        return
    nxt, top = cur
    first = max(first, top + 1)
    if first > last:
        return
    if first > top + 1 and nxt <= top:
        log.warning("OST%04x: precreated objects %d..%d leave a gap after %d; dropping %d..%d",
                    ost_index, first, last, top, nxt, top)
        tx.conn.executemany(
            "INSERT OR IGNORE INTO destroy_queue (ost_index, object_id, queued_ns) VALUES (?, ?, ?)",
            [(ost_index, i, tx.now) for i in range(nxt, top + 1)])
    if first > top + 1:
        _lost(tx, ost_index, top + 1, first - 1)
        nxt = first
    tx.conn.execute("UPDATE pools SET next_id = ?, last_id = ? WHERE ost_index = ?", (nxt, last, ost_index))


def _lost(tx: TxBase, ost_index: int, lo: int, hi: int) -> None:
    """Objects [lo, hi] the OST made for this MDT that it has no record of: destroyed."""
    if hi < lo:
        return
    log.warning("OST%04x: objects %d..%d were made for this MDT, which lost their record (a crash during "
                "precreation); destroying them", ost_index, lo, hi)
    tx.conn.executemany("INSERT OR IGNORE INTO destroy_queue (ost_index, object_id, queued_ns) VALUES (?, ?, ?)",
                        [(ost_index, i, tx.now) for i in range(lo, hi + 1)])


def pool_claim(tx: TxBase, ost_index: int, object_id: int) -> range:
    """A replayed create takes the object its first reply named; returns the ids it skipped.
    Those were given to updates replayed later (a batch of update records replays at its last
    transno, its objects taken earlier) or to updates nobody replays: only the end of recovery
    can tell, and destroys the ones no layout names (`unreferenced`)."""
    cur = pool_range(tx, ost_index)
    nxt, top = cur if cur is not None else (object_id, object_id - 1)
    if object_id < nxt:
        return range(0)             # handed out already (or skipped by an earlier replay)
    tx.conn.execute("INSERT INTO pools (ost_index, next_id, last_id) VALUES (?, ?, ?) ON CONFLICT (ost_index) "
                    "DO UPDATE SET next_id = excluded.next_id, last_id = max(last_id, excluded.last_id)",
                    (ost_index, object_id + 1, max(top, object_id)))
    return range(nxt, object_id)


def unreferenced(tx: TxBase, candidates: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The (ost, object) pairs among `candidates` that no file's layout names (one pass over
    the layouts)."""
    named = {(int(o), int(i)) for o, i in tx.conn.execute(f"SELECT ost, obj FROM ({NAMED_OBJECTS})")}
    return candidates - named


def queue_destroy(tx: TxBase, objects: set[tuple[int, int]]) -> None:
    tx.conn.executemany("INSERT OR IGNORE INTO destroy_queue (ost_index, object_id, queued_ns) VALUES (?, ?, ?)",
                        [(o, i, tx.now) for o, i in sorted(objects)])


def pool_take(tx: TxBase, ost_index: int, n: int) -> list[int]:
    """Up to `n` object ids from the OST's pool (fewer, maybe none, when it runs low)."""
    cur = pool_range(tx, ost_index)
    if cur is None or n <= 0:
        return []
    nxt, top = cur
    k = min(n, top - nxt + 1)
    if k <= 0:
        return []
    tx.conn.execute("UPDATE pools SET next_id = ? WHERE ost_index = ?", (nxt + k, ost_index))
    return list(range(nxt, nxt + k))


# ---- OST registry ----------------------------------------------------------------------------

def ost_register(tx: TxBase, index: int, uuid: str, address: str) -> None:
    """Record an OST. Its index and uuid are bound for life (EEXIST when either is
    registered with another); the address may change."""
    if index < 0 or not uuid:
        raise LpError(errno.EINVAL, f"bad OST registration (index {index}, uuid {uuid!r})")
    r = tx.conn.execute("SELECT uuid, address FROM osts WHERE ost_index = ?", (index,)).fetchone()
    if r is not None and r[0] != uuid:
        raise LpError(errno.EEXIST, f"OST index {index} is registered to {r[0]}, not {uuid}")
    other = tx.conn.execute("SELECT ost_index FROM osts WHERE uuid = ? AND ost_index != ?", (uuid, index)).fetchone()
    if other is not None:
        raise LpError(errno.EEXIST, f"{uuid} is registered as OST index {other[0]}, not {index}")
    if r is None:
        tx.conn.execute("INSERT INTO osts (ost_index, uuid, address, registered_ns) VALUES (?, ?, ?, ?)",
                        (index, uuid, address, tx.now))
        log.info("registered OST%04x %s at %s", index, uuid, address)
    elif r[1] != address:
        tx.conn.execute("UPDATE osts SET address = ? WHERE ost_index = ?", (address, index))
        log.info("OST%04x %s moved to %s", index, uuid, address)


def ost_list(tx: TxBase) -> list[OstRecord]:
    return [OstRecord(r[0], r[1], r[2])
            for r in tx.conn.execute("SELECT ost_index, uuid, address FROM osts ORDER BY ost_index")]
