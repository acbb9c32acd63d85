"""Directories moving to another parent when the file system has several MDTs: the file system's
rename lock on MDT0 (Lustre's big rename lock) and the walk up a directory's ancestors across
MDTs.

A move of a directory can close a loop (the directory ends up below itself) through names other
MDTs hold, which no one MDT's transaction sees. So every such move made by an MDS holds the rename
lock, a row on MDT0 (schema.rename_lock) owned by an operation in the moving MDT's dne_log (logged
first, so that the redo thread ends or carries it through after a crash and the lock is never left
behind). With the lock held no other such move runs, and the directories above the destination,
gathered MDT by MDT (DneUpdate CLIMB), show whether the moved one is among them: EINVAL, as Linux
says of a move into itself. A client's write-back records are replayed without the lock (a replay
may be what a lock callback of the move in progress waits for): their moves are checked against
the ancestors as they are (a move racing one made under the lock is not seen), or, when an MDT
does not answer, by their own MDT alone (mds/rename.py: EXDEV where a loop could reach through
other MDTs).

The lock is taken before any of the MDS's own inode locks, so no holder waits for a waiter.
PEEK (what a name of another MDT binds) serves a rename replacing a directory there.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from lustrepy.common.errors import LpError, from_wire
from lustrepy.common.fid import Fid
from lustrepy.mds import remote
from lustrepy.mds.remote import log_add
from lustrepy.mds.wire import attr_pb
from lustrepy.rpc.channel import call
from lustrepy.rpc.convert import attr_from_pb, fid_from_pb, fid_to_pb, rep_err, rep_ok
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.common.records import Attr
    from lustrepy.mds.inodes import TxBase
    from lustrepy.mds.namespace import Tx

log = logging.getLogger(__name__)
K = mpb.DneUpdateRequest.Kind
T = TypeVar("T")
MAX_DEPTH = 4096            # directories one walk visits at most (a deeper tree is refused: ELOOP)
_LOCK_PAUSE = 0.02          # first pause between tries while another move holds the lock


# ---- the MDT's own part, inside its transactions -----------------------------------------

def climb(tx: TxBase, here: int, fid: Fid) -> tuple[list[Fid], list[tuple[int, Fid]], Attr]:
    """Directory `fid` and the directories above it on this MDT (upwards), where the chain goes
    on (MDT, directory) — none at the root — and `fid`'s attributes. A stripe goes on at its
    striped directory; a directory named on other MDTs at each directory naming it (a directory
    in the middle of a move has two names)."""
    iid, attr = tx._node(fid)
    chain: list[Fid] = []
    up: list[tuple[int, Fid]] = []
    seen: set[int] = set()
    cur: int | None = iid
    while cur is not None and cur not in seen and len(chain) < MAX_DEPTH:
        seen.add(cur)
        row = tx.conn.execute("SELECT seq, oid, ver FROM inodes WHERE id = ?", (cur,)).fetchone()
        chain.append(Fid(*row))
        shard = tx.conn.execute("SELECT master_seq, master_oid, master_ver, master_mdt FROM dir_stripes "
                                "WHERE inode = ? AND idx > 0", (cur,)).fetchone()
        if shard is not None:
            master, m = Fid(*shard[:3]), int(shard[3])
            if m != here:
                up.append((m, master))
                break
            cur = tx._node(master)[0]
            continue
        up.extend((int(r[0]), Fid(*r[1:])) for r in tx.conn.execute(
            "SELECT mdt, parent_seq, parent_oid, parent_ver FROM remote_names WHERE inode = ?", (cur,)))
        parents = [int(r[0]) for r in tx.conn.execute("SELECT parent FROM dentries WHERE child = ?", (cur,))]
        cur = parents[0] if parents else None
        for p in parents[1:]:
            row = tx.conn.execute("SELECT seq, oid, ver FROM inodes WHERE id = ?", (p,)).fetchone()
            up.append((here, Fid(*row)))
    return chain, up, attr


def take(tx: Tx, holder: str, op_id: int) -> str | None:
    """MDT0: the rename lock for (holder, op_id); None when it is theirs now (or was already),
    else who holds it."""
    tx._w()
    row = tx.conn.execute("SELECT holder, op_id FROM rename_lock WHERE id = 0").fetchone()
    if row is None:
        tx.conn.execute("INSERT INTO rename_lock (id, holder, op_id, since_ns) VALUES (0, ?, ?, ?)",
                        (holder, op_id, tx.now))
        return None
    return None if (row[0], int(row[1])) == (holder, op_id) else f"{row[0]}:{row[1]}"


def release(tx: Tx, holder: str, op_id: int) -> None:
    """MDT0: the rename lock of (holder, op_id) goes (nothing when another holds it, or none)."""
    tx._w()
    tx.conn.execute("DELETE FROM rename_lock WHERE id = 0 AND holder = ? AND op_id = ?", (holder, op_id))


def apply_tree(mdt: Any, req: mpb.DneUpdateRequest) -> mpb.DneUpdateReply:
    """RLOCK, RUNLOCK, CLIMB and PEEK asked by another MDT (each may be asked again: same answer)."""
    if req.kind == K.PEEK:
        got = mdt.store.peek(lambda tx: remote.dir_elsewhere(tx, fid_from_pb(req.parent), req.name))
        rep = mpb.DneUpdateReply(hdr=rep_ok())
        if got is not None:
            rep.has_victim, rep.victim_mdt = True, got[1]
            rep.victim.CopyFrom(fid_to_pb(got[0]))
        return rep
    if req.kind == K.CLIMB:
        def walk(tx: Tx) -> mpb.DneUpdateReply:
            chain, up, attr = climb(tx, mdt.index, fid_from_pb(req.fid))
            rep = mpb.DneUpdateReply(hdr=rep_ok(), attr=attr_pb(tx, attr))
            rep.chain.extend(fid_to_pb(f) for f in chain)
            rep.up.extend(fid_to_pb(f) for _, f in up)
            rep.up_mdt.extend(m for m, _ in up)
            return rep
        return mdt.store.peek(walk)  # type: ignore[no-any-return]
    if mdt.index != 0:
        raise LpError(errno.EINVAL, "the rename lock is MDT0's")
    if req.kind == K.RLOCK:
        other, _ = mdt.store.write(lambda tx: take(tx, req.coordinator, req.op_id))
        mdt.committer.commit_now()
        if other is not None:
            return mpb.DneUpdateReply(hdr=rep_err(LpError(errno.EBUSY, f"the rename lock is {other}'s")),
                                      holder=other)
        return mpb.DneUpdateReply(hdr=rep_ok())
    mdt.store.write(lambda tx: release(tx, req.coordinator, req.op_id))
    mdt.committer.commit_now()
    return mpb.DneUpdateReply(hdr=rep_ok())


# ---- the moving MDT's side (mixed into mds.dne.Dne) ---------------------------------------

class TreeMoves:
    """Needs Dne's `mdt`, `_part`, `_stub`, `_mu` and `_busy`."""

    mdt: Any
    _part: Callable[..., mpb.DneUpdateReply]
    _stub: Callable[[int], Any]
    _mu: Any
    _busy: set[int]
    _wake: threading.Event

    def rename_lock(self, op_id: int, deadline: float) -> None:
        """Hold the rename lock for logged operation `op_id`, waiting while another holds it
        (EBUSY at `deadline`)."""
        mdt = self.mdt
        pause = _LOCK_PAUSE
        while True:
            if mdt.index == 0:
                other, _ = mdt.store.write(lambda tx: take(tx, mdt.uuid, op_id))
                mdt.committer.commit_now()
            else:
                try:
                    self._part(0, op_id, mpb.DneUpdateRequest(kind=K.RLOCK), deadline)
                    other = None
                except LpError as e:
                    if e.errno != errno.EBUSY:
                        raise
                    other = e.message
            if other is None:
                return
            if time.monotonic() + pause > deadline:
                raise LpError(errno.EBUSY, f"another directory move holds the rename lock ({other})")
            time.sleep(pause)
            pause = min(0.5, pause * 2)

    def rename_unlock(self, op_id: int, deadline: float) -> None:
        mdt = self.mdt
        if mdt.index == 0:
            mdt.store.write(lambda tx: release(tx, mdt.uuid, op_id))
            mdt.committer.commit_now()
        else:
            self._part(0, op_id, mpb.DneUpdateRequest(kind=K.RUNLOCK), deadline)

    def end_op(self, op_id: int, deadline: float, *, quiet: bool = False) -> None:
        """A logged operation is over (done or refused): its rename lock goes, then its log row.
        `quiet`: the operation is done, whatever happens here; when MDT0 does not answer, the row
        stays for the redo thread to end."""
        if quiet:
            try:
                self.end_op(op_id, deadline)
            except LpError as e:
                log.warning("op %d: the rename lock is let go later (%s)", op_id, e.message)
                self._wake.set()
            return
        mdt = self.mdt
        row = mdt.store.peek(lambda tx: tx.conn.execute("SELECT op FROM dne_log WHERE id = ?", (op_id,)).fetchone())
        if row is None:
            return
        if json.loads(row[0]).get("tree"):
            self.rename_unlock(op_id, deadline)
        mdt.store.write(lambda tx: tx.conn.execute("DELETE FROM dne_log WHERE id = ?", (op_id,)))
        mdt.committer.commit_now()

    def climb_at(self, m: int, fid: Fid, deadline: float) -> tuple[list[Fid], list[tuple[int, Fid]], Attr]:
        """climb() on MDT `m`."""
        mdt = self.mdt
        if m == mdt.index:
            return mdt.store.peek(lambda tx: climb(tx, m, fid))  # type: ignore[no-any-return]
        rep = self._ask(m, mpb.DneUpdateRequest(kind=K.CLIMB, fid=fid_to_pb(fid)), deadline)
        return ([fid_from_pb(f) for f in rep.chain], [(int(m), fid_from_pb(f)) for m, f in zip(rep.up_mdt, rep.up, strict=True)],
                attr_from_pb(rep.attr))

    def dir_at(self, m: int, parent: Fid, name: bytes, deadline: float) -> tuple[Fid, int] | None:
        """The directory of another MDT that `name` in `parent` (a directory of MDT `m`) binds,
        and its MDT; None when it binds none such."""
        mdt = self.mdt
        if m == mdt.index:
            return mdt.store.peek(lambda tx: remote.dir_elsewhere(tx, parent, name))  # type: ignore[no-any-return]
        rep = self._ask(m, mpb.DneUpdateRequest(kind=K.PEEK, parent=fid_to_pb(parent), name=name), deadline)
        return (fid_from_pb(rep.victim), int(rep.victim_mdt)) if rep.has_victim else None

    def _ask(self, m: int, req: mpb.DneUpdateRequest, deadline: float) -> mpb.DneUpdateReply:
        """A part that only reads, sent once to MDT `m`; its errno raised."""
        req.coordinator = self.mdt.uuid
        rep = call(self._stub(m).DneUpdate, req, timeout=max(1.0, deadline - time.monotonic()))
        err = from_wire(rep.hdr.errno)
        if err:
            raise LpError(err, rep.hdr.message or f"MDT{m:04x} refused")
        assert isinstance(rep, mpb.DneUpdateReply)
        return rep

    def ancestors(self, fid: Fid, deadline: float) -> frozenset[Fid]:
        """Directory `fid` and every directory above it, over all MDTs (under the rename lock)."""
        found: set[Fid] = set()
        todo = [(self.mdt.mdts.view().mdt_of(fid), fid)]
        while todo:
            m, f = todo.pop()
            if f in found:
                continue
            if m is None:
                raise LpError(errno.ESTALE, f"no MDT holds the sequence of {f}")
            chain, up, _ = self.climb_at(int(m), f, deadline)
            found.update(chain)
            if len(found) > MAX_DEPTH:
                raise LpError(errno.ELOOP, "the directory tree is too deep to check this move")
            todo.extend((um, uf) for um, uf in up if uf not in found)
        return frozenset(found)

    def check_no_loop(self, moved: Fid, new_parent: Fid, deadline: float) -> None:
        """EINVAL when directory `moved` is `new_parent` or above it, on any MDT."""
        if moved in self.ancestors(new_parent, deadline):
            raise LpError(errno.EINVAL, "cannot move a directory into itself")

    def _climbed(self, sp: Fid, dp: Fid, exchange: bool, deadline: float) -> dict[Fid, frozenset[Fid]]:
        climbed = {dp: self.ancestors(dp, deadline)}
        if exchange:
            climbed[sp] = self.ancestors(sp, deadline)
        return climbed

    def climbed_now(self, sp: Fid, dp: Fid, exchange: bool, deadline: float) -> dict[Fid, frozenset[Fid]]:
        """The ancestors a replayed record's move is checked against, without the rename lock;
        none (the check of this MDT alone, EXDEV where it cannot tell) when an MDT does not
        answer, so that the record waits for no other MDS."""
        try:
            return self._climbed(sp, dp, exchange, deadline)
        except LpError as e:
            log.info("ancestors of %s over the MDTs not known (%s): this MDT's check alone", dp, e.message)
            return {}

    def move_here(self, sp: Fid, dp: Fid, exchange: bool, run: Callable[[dict[Fid, frozenset[Fid]]], T],
                  deadline: float) -> T:
        """A rename on this MDT that moves a directory to another parent: `run(climbed)` (the
        update, given the ancestors over all MDTs of the new parent, and of the old one for an
        exchange) under the rename lock, which an operation logged first holds."""
        mdt = self.mdt
        # kind "hold": nothing to redo after a crash but letting the lock go
        op_id, _ = mdt.store.write(lambda tx: log_add(tx, {"kind": "hold", "tree": True, "client": "", "xid": 0}))
        mdt.committer.commit_now()
        with self._mu:
            self._busy.add(op_id)
        try:
            try:
                self.rename_lock(op_id, deadline)
                out = run(self._climbed(sp, dp, exchange, deadline))
            except BaseException:
                self.end_op(op_id, deadline, quiet=True)
                raise
            self.end_op(op_id, deadline, quiet=True)
            return out
        finally:
            with self._mu:
                self._busy.discard(op_id)
