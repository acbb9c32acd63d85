"""Operations across MDTs (Lustre's DNE distributed updates): a remote mkdir and the rmdir of a
remote directory, coordinated by the MDT of the parent directory.

Each runs in three steps, under the MDS's own EX lock on the parent directory (local updates of
it wait, and clients' caches of it are called back):
1. the coordinator checks the operation and logs it in `dne_log` (synced) — nothing else changes;
2. it sends the other MDT its part (Mds.DneUpdate), which that MDT applies in one transaction
   with a `dne_done` row, so a resent part is answered from the row and never applied twice;
3. it applies its own part, removing the log row and saving the client's reply, in one
   transaction (synced before the reply goes out).
A crash of either MDS between the steps leaves the log row: the coordinator's redo thread sends
the part again (answered once) and finishes, or takes back a made directory whose name went to
another inode meanwhile. So an operation is either whole or not at all, once the MDTs are up.
The other MDT's address comes from the FID location view (fld.Mdts).

`apply` is the other MDT's side. Nothing here speaks to clients but through the handlers.
"""

from __future__ import annotations

import errno
import json
import logging
import stat
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol

from lustrepy.common.errors import LpError, from_wire
from lustrepy.common.fid import Fid
from lustrepy.common.names import check_name
from lustrepy.common.records import Cred
from lustrepy.ldlm.inodebits import IBit
from lustrepy.mds import fld, remote
from lustrepy.mds.dnenames import NameMoves, apply_names
from lustrepy.mds.dnestripe import StripedDirs, apply_stripes
from lustrepy.mds.dnetree import TreeMoves, apply_tree
from lustrepy.mds.remote import log_add
from lustrepy.mds.locking import ALL_BUT_OPEN
from lustrepy.mds.wire import attr_pb
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import attr_from_pb, fid_from_pb, fid_to_pb, rep_err, rep_ok
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc

if TYPE_CHECKING:
    from lustrepy.mds.fld import Mdts
    from lustrepy.mds.locking import MdsLocks
    from lustrepy.mds.namespace import Tx
    from lustrepy.mds.recovery import Committer
    from lustrepy.mds.store import Store
    from lustrepy.rpc.recovery_window import RecoveryWindow

log = logging.getLogger(__name__)

K = mpb.DneUpdateRequest.Kind
PART_TIMEOUT = 10.0         # seconds one DneUpdate may take
REDO_PAUSE = 2.0            # seconds between redo rounds while a log row waits for its MDT
YOUNG_S = 1.0               # a row logged this recently is left to the request carrying it (not owner rows)

Finish = Callable[["Tx", Any], Any]     # the client's reply from the coordinator's last transaction


class _Cfg(Protocol):
    @property
    def dne_wait(self) -> float: ...


class Host(Protocol):
    """What operations across MDTs need of their MDT (lustrepy.mds.mdt.Mdt is one)."""

    uuid: str
    store: Store
    committer: Committer
    locks: MdsLocks
    mdts: Mdts
    recovery: RecoveryWindow

    @property
    def cfg(self) -> _Cfg: ...


def _log_del(tx: Tx, op_id: int) -> None:
    tx.conn.execute("DELETE FROM dne_log WHERE id = ?", (op_id,))


def _fid_j(f: Fid) -> list[int]:
    return [f.seq, f.oid, f.ver]


