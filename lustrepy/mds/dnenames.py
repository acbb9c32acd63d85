"""Renames and unlinks of non-directories across MDTs, as logged operations (mds/dne.py).

A rename from directory sp (this MDT, the coordinator) to dp (MDT b) of a file whose inode is
on MDT c: under this MDT's EX locks on sp and on the name's inode (or stub), the operation is
logged; then b binds the new name (BIND: a stub when c is not b; EACCES, EEXIST, EISDIR refuse
it there, with nothing changed anywhere); then c records where the file's names are (NAMES:
the name on this MDT goes, the one on b comes; ctime); last this MDT removes the old name, in
the transaction that removes the log row. A link here to a file of MDT c: c counts the new name
(NAMES), then this MDT binds it. An unlink here of a name whose inode is on MDT c:
c drops that name (NAMES; at the last name the file is orphaned or destroyed there), then this
MDT removes the name. Every part is applied once however often it is sent, so the redo thread
can carry a logged operation through after a crash of any MDS. A directory moves the same way;
when it changes parents the operation holds the file system's rename lock from before its
inode locks until its last part, and the MDT binding the new name first checks, under its lock
on the new parent, that the directory is not above it on any MDT (mds/dnetree.py). A directory
replacing an empty directory of another MDT first seals that one on its MDT (SEAL: no new name in
it; ENOTEMPTY refuses), which is removed (RMDIR) once the new name is bound, or unsealed if the
rename is refused. When the new name is this MDT's, its checks run before any part goes out, so
a refusal never follows a part another MDT applied. Exchanges across MDTs say EXDEV (`mv` copies).
"""

from __future__ import annotations

import errno
import json
import logging
import stat
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from lustrepy.common import perm
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.protocol import RENAME
from lustrepy.common.records import Attr, Cred
from lustrepy.ldlm.inodebits import IBit
from lustrepy.mds import dirplace, remote
from lustrepy.mds.remote import log_add
from lustrepy.mds.locking import ALL_BUT_OPEN
from lustrepy.mds.wire import attr_pb
from lustrepy.rpc.convert import fid_from_pb, fid_to_pb, rep_ok
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.namespace import Tx

log = logging.getLogger(__name__)
K = mpb.DneUpdateRequest.Kind
PART_WAIT = 8.0             # seconds a BIND may spend gathering a new parent's ancestors
Encode = Callable[[Any, int], bytes] | None
_REFUSALS = (errno.EACCES, errno.EPERM, errno.EEXIST, errno.EISDIR, errno.ENOTDIR, errno.ENOENT, errno.EXDEV,
             errno.ESTALE, errno.EINVAL, errno.ENOTEMPTY, errno.ELOOP)


def _fj(f: Fid) -> list[int]:
    return [f.seq, f.oid, f.ver]


def _owner(entry: dict[str, Any], named: mpb.DneUpdateReply | None) -> tuple[int, int] | None:
    """The moved inode's owner, for a stub the new name makes: as its MDT just answered (NAMES),
    else as this MDT knew it when the rename was logged (None in a row logged without it)."""
    if named is not None and named.attr.fid.seq:
        return int(named.attr.uid), int(named.attr.gid)
    got = entry.get("owner")
    return (int(got[0]), int(got[1])) if got else None


