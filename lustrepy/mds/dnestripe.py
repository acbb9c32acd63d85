"""Making and removing striped directories, as logged operations across MDTs (mds/dne.py).

mkdir -c N: under this MDT's EX lock on the parent, the operation is logged with the master's
FID (drawn first) and the MDT of each further stripe; each of those MDTs makes its stripe
(SHARD: a directory with no name that knows its master); last this MDT makes the master with
its name and stripe list, in the transaction that removes the log row. A refusal or a name
taken meanwhile (after a crash) takes the stripes made back (UNSHARD).

rmdir of a striped directory: under EX locks on the parent and the master, logged; each other
stripe is closed to new names if empty (KILL; one not empty ends the operation and the closed
ones open again, REVIVE); then this MDT removes the master and its name, marking the log row
`gone` in the same transaction; then the stripes go (UNSHARD) and the row with them. The redo
thread carries a logged one on from where it stopped.
"""

from __future__ import annotations

import errno
import json
import time
from typing import TYPE_CHECKING, Any, Callable

from lustrepy.common.dirhash import MAX_STRIPES, Stripes, check_hash
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.names import check_name
from lustrepy.common.records import Cred
from lustrepy.ldlm.inodebits import IBit
from lustrepy.mds import dirstripe, remote
from lustrepy.mds.locking import ALL_BUT_OPEN
from lustrepy.mds.wire import attr_pb
from lustrepy.rpc.convert import fid_from_pb, fid_to_pb, rep_err, rep_ok
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.namespace import Tx

K = mpb.DneUpdateRequest.Kind
Encode = Callable[[Any, int], bytes] | None
_WAITING = (errno.ETIMEDOUT, errno.ENOTCONN, errno.EAGAIN, errno.EINPROGRESS)


def _fj(f: Fid) -> list[int]:
    return [f.seq, f.oid, f.ver]


def _cred(entry: dict[str, Any]) -> Cred:
    uid, gid, groups = entry["cred"]
    return Cred(uid=uid, gid=gid, groups=tuple(groups))