class Dne(NameMoves, StripedDirs, TreeMoves):
    """The coordinator's side, with its redo thread and channels to the other MDTs."""

    def __init__(self, mdt: Host) -> None:
        self.mdt = mdt
        self._mu = threading.Lock()
        self._stubs: dict[str, tuple[Any, Any]] = {}       # address -> (channel, stub)
        self._busy: set[int] = set()                        # log rows a thread is carrying through
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._redo_loop, name="dne-redo", daemon=True)
        # how a client's reply is saved (the service's), so that an operation the redo thread
        # finishes answers its client's resend
        self.encode: Callable[[Any, int], bytes] | None = None

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A row was logged that no request carries (an owner change): the redo thread sends it now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=PART_TIMEOUT + 2)
        with self._mu:
            for ch, _ in self._stubs.values():
                ch.close()
            self._stubs.clear()

    # ---- the client's requests ---------------------------------------------------------

    def mkdir(self, cred: Cred, client_id: str, xid: int, parent: Fid, name: bytes, mode: int, target: int,
              finish: Finish, encode: Callable[[Any, int], bytes] | None) -> tuple[Any, int]:
        """A directory `name` in `parent` whose inode lives on MDT `target`."""
        check_name(name)
        self._address(target)           # EINVAL for an MDT this file system does not have
        mdt = self.mdt
        with mdt.locks.update([(parent, IBit.UPDATE)], on_behalf=client_id):
            pa = mdt.store.peek(lambda tx: remote.check_create(tx, cred, parent, name))
            bits = mode & 0o1777 | (stat.S_ISGID if pa.mode & stat.S_ISGID else 0)
            gid = pa.gid if pa.mode & stat.S_ISGID else cred.gid
            entry = {"kind": "mkdir", "parent": _fid_j(parent), "name": name.hex(), "mode": bits,
                     "uid": cred.uid, "gid": gid, "mdt": target, "client": client_id, "xid": xid,
                     "cred": [cred.uid, cred.gid, list(cred.groups)]}
            return self._carry(entry, finish, encode)

    def rmdir(self, cred: Cred, client_id: str, xid: int, parent: Fid, name: bytes, finish: Finish,
              encode: Callable[[Any, int], bytes] | None) -> tuple[Any, int]:
        """Remove `name` in `parent`, a directory whose inode lives on another MDT."""
        mdt = self.mdt
        with mdt.locks.update([(parent, IBit.UPDATE)], on_behalf=client_id):
            fid, target = mdt.store.peek(lambda tx: remote.check_remove(tx, cred, parent, name))
            entry = {"kind": "rmdir", "parent": _fid_j(parent), "name": name.hex(), "fid": _fid_j(fid),
                     "mdt": target, "client": client_id, "xid": xid, "cred": [cred.uid, cred.gid, list(cred.groups)]}
            return self._carry(entry, finish, encode)

    def resumed(self, client_id: str, xid: int, finish: Finish, encode: Callable[[Any, int], bytes] | None
                ) -> tuple[Any, int] | None:
        """A client's resend of a request whose operation is still logged (its MDS restarted
        before answering): carry that operation through (or wait while the redo thread does)
        and answer as it did; None when no logged operation is the request's."""
        mdt = self.mdt
        if not client_id or not mdt.mdts.several:
            return None
        deadline = time.monotonic() + mdt.cfg.dne_wait
        while True:
            row = mdt.store.peek(lambda tx: tx.conn.execute(
                "SELECT id, op FROM dne_log WHERE json_extract(op, '$.client') = ? AND json_extract(op, '$.xid') = ?",
                (client_id, xid)).fetchone())
            if row is None:
                saved = mdt.store.saved_reply(client_id, xid)
                if saved is None:
                    return None
                return mpb.ReintReply.FromString(saved[1]), saved[0]
            op_id = int(row[0])
            with self._mu:
                mine = op_id not in self._busy
                if mine:
                    self._busy.add(op_id)
            if mine:
                entry = json.loads(row[1])
                try:
                    self._hold_for(op_id, entry, deadline)
                    with mdt.locks.update([(Fid(*entry["parent"]), IBit.UPDATE)], on_behalf=client_id):
                        return self._through(op_id, entry, finish, encode, deadline)
                finally:
                    with self._mu:
                        self._busy.discard(op_id)
            if time.monotonic() > deadline:
                raise LpError(errno.ETIMEDOUT, "the operation is still being carried through")
            time.sleep(0.05)

    def _hold_for(self, op_id: int, entry: dict[str, Any], deadline: float) -> None:
        """A logged move of a directory to another parent holds the rename lock until it ends
        (taken again after a restart: the same operation's is granted as held)."""
        if entry.get("tree") and not entry.get("bound"):
            self.rename_lock(op_id, deadline)

    def _carry(self, entry: dict[str, Any], finish: Finish, encode: Callable[[Any, int], bytes] | None
               ) -> tuple[Any, int]:
        mdt = self.mdt
        op_id, _ = mdt.store.write(lambda tx: log_add(tx, entry))
        mdt.committer.commit_now()              # logged before any MDT applies a part
        with self._mu:
            self._busy.add(op_id)
        try:
            return self._through(op_id, entry, finish, encode, time.monotonic() + mdt.cfg.dne_wait)
        finally:
            with self._mu:
                self._busy.discard(op_id)

    # ---- the steps after the log ----------------------------------------------------------

    def _through(self, op_id: int, entry: dict[str, Any], finish: Finish | None,
                 encode: Callable[[Any, int], bytes] | None, deadline: float) -> tuple[Any, int]:
        """Send the other MDT its part (until `deadline`), then apply ours; returns what
        `finish` made of it (the client's reply) and its transno."""
        mdt = self.mdt
        if entry["kind"] in ("rename", "unlink", "link"):
            return self.names_through(op_id, entry, finish, encode, deadline)
        if entry["kind"] in ("smkdir", "srmdir"):
            return self.stripes_through(op_id, entry, finish, encode, deadline)
        parent, name = Fid(*entry["parent"]), bytes.fromhex(entry["name"])
        target = int(entry["mdt"])
        if entry["kind"] == "mkdir":
            req = mpb.DneUpdateRequest(kind=K.MKDIR, parent=fid_to_pb(parent), name=name, mode=entry["mode"],
                                       uid=entry["uid"], gid=entry["gid"], time_ns=time.time_ns())
            rep = self._part(target, op_id, req, deadline)
            made = attr_from_pb(rep.attr)

            def apply(tx: Tx) -> Any:
                _log_del(tx, op_id)
                a = remote.add_stub(tx, Cred(uid=0, gid=0), parent, name, made, target)
                return finish(tx, a) if finish is not None else None
            try:
                out = mdt.store.write(apply, client_id=entry["client"] if encode and entry["client"] else "",
                                      xid=entry["xid"], encode=encode if entry["client"] else None)
            except LpError as e:       # the name went to another inode meanwhile: take ours back
                self._part(target, op_id, mpb.DneUpdateRequest(kind=K.UNMAKE, fid=rep.attr.fid), deadline)
                mdt.store.write(lambda tx: _log_del(tx, op_id))
                mdt.committer.commit_now()
                raise LpError(e.errno, e.message) from None
        else:
            assert entry["kind"] == "rmdir", entry["kind"]
            fid = Fid(*entry["fid"])
            req = mpb.DneUpdateRequest(kind=K.RMDIR, fid=fid_to_pb(fid), time_ns=time.time_ns())
            try:
                self._part(target, op_id, req, deadline)
            except LpError as e:
                if e.errno in (errno.ETIMEDOUT, errno.ENOTCONN, errno.EAGAIN):
                    raise
                mdt.store.write(lambda tx: _log_del(tx, op_id))   # refused (ENOTEMPTY...): nothing done
                mdt.committer.commit_now()
                raise

            def drop(tx: Tx) -> Any:
                _log_del(tx, op_id)
                remote.drop_stub(tx, parent, name, fid)
                return finish(tx, None) if finish is not None else None
            out = mdt.store.write(drop, client_id=entry["client"] if encode and entry["client"] else "",
                                  xid=entry["xid"], encode=encode if entry["client"] else None)
        mdt.committer.commit_now()              # durable before the client hears of it
        self._forget(target, op_id)
        return out  # type: ignore[no-any-return]

    def _part(self, target: int, op_id: int, req: mpb.DneUpdateRequest, deadline: float) -> mpb.DneUpdateReply:
        """Send one part until it is answered or `deadline` passes (ETIMEDOUT); its errno raised.
        A part of this MDT's own is applied here, as any other MDT would (once per operation)."""
        req.coordinator = self.mdt.uuid
        req.op_id = op_id
        pause = 0.1
        while True:
            try:
                if target == self.mdt.index:
                    rep = apply(self.mdt, req)
                else:
                    rep = call(self._stub(target).DneUpdate, req, timeout=PART_TIMEOUT)
            except LpError as e:
                if time.monotonic() + pause > deadline or self._stop.is_set():
                    raise LpError(errno.ETIMEDOUT, f"MDT{target:04x} does not answer ({e.message}); "
                                                   "the operation completes when it does") from None
                time.sleep(pause)
                pause = min(2.0, pause * 2)
                continue
            err = from_wire(rep.hdr.errno)
            if err in (errno.EINPROGRESS, errno.EAGAIN) and time.monotonic() + pause <= deadline:
                time.sleep(pause)               # that MDT recovers
                pause = min(2.0, pause * 2)
                continue
            if err:
                raise LpError(err, rep.hdr.message or f"MDT{target:04x} refused")
            assert isinstance(rep, mpb.DneUpdateReply)
            return rep

    def _forget(self, target: int, op_id: int) -> None:
        """Tell the other MDT its done row may go (best effort: a row left costs a few bytes)."""
        try:
            call(self._stub(target).DneUpdate, mpb.DneUpdateRequest(kind=K.NONE, coordinator=self.mdt.uuid,
                                                                   op_id=op_id), timeout=PART_TIMEOUT)
        except LpError as e:
            log.debug("MDT%04x: done row of op %d left: %s", target, op_id, e.message)

    def _address(self, target: int) -> str:
        for m in self.mdt.mdts.view().mdts:
            if m.index == target and m.address:
                return str(m.address)
        raise LpError(errno.EINVAL, f"this file system has no MDT {target}")

    def _stub(self, target: int) -> Any:
        address = self._address(target)
        with self._mu:
            got = self._stubs.get(address)
            if got is None:
                ch = make_channel(address, "mds")
                got = self._stubs[address] = (ch, mds_pb2_grpc.MdsStub(ch))
            return got[1]

    # ---- redo ---------------------------------------------------------------------------

    def _redo_loop(self) -> None:
        while not self._stop.is_set():
            left = 0
            try:
                left = self.redo_once()
            except Exception:       # the thread goes on whatever one round hit
                log.exception("redo of operations across MDTs failed")
            self._wake.wait(REDO_PAUSE if left else 30.0)
            self._wake.clear()

    def redo_once(self) -> int:
        """Carry every logged operation no request is carrying through; returns how many are left."""
        mdt = self.mdt
        if mdt.recovery.blocks():
            return 1
        rows = mdt.store.peek(lambda tx: tx.conn.execute("SELECT id, op, created_ns FROM dne_log ORDER BY id").fetchall())
        left = 0
        young = time.time_ns() - int(YOUNG_S * 1e9)
        for op_id, text, created in rows:
            entry = json.loads(text)
            if entry["kind"] != "owner" and created > young:
                left += 1                           # the request that logged it is carrying it
                continue
            with self._mu:
                if op_id in self._busy:
                    continue
                self._busy.add(op_id)
            try:
                deadline = time.monotonic() + PART_TIMEOUT
                if entry["kind"] == "owner":
                    self.push_owner(op_id, entry, deadline)
                    continue
                if entry["kind"] == "hold":         # a move here that held the rename lock
                    self.end_op(op_id, deadline)
                    continue
                self._hold_for(op_id, entry, deadline)
                with mdt.locks.update([(Fid(*entry["parent"]), IBit.UPDATE)]):
                    self._through(op_id, entry, _plain_reply if self.encode else None, self.encode, deadline)
                log.info("op %d (%s across MDTs) carried through after a restart", op_id, entry["kind"])
            except LpError as e:
                if e.errno == errno.ETIMEDOUT:
                    left += 1
                else:
                    log.info("op %d across MDTs ended: %s", op_id, e.message)
            finally:
                with self._mu:
                    self._busy.discard(op_id)
        return left