class NameMoves:
    """Mixed into Dne: needs its `mdt`, `_carry`, `_part`, `_forget` and `mdt_of`."""

    mdt: Any
    _carry: Callable[..., tuple[Any, int]]
    _part: Callable[..., mpb.DneUpdateReply]
    _forget: Callable[[int, int], None]
    _mu: Any
    _busy: set[int]
    _wake: threading.Event
    end_op: Callable[..., None]
    rename_lock: Callable[[int, float], None]
    check_no_loop: Callable[[Fid, Fid, float], None]
    climb_at: Callable[..., tuple[Any, Any, Attr]]
    dir_at: Callable[[int, Fid, bytes, float], tuple[Fid, int] | None]

    def mdt_of(self, fid: Fid) -> int:
        m = self.mdt.mdts.view().mdt_of(fid)
        if m is None:
            raise LpError(errno.ESTALE, f"no MDT holds the sequence of {fid}")
        return int(m)

    def rename(self, cred: Cred, client_id: str, xid: int, sp: Fid, sn: bytes, dp: Fid, dn: bytes, flags: int,
               finish: Any, encode: Encode) -> tuple[Any, int]:
        """A rename whose names or inodes are on different MDTs. A directory moving between
        stripes of one striped directory keeps its place in the tree (no loop can form); one
        moving to another parent holds the rename lock (`_move_dir`)."""
        if flags & RENAME.EXCHANGE:
            raise LpError(errno.EXDEV, "exchanging names between MDTs is not supported")
        mdt = self.mdt
        b = self.mdt_of(dp)
        master = mdt.store.peek(lambda tx: dirplace.master_of(tx, sp))
        if master is not None and (b != mdt.index or mdt.store.peek(lambda tx: dirplace.master_of(tx, dp)) != master):
            master = None   # not two stripes of one directory here: a directory moves as to any parent

        def check(tx: Tx) -> tuple[Attr, int | None, int]:
            return remote.check_unbind(tx, cred, sp, sn, dirs=True)

        def logged(a: Attr, c: int | None, did: int) -> dict[str, Any]:
            return {"kind": "rename", "parent": _fj(sp), "name": sn.hex(), "dparent": _fj(dp), "dname": dn.hex(),
                    "fid": _fj(a.fid), "did": did, "fid_mdt": mdt.index if c is None else c, "mode": a.mode, "mdt": b,
                    "owner": [a.uid, a.gid],
                    "flags": flags, "client": client_id, "xid": xid, "master": _fj(master) if master else None,
                    "cred": [cred.uid, cred.gid, list(cred.groups)]}
        a, c, did = mdt.store.peek(check)
        locks = [(sp, IBit.UPDATE), (a.fid, IBit.LOOKUP | IBit.UPDATE)] + ([(dp, IBit.UPDATE)] if b == mdt.index else [])
        if stat.S_ISDIR(a.mode) and master is None and sp != dp:
            return self._move_dir(cred, logged(a, c, did), check, logged, locks, finish, encode)
        with mdt.locks.update(locks, on_behalf=client_id):
            return self._carry(logged(*mdt.store.peek(check)), finish, encode)

    def _move_dir(self, cred: Cred, entry: dict[str, Any], check: Callable[[Tx], tuple[Attr, int | None, int]],
                  logged: Callable[..., dict[str, Any]], locks: list[Any], finish: Any,
                  encode: Encode) -> tuple[Any, int]:
        """A directory to another parent, across MDTs: logged, then the rename lock, then the
        inode locks; checked again under them (a directory changing parents needs write
        permission on itself, as Linux says) before the parts go out."""
        mdt = self.mdt
        deadline = time.monotonic() + mdt.cfg.dne_wait
        entry = {**entry, "tree": True}
        op_id, _ = mdt.store.write(lambda tx: log_add(tx, entry))
        mdt.committer.commit_now()
        with self._mu:
            self._busy.add(op_id)
        started = False
        try:
            try:
                self.rename_lock(op_id, deadline)
                with mdt.locks.update(locks, on_behalf=entry["client"]):
                    now = {**logged(*mdt.store.peek(check)), "tree": True}
                    fid, c = Fid(*now["fid"]), int(now["fid_mdt"])
                    real = self.climb_at(c, fid, deadline)[2]
                    perm.require(cred, real, perm.W)
                    now["owner"] = [real.uid, real.gid]     # its MDT's word, not a stub's here
                    if now != entry:
                        mdt.store.write(lambda tx: tx.conn.execute("UPDATE dne_log SET op = ? WHERE id = ?",
                                                                   (json.dumps(now), op_id)))
                    started = True
                    return self._renamed(op_id, now, finish, encode, deadline)
            except LpError:
                if not started:
                    self.end_op(op_id, deadline)    # nothing was sent: the operation ends here
                raise
        finally:
            with self._mu:
                self._busy.discard(op_id)

    def link(self, cred: Cred, client_id: str, xid: int, fid: Fid, parent: Fid, name: bytes, finish: Any,
             encode: Encode) -> tuple[Any, int]:
        """A new name here for a file of another MDT."""
        mdt = self.mdt
        c = self.mdt_of(fid)
        with mdt.locks.update([(parent, IBit.UPDATE)], on_behalf=client_id):
            mdt.store.peek(lambda tx: remote.check_create(tx, cred, parent, name))
            entry = {"kind": "link", "parent": _fj(parent), "name": name.hex(), "fid": _fj(fid), "mdt": c,
                     "client": client_id, "xid": xid, "cred": [cred.uid, cred.gid, list(cred.groups)]}
            return self._carry(entry, finish, encode)

    def unlink(self, cred: Cred, client_id: str, xid: int, parent: Fid, name: bytes, finish: Any,
               encode: Encode) -> tuple[Any, int]:
        mdt = self.mdt
        with mdt.locks.update([(parent, IBit.UPDATE)], on_behalf=client_id):
            a, c, did = mdt.store.peek(lambda tx: remote.check_unbind(tx, cred, parent, name))
            if c is None:
                raise LpError(errno.EAGAIN, "the name binds a file of this MDT by now")
            entry = {"kind": "unlink", "parent": _fj(parent), "name": name.hex(), "fid": _fj(a.fid), "did": did,
                     "mdt": c,
                     "client": client_id, "xid": xid, "cred": [cred.uid, cred.gid, list(cred.groups)]}
            return self._carry(entry, finish, encode)

    # ---- after the log ------------------------------------------------------------------

    def names_through(self, op_id: int, entry: dict[str, Any], finish: Any, encode: Encode,
                      deadline: float) -> tuple[Any, int]:
        mdt = self.mdt
        here = mdt.index
        parent, name, fid = Fid(*entry["parent"]), bytes.fromhex(entry["name"]), Fid(*entry["fid"])
        if entry["kind"] == "unlink":
            c = int(entry["mdt"])
            rep = self._refusable(op_id, c, mpb.DneUpdateRequest(
                kind=K.NAMES, fid=fid_to_pb(fid), has_src=True, src_mdt=here, src_parent=fid_to_pb(parent),
                src_name=name, time_ns=time.time_ns()), deadline)
            victim = rep.attr

            def unlinked(tx: Tx) -> Any:
                tx.conn.execute("DELETE FROM dne_log WHERE id = ?", (op_id,))
                remote.unbind(tx, parent, name, fid, entry["did"])
                return finish(tx, victim if victim.fid.seq else None) if finish is not None else None
            out = self._last(op_id, entry, unlinked, encode)
            self._forget(c, op_id)
            return out
        if entry["kind"] == "link":
            c = int(entry["mdt"])
            rep = self._refusable(op_id, c, mpb.DneUpdateRequest(
                kind=K.NAMES, fid=fid_to_pb(fid), has_new=True, new_mdt=here, parent=fid_to_pb(parent), name=name,
                time_ns=time.time_ns()), deadline)
            linked = rep.attr

            def bound(tx: Tx) -> Any:
                tx.conn.execute("DELETE FROM dne_log WHERE id = ?", (op_id,))
                remote.bind(tx, Cred(), parent, name, fid, c, here, linked.mode, True, owner=(linked.uid, linked.gid))
                return finish(tx, linked) if finish is not None else None
            out = self._last(op_id, entry, bound, encode)
            self._forget(c, op_id)
            return out
        return self._renamed(op_id, entry, finish, encode, deadline)

    def push_owner(self, op_id: int, entry: dict[str, Any], deadline: float) -> None:
        """A logged owner change of this MDT's inode: every other MDT naming it gets the owner it
        has now (OWNER), then the row goes. Read when sent, so a later change is never undone
        by an earlier one's row (that change logs a row of its own, sent after)."""
        mdt = self.mdt
        fid = Fid(*entry["fid"])
        a, mdts = mdt.store.peek(lambda tx: remote.owner_now(tx, fid)) or (None, [])
        targets = [m for m in mdts if m != mdt.index]
        for m in targets:
            assert a is not None
            self._part(m, op_id, mpb.DneUpdateRequest(kind=K.OWNER, fid=fid_to_pb(fid), uid=a.uid, gid=a.gid),
                       deadline)
        mdt.store.write(lambda tx: tx.conn.execute("DELETE FROM dne_log WHERE id = ?", (op_id,)))
        for m in targets:
            self._forget(m, op_id)

    def _renamed(self, op_id: int, entry: dict[str, Any], finish: Any, encode: Encode,
                 deadline: float) -> tuple[Any, int]:
        """BIND on the destination's MDT (or here), NAMES on the inode's, then the old name goes
        here; a replaced inode of another MDT loses its name last (UNNAME; a replaced directory of
        another MDT, sealed before the BIND, is removed: RMDIR), the log row marked `bound` in
        between so a redo only finishes that."""
        mdt = self.mdt
        here = mdt.index
        parent, name, fid = Fid(*entry["parent"]), bytes.fromhex(entry["name"]), Fid(*entry["fid"])
        b, c = int(entry["mdt"]), int(entry["fid_mdt"])
        dp, dn = Fid(*entry["dparent"]), bytes.fromhex(entry["dname"])
        uid, gid, groups = entry["cred"]
        out: tuple[Any, int] = (None, 0)
        victim = entry.get("victim")
        if not entry.get("bound"):
            sealed = self._seal(op_id, entry, deadline) if stat.S_ISDIR(entry["mode"]) else None
            victim = self._bind_first(op_id, entry, sealed, deadline)
            named = None
            if c != here:
                named = self._part(c, op_id, mpb.DneUpdateRequest(
                    kind=K.NAMES, fid=fid_to_pb(fid), has_src=True, src_mdt=here, src_parent=fid_to_pb(parent),
                    src_name=name, has_new=c != b, new_mdt=b, parent=fid_to_pb(dp), name=dn,
                    time_ns=time.time_ns()), deadline)

            def moved(tx: Tx) -> Any:
                nonlocal victim
                if b == here:
                    gone = remote.bind(tx, Cred(uid=uid, gid=gid, groups=tuple(groups)), dp, dn, fid, c, here,
                                       entry["mode"], bool(entry["flags"] & RENAME.NOREPLACE), sealed,
                                       _owner(entry, named))
                    victim = _fj(gone[0]) + [gone[1]] if gone is not None else None
                elif c == here and remote.still_bound(tx, parent, name, fid, entry["did"]):
                    remote.add_name(tx, fid, b, dp, dn)     # before the local name goes: never at nlink 0
                remote.unbind(tx, parent, name, fid, entry["did"])
                if victim is None and not entry.get("tree"):
                    tx.conn.execute("DELETE FROM dne_log WHERE id = ?", (op_id,))
                else:               # a replaced name, or the rename lock, is still to go
                    tx.conn.execute("UPDATE dne_log SET op = ? WHERE id = ?",
                                    (json.dumps({**entry, "bound": True, "victim": victim}), op_id))
                if finish is None:
                    return None
                return finish(tx, tx.getattr(fid) if named is None else named.attr)
            out = self._last(op_id, entry, moved, encode)
        elif entry["client"]:
            saved = mdt.store.saved_reply(entry["client"], entry["xid"])
            if saved is not None:
                out = (mpb.ReintReply.FromString(saved[1]), saved[0])
        if victim is not None:
            vfid, vmdt = Fid(*victim[:3]), int(victim[3])
            try:
                if stat.S_ISDIR(entry["mode"]):     # the sealed directory: it goes
                    self._part(vmdt, op_id, mpb.DneUpdateRequest(kind=K.RMDIR, fid=fid_to_pb(vfid)), deadline)
                else:
                    self._part(vmdt, op_id, mpb.DneUpdateRequest(
                        kind=K.UNNAME, fid=fid_to_pb(vfid), src_mdt=b, src_parent=fid_to_pb(dp), src_name=dn,
                        time_ns=time.time_ns()), deadline)
            except LpError as e:    # the rename is done: the redo thread finishes this when MDT vmdt answers
                log.warning("op %d: what the rename replaced on MDT%04x goes later (%s)", op_id, vmdt, e.message)
                self._wake.set()
                return out
            self.end_op(op_id, deadline, quiet=True)
            self._forget(vmdt, op_id)
        elif entry.get("tree"):
            self.end_op(op_id, deadline, quiet=True)
        for m in {b, c} - {here}:
            self._forget(m, op_id)
        return out

    def _seal(self, op_id: int, entry: dict[str, Any], deadline: float) -> Fid | None:
        """A directory moving onto the name of a directory of another MDT: that one sealed on its
        MDT (ENOTEMPTY unless empty: the operation ends), logged first (`vdir`) so that a redo
        finishes or unseals it. The sealed directory, or None."""
        vd = entry.get("vdir")
        if vd is None:
            got = self.dir_at(int(entry["mdt"]), Fid(*entry["dparent"]), bytes.fromhex(entry["dname"]), deadline)
            if got is None:
                return None
            vd = entry["vdir"] = _fj(got[0]) + [got[1]]
            self.mdt.store.write(lambda tx: tx.conn.execute("UPDATE dne_log SET op = ? WHERE id = ?",
                                                            (json.dumps(entry), op_id)))
            self.mdt.committer.commit_now()
        vfid = Fid(*vd[:3])
        self._refusable(op_id, int(vd[3]), mpb.DneUpdateRequest(kind=K.SEAL, fid=fid_to_pb(vfid)), deadline)
        return vfid

    def _unseal(self, op_id: int, entry: dict[str, Any], deadline: float) -> None:
        vd = entry.get("vdir")
        if vd is not None:
            self._part(int(vd[3]), op_id, mpb.DneUpdateRequest(kind=K.UNSEAL, fid=fid_to_pb(Fid(*vd[:3]))), deadline)

    def _bind_first(self, op_id: int, entry: dict[str, Any], sealed: Fid | None, deadline: float) -> list[int] | None:
        """The new name first: BIND on its MDT, or (when that is this MDT, which binds it in its
        last transaction) its checks here, under the lock on the new parent; a directory moving
        to another parent checks it is not above it. A refusal ends the operation (the sealed
        directory unsealed first). What the name bound before, when on another MDT ([FID, MDT])."""
        mdt = self.mdt
        b, c, fid = int(entry["mdt"]), int(entry["fid_mdt"]), Fid(*entry["fid"])
        dp, dn = Fid(*entry["dparent"]), bytes.fromhex(entry["dname"])
        uid, gid, groups = entry["cred"]
        victim = None
        try:
            if b == mdt.index:
                if entry.get("tree"):
                    self.check_no_loop(fid, dp, deadline)
                mdt.store.peek(lambda tx: remote.check_bind(tx, Cred(uid=uid, gid=gid, groups=tuple(groups)), dp, dn,
                                                            fid, entry["mode"],
                                                            bool(entry["flags"] & RENAME.NOREPLACE), sealed))
                return None             # what the name bound is known when it is bound, here
            req = mpb.DneUpdateRequest(
                kind=K.BIND, parent=fid_to_pb(dp), name=dn, fid=fid_to_pb(fid), fid_mdt=c, mode=entry["mode"],
                uid=uid, gid=gid, groups=groups, flags=entry["flags"], time_ns=time.time_ns())
            if entry.get("master"):
                req.dir_master.CopyFrom(fid_to_pb(Fid(*entry["master"])))
            if sealed is not None:
                req.sealed.CopyFrom(fid_to_pb(sealed))
            if (owner := _owner(entry, None)) is not None:
                req.has_owner, req.owner_uid, req.owner_gid = True, *owner
            rep = self._part(b, op_id, req, deadline)
            if rep.has_victim:
                victim = _fj(fid_from_pb(rep.victim)) + [rep.victim_mdt]
        except LpError as e:
            if e.errno in _REFUSALS:
                self._unseal(op_id, entry, deadline)
                self.end_op(op_id, deadline)
            raise
        if sealed is not None and (victim is None or Fid(*victim[:3]) != sealed):
            self._unseal(op_id, entry, deadline)    # the name bound another by then: it lives on
        return victim

    def _refusable(self, op_id: int, target: int, req: mpb.DneUpdateRequest, deadline: float) -> mpb.DneUpdateReply:
        """The first part: a refusal ends the operation with nothing done (the log row goes)."""
        try:
            return self._part(target, op_id, req, deadline)
        except LpError as e:
            if e.errno in _REFUSALS:
                self.end_op(op_id, deadline)
            raise

    def _last(self, op_id: int, entry: dict[str, Any], fn: Callable[[Tx], Any], encode: Encode) -> tuple[Any, int]:
        mdt = self.mdt
        out = mdt.store.write(fn, client_id=entry["client"] if encode and entry["client"] else "",
                              xid=entry["xid"], encode=encode if entry["client"] else None)
        mdt.committer.commit_now()
        mdt.osp.wake()                          # objects of a replaced or last-unlinked file go
        return out  # type: ignore[no-any-return]