class StripedDirs:
    """Mixed into Dne: needs its `mdt`, `_carry`, `_part`, `_forget`."""

    mdt: Any
    _carry: Callable[..., tuple[Any, int]]
    _part: Callable[..., mpb.DneUpdateReply]
    _forget: Callable[[int, int], None]

    def mkdir_striped(self, cred: Cred, client_id: str, xid: int, parent: Fid, name: bytes, mode: int,
                      count: int, hash_type: str, finish: Any, encode: Encode, *,
                      inherit: tuple[int, str] | None = None) -> tuple[Any, int]:
        """A directory striped over `count` MDTs; `inherit`: the default striping it passes on
        to its own new subdirectories (its parent's, when that made it striped)."""
        check_name(name)
        hash_type = check_hash(hash_type)
        mdt = self.mdt
        indexes = [m.index for m in mdt.mdts.view().mdts] or [0]
        if not 1 < count <= min(len(indexes), MAX_STRIPES):
            raise LpError(errno.EINVAL, f"a directory stripes over 2..{len(indexes)} MDTs here, not {count}")
        at = indexes.index(mdt.index) if mdt.index in indexes else 0
        targets = [mdt.index] + [indexes[(at + k) % len(indexes)] for k in range(1, count)]
        with mdt.locks.update([(parent, IBit.UPDATE)], on_behalf=client_id):
            mdt.store.peek(lambda tx: remote.check_create(tx, cred, parent, name))
            master, _ = mdt.store.write(lambda tx: tx._alloc_fid())
            entry = {"kind": "smkdir", "parent": _fj(parent), "name": name.hex(), "mode": mode & 0o7777,
                     "master": _fj(master), "mdts": targets, "hash": hash_type, "client": client_id, "xid": xid,
                     "default": list(inherit) if inherit else None,
                     "cred": [cred.uid, cred.gid, list(cred.groups)]}
            return self._carry(entry, finish, encode)

    def rmdir_striped(self, cred: Cred, client_id: str, xid: int, parent: Fid, name: bytes, fid: Fid,
                      finish: Any, encode: Encode) -> tuple[Any, int]:
        mdt = self.mdt
        with mdt.locks.update([(parent, IBit.UPDATE), (fid, ALL_BUT_OPEN)], on_behalf=client_id):
            got = mdt.store.peek(lambda tx: dirstripe.check_remove(tx, cred, parent, name))
            if got is None or got[0] != fid:
                raise LpError(errno.EAGAIN, "the name changed during rmdir; try again")
            s = got[1]
            entry = {"kind": "srmdir", "parent": _fj(parent), "name": name.hex(), "fid": _fj(fid),
                     "stripes": [_fj(f) + [m] for f, m in zip(s.fids, s.mdts, strict=True)], "client": client_id, "xid": xid,
                     "cred": [cred.uid, cred.gid, list(cred.groups)]}
            return self._carry(entry, finish, encode)

    # ---- after the log ------------------------------------------------------------------

    def stripes_through(self, op_id: int, entry: dict[str, Any], finish: Any, encode: Encode,
                        deadline: float) -> tuple[Any, int]:
        if entry["kind"] == "smkdir":
            return self._made(op_id, entry, finish, encode, deadline)
        return self._removed(op_id, entry, finish, encode, deadline)

    def _end(self, op_id: int) -> None:
        self.mdt.store.write(lambda tx: tx.conn.execute("DELETE FROM dne_log WHERE id = ?", (op_id,)))
        self.mdt.committer.commit_now()

    def _made(self, op_id: int, entry: dict[str, Any], finish: Any, encode: Encode,
              deadline: float) -> tuple[Any, int]:
        mdt = self.mdt
        parent, name, master = Fid(*entry["parent"]), bytes.fromhex(entry["name"]), Fid(*entry["master"])
        targets: list[int] = entry["mdts"]
        cred = _cred(entry)
        pa = mdt.store.peek(lambda tx: tx.getattr(parent))
        gid = pa.gid if pa.mode & 0o2000 else cred.gid
        fids, made = [master], []
        try:
            for k, m in enumerate(targets[1:], start=1):
                req = mpb.DneUpdateRequest(kind=K.SHARD, parent=fid_to_pb(master), fid_mdt=mdt.index,
                                           mode=entry["mode"] | (pa.mode & 0o2000), uid=cred.uid, gid=gid,
                                           stripe_index=k, stripe_count=len(targets), stripe_hash=entry["hash"],
                                           time_ns=time.time_ns())
                if entry.get("default"):
                    req.default_count, req.default_hash = entry["default"]
                fids.append(fid_from_pb(self._part(m, op_id, req, deadline).attr.fid))
                made.append((fids[-1], m))
        except LpError as e:
            if e.errno in _WAITING:
                raise
            self._unshard(op_id, made, deadline)
            raise
        stripes = Stripes(entry["hash"], tuple(fids), tuple(targets))

        def apply(tx: Tx) -> Any:
            tx.conn.execute("DELETE FROM dne_log WHERE id = ?", (op_id,))
            a = tx.mkdir(cred, parent, name, entry["mode"], fid=master)
            dirstripe.add_master(tx, master, mdt.index, stripes)
            if entry.get("default"):
                a = dirstripe.set_default(tx, None, master, tuple(entry["default"]))
            return finish(tx, a) if finish is not None else None
        try:
            out = mdt.store.write(apply, client_id=entry["client"] if encode and entry["client"] else "",
                                  xid=entry["xid"], encode=encode if entry["client"] else None)
        except LpError as e:            # the name went to another inode meanwhile: take ours back
            self._unshard(op_id, made, deadline)
            raise LpError(e.errno, e.message) from None
        mdt.committer.commit_now()
        for m in set(targets[1:]):
            self._forget(m, op_id)
        return out  # type: ignore[no-any-return]

    def _unshard(self, op_id: int, made: list[tuple[Fid, int]], deadline: float) -> None:
        for f, m in made:
            self._part(m, op_id, mpb.DneUpdateRequest(kind=K.UNSHARD, fid=fid_to_pb(f)), deadline)
        self._end(op_id)

    def _removed(self, op_id: int, entry: dict[str, Any], finish: Any, encode: Encode,
                 deadline: float) -> tuple[Any, int]:
        mdt = self.mdt
        parent, name, fid = Fid(*entry["parent"]), bytes.fromhex(entry["name"]), Fid(*entry["fid"])
        others = [(Fid(s, o, v), m) for s, o, v, m in entry["stripes"][1:]]
        out: tuple[Any, int] = (None, 0)
        if not entry.get("gone"):
            try:
                for f, m in others:
                    self._part(m, op_id, mpb.DneUpdateRequest(kind=K.KILL, fid=fid_to_pb(f)), deadline)
            except LpError as e:
                if e.errno in _WAITING:
                    raise
                for f, m in others:         # open them again; one that was not closed stays so
                    self._part(m, op_id, mpb.DneUpdateRequest(kind=K.REVIVE, fid=fid_to_pb(f)), deadline)
                self._end(op_id)
                raise
            cred = _cred(entry)

            def drop(tx: Tx) -> Any:
                a = dirstripe.remove_master(tx, cred, parent, name, fid)
                tx.conn.execute("UPDATE dne_log SET op = ? WHERE id = ?", (json.dumps({**entry, "gone": True}), op_id))
                return finish(tx, a) if finish is not None else None
            try:
                out = mdt.store.write(drop, client_id=entry["client"] if encode and entry["client"] else "",
                                      xid=entry["xid"], encode=encode if entry["client"] else None)
            except LpError:
                for f, m in others:
                    self._part(m, op_id, mpb.DneUpdateRequest(kind=K.REVIVE, fid=fid_to_pb(f)), deadline)
                self._end(op_id)
                raise
            mdt.committer.commit_now()
        elif entry["client"]:
            saved = mdt.store.saved_reply(entry["client"], entry["xid"])
            if saved is not None:
                out = (mpb.ReintReply.FromString(saved[1]), saved[0])
        for f, m in others:
            self._part(m, op_id, mpb.DneUpdateRequest(kind=K.UNSHARD, fid=fid_to_pb(f)), deadline)
        self._end(op_id)
        for m in {m for _, m in others}:
            self._forget(m, op_id)
        return out