def _plain_reply(tx: Tx, attr: Any) -> mpb.ReintReply:
    """The reply the redo thread saves for a client's resend: success, the attributes made."""
    rep = mpb.ReintReply(hdr=rep_ok())
    if isinstance(attr, cpb.Attr):
        rep.attr.CopyFrom(attr)
    elif attr is not None:
        rep.attr.CopyFrom(attr_pb(tx, attr))
    return rep


# ---- the other MDT's side ----------------------------------------------------------------

def apply(mdt: Host, req: mpb.DneUpdateRequest) -> mpb.DneUpdateReply:
    """Apply one part of another MDT's operation, once per (coordinator, op id)."""
    coord = fld.index_of(req.coordinator)
    if req.kind == K.NONE:
        mdt.store.write(lambda tx: tx.conn.execute("DELETE FROM dne_done WHERE coordinator = ? AND op_id = ?",
                                                   (req.coordinator, req.op_id)))
        return mpb.DneUpdateReply(hdr=rep_ok())
    if req.kind in (K.RLOCK, K.RUNLOCK, K.CLIMB, K.PEEK):
        if mdt.recovery.blocks():
            return mpb.DneUpdateReply(hdr=rep_err(LpError(errno.EINPROGRESS, "recovering")))
        return apply_tree(mdt, req)
    saved = mdt.store.peek(lambda tx: tx.conn.execute(
        "SELECT reply FROM dne_done WHERE coordinator = ? AND op_id = ? AND kind = ?",
        (req.coordinator, req.op_id, int(req.kind))).fetchone())
    if saved is not None:
        return mpb.DneUpdateReply.FromString(saved[0])
    if mdt.recovery.blocks():
        return mpb.DneUpdateReply(hdr=rep_err(LpError(errno.EINPROGRESS, "recovering")))

    def done(tx: Tx, rep: mpb.DneUpdateReply) -> mpb.DneUpdateReply:
        tx.conn.execute("INSERT INTO dne_done (coordinator, op_id, kind, reply, done_ns) VALUES (?, ?, ?, ?, ?)",
                        (req.coordinator, req.op_id, int(req.kind), rep.SerializeToString(), tx.now))
        return rep

    if req.kind in (K.BIND, K.NAMES, K.UNNAME, K.OWNER):
        rep = apply_names(mdt, req, done)
    elif req.kind in (K.SHARD, K.KILL, K.REVIVE, K.UNSHARD):
        rep = apply_stripes(mdt, req, done)
    elif req.kind == K.MKDIR:
        check_name(req.name)
        parent = fid_from_pb(req.parent)

        def make(tx: Tx) -> mpb.DneUpdateReply:
            a = remote.make_dir(tx, coord, parent, req.name, req.mode, req.uid, req.gid)
            return done(tx, mpb.DneUpdateReply(hdr=rep_ok(), attr=attr_pb(tx, a)))
        rep, _ = mdt.store.write(make)
    elif req.kind in (K.SEAL, K.UNSEAL):
        fid = fid_from_pb(req.fid)

        def sealed(tx: Tx) -> mpb.DneUpdateReply:
            try:
                remote.seal(tx, fid, req.kind == K.SEAL)
                return done(tx, mpb.DneUpdateReply(hdr=rep_ok()))
            except LpError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.ENOTDIR, errno.ESTALE):
                    raise
                return done(tx, mpb.DneUpdateReply(hdr=rep_err(e)))
        with mdt.locks.update([(fid, ALL_BUT_OPEN)]):       # write-back grants in it flushed first
            rep, _ = mdt.store.write(sealed)
    elif req.kind in (K.RMDIR, K.UNMAKE):
        fid = fid_from_pb(req.fid)

        def rm(tx: Tx) -> mpb.DneUpdateReply:
            try:
                remote.remove_dir(tx, fid)
                rep = mpb.DneUpdateReply(hdr=rep_ok())
            except LpError as e:
                if e.errno == errno.ESTALE:             # gone already (a repair took it): as asked
                    rep = mpb.DneUpdateReply(hdr=rep_ok())
                elif e.errno in (errno.ENOTEMPTY, errno.ENOTDIR):
                    rep = mpb.DneUpdateReply(hdr=rep_err(e))
                else:
                    raise
            return done(tx, rep)
        with mdt.locks.update([(fid, ALL_BUT_OPEN)]):       # clients' caches of it are called back
            rep, _ = mdt.store.write(rm)
    else:
        raise LpError(errno.EINVAL, f"unknown part kind {req.kind}")
    mdt.committer.commit_now()
    return rep