def apply_names(mdt: Any, req: mpb.DneUpdateRequest, done: Callable[..., mpb.DneUpdateReply]
                ) -> mpb.DneUpdateReply:
    """BIND, NAMES, UNNAME and OWNER on the MDT asked (the other side)."""
    fid = fid_from_pb(req.fid)
    if req.kind == K.BIND:
        cred = Cred(uid=req.uid, gid=req.gid, groups=tuple(req.groups))
        parent = fid_from_pb(req.parent)
        if stat.S_ISDIR(req.mode) and req.HasField("dir_master") and mdt.store.peek(
                lambda tx: dirplace.master_of(tx, parent)) != fid_from_pb(req.dir_master):
            raise LpError(errno.EXDEV, "the directory's stripes changed meanwhile")

        def bound(tx: Tx) -> mpb.DneUpdateReply:
            gone = remote.bind(tx, cred, parent, req.name, fid, req.fid_mdt, mdt.index, req.mode,
                               bool(req.flags & RENAME.NOREPLACE),
                               fid_from_pb(req.sealed) if req.HasField("sealed") else None,
                               (req.owner_uid, req.owner_gid) if req.has_owner else None)
            rep = mpb.DneUpdateReply(hdr=rep_ok())
            if gone is not None:
                rep.has_victim, rep.victim_mdt = True, gone[1]
                rep.victim.CopyFrom(fid_to_pb(gone[0]))
            return done(tx, rep)
        with mdt.locks.update([(parent, IBit.UPDATE)]):
            if stat.S_ISDIR(req.mode) and not req.HasField("dir_master"):   # to another parent: the
                mdt.dne.check_no_loop(fid, parent, time.monotonic() + PART_WAIT)  # mover holds the rename lock
            rep, _ = mdt.store.write(bound)
        mdt.osp.wake()
        return rep  # type: ignore[no-any-return]
    if req.kind == K.OWNER:
        def owned(tx: Tx) -> mpb.DneUpdateReply:
            remote.set_stub_owner(tx, fid, req.uid, req.gid)
            return done(tx, mpb.DneUpdateReply(hdr=rep_ok()))
        rep, _ = mdt.store.write(owned)
        return rep  # type: ignore[no-any-return]
    if req.kind == K.UNNAME:
        gone_name = (req.src_mdt, fid_from_pb(req.src_parent), bytes(req.src_name))

        def unnamed(tx: Tx) -> mpb.DneUpdateReply:
            try:
                remote.change_names(tx, fid, gone_name, None)
            except LpError as e:
                if e.errno != errno.ESTALE:         # gone already: as asked
                    raise
            return done(tx, mpb.DneUpdateReply(hdr=rep_ok()))
        with mdt.locks.update([(fid, ALL_BUT_OPEN)]):
            rep, _ = mdt.store.write(unnamed)
        mdt.osp.wake()
        return rep  # type: ignore[no-any-return]
    old = (req.src_mdt, fid_from_pb(req.src_parent), bytes(req.src_name)) if req.has_src else None
    new = (req.new_mdt, fid_from_pb(req.parent), bytes(req.name)) if req.has_new else None
    if new is not None and old is None:             # a link: never of a directory
        a = mdt.store.peek(lambda tx: tx.getattr(fid))
        if stat.S_ISDIR(a.mode):
            raise LpError(errno.EPERM, "hard links to directories are not allowed")

    def named(tx: Tx) -> mpb.DneUpdateReply:
        a = remote.change_names(tx, fid, old, new)
        return done(tx, mpb.DneUpdateReply(hdr=rep_ok(), attr=attr_pb(tx, a)))
    with mdt.locks.update([(fid, ALL_BUT_OPEN if new is None else IBit.LOOKUP | IBit.UPDATE)]):
        rep, _ = mdt.store.write(named)
    mdt.osp.wake()
    return rep  # type: ignore[no-any-return]