def apply_stripes(mdt: Any, req: mpb.DneUpdateRequest, done: Callable[..., mpb.DneUpdateReply]
                  ) -> mpb.DneUpdateReply:
    """SHARD, KILL, REVIVE and UNSHARD on the MDT asked (the other side)."""
    if req.kind == K.SHARD:
        master = fid_from_pb(req.parent)
        hash_type = check_hash(req.stripe_hash)

        def make(tx: Tx) -> mpb.DneUpdateReply:
            a = dirstripe.make_shard(tx, master, req.fid_mdt, req.stripe_index, req.stripe_count, hash_type,
                                     req.mode, req.uid, req.gid)
            if req.default_count:
                a = dirstripe.set_default(tx, None, a.fid, (req.default_count, check_hash(req.default_hash)))
            return done(tx, mpb.DneUpdateReply(hdr=rep_ok(), attr=attr_pb(tx, a)))
        rep, _ = mdt.store.write(make)
        return rep  # type: ignore[no-any-return]
    fid = fid_from_pb(req.fid)

    def change(tx: Tx) -> mpb.DneUpdateReply:
        if req.kind == K.UNSHARD:
            dirstripe.remove_shard(tx, fid)
        else:
            dirstripe.set_dying(tx, fid, req.kind == K.KILL)
        return done(tx, mpb.DneUpdateReply(hdr=rep_ok()))
    with mdt.locks.update([(fid, ALL_BUT_OPEN)]):       # clients' caches of it are called back
        try:
            rep, _ = mdt.store.write(change)
        except LpError as e:
            if e.errno != errno.ENOTEMPTY:
                raise
            refused = mpb.DneUpdateReply(hdr=rep_err(e))
            rep, _ = mdt.store.write(lambda tx: done(tx, refused))
    return rep  # type: ignore[no-any-return]
