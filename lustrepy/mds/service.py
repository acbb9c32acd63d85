"""The MDS's gRPC servicer: thin glue between the wire and the request handlers.

Every handler checks the caller's export (an evicted client gets ENOTCONN),
applies piggybacked early lock cancels, answers a resent update from its
reply-reconstruction row instead of running it again, and turns any failure
into the reply's errno: POSIX results travel in RepHdr, never as gRPC status.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import logging
import os
import sqlite3
import stat
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import grpc

from lustrepy import __version__
from lustrepy.common.errors import LpError
from lustrepy.common.dirhash import DMV_XATTR, encode_default
from lustrepy.common.layout import LOV_XATTR, encode_lov
from lustrepy.common.opstats import RpcStats
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.common.params import ParamValue, Registry
from lustrepy.common.records import Cred, Statfs
from lustrepy.mds import capas, dirstripe, intent, lfsck_wire, reint, remote
from lustrepy.common import perm
from lustrepy.mds import replay
from lustrepy.mds.dneservice import DneHandlers
from lustrepy.mds.namespace import Tx
from lustrepy.mds.sqlerr import classify
from lustrepy.mds.wire import attr_pb
from lustrepy.rpc.convert import (Reply, check_hdr, cred_from_hdr, fid_from_pb, fid_to_pb, rep_err, rep_ok,
                                  statfs_from_pb, statfs_to_pb)
from lustrepy.rpc.lane import MDS_LANE_METHODS, Handler, messages
from lustrepy.rpc.statswire import stats_reply
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc
from lustrepy.rpc.v1 import stats_pb2 as spb

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt

log = logging.getLogger(__name__)

READDIR_MAX = 4096
INODE_BYTES = 1024          # MDT space one inode is reckoned to take, for free-inode counts


M = TypeVar("M", bound=Reply)


def _encode(rep: Reply, transno: int) -> bytes:
    rep.hdr.transno = transno
    return rep.SerializeToString()


def _statfs(mdt: Mdt) -> mpb.MdsStatfsReply:
    """The MDT's own space and the sum of the active OSTs'."""
    vfs = os.statvfs(mdt.cfg.dir)
    used = mdt.store.read().statfs_files()
    ffree = vfs.f_bavail * vfs.f_frsize // INODE_BYTES
    mdt_fs = Statfs(bsize=vfs.f_frsize, blocks=vfs.f_blocks, bfree=vfs.f_bfree, bavail=vfs.f_bavail,
                    files=used + ffree, ffree=ffree)
    pools = mdt.store.read().pool_sizes()
    rep = mpb.MdsStatfsReply(hdr=rep_ok(), mdt=statfs_to_pb(mdt_fs), fsname=mdt.fsname)
    blocks = bfree = bavail = 0
    for st in mdt.registry.all():
        rep.osts.add(index=st.index, uuid=st.uuid, address=st.address, active=st.active,
                     last_seen_s=mdt.registry.age(st), statfs=statfs_to_pb(st.statfs),
                     precreated=pools.get(st.index, 0), full=st.full, node=st.node, failure_domain=st.domain)
        if st.active:
            k = st.statfs.bsize
            blocks += st.statfs.blocks * k
            bfree += st.statfs.bfree * k
            bavail += st.statfs.bavail * k
    rep.total.CopyFrom(statfs_to_pb(Statfs(bsize=4096, blocks=blocks // 4096, bfree=bfree // 4096,
                                           bavail=bavail // 4096, files=mdt_fs.files, ffree=mdt_fs.ffree)))
    return rep


def _made_xattr(tx: Tx, fid: Fid, name: bytes) -> bytes | None:
    """The attributes the MDS makes from its tables (a layout, a default striping of
    subdirectories); None for any other name."""
    if name == LOV_XATTR:
        lo = _lov(tx, fid)
        return encode_lov(lo, fid if lo.has_objects else None)
    if name == DMV_XATTR:
        default = dirstripe.default_of(tx, fid)
        if default is None:
            raise LpError(errno.ENODATA, "no default striping of subdirectories")
        return encode_default(*default)
    return None


def _lov(tx: Tx, fid: Fid) -> Layout:
    """What lustre.lov shows: a directory's default layout or a regular file's own."""
    a = tx.getattr(fid)
    if stat.S_ISDIR(a.mode):
        return tx.default_layout(fid)
    lo = tx.get_layout(fid) if stat.S_ISREG(a.mode) else None
    if lo is None:
        raise LpError(errno.ENODATA, "no layout")
    return lo


class MdsService(DneHandlers, mds_pb2_grpc.MdsServicer):
    def __init__(self, mdt: Mdt) -> None:
        self.mdt = mdt
        mdt.dne.encode = _encode            # operations across MDTs finished late answer resends
        self.stats = RpcStats()     # per op and per client, with latency histograms (Stats RPC)

    # ---- the common path ------------------------------------------------------------

    def _serve(self, name: str, reply_cls: Callable[..., M], request: Any, fn: Callable[[Cred], M],
               modifying: bool = False, anonymous_ok: bool = False, gated: bool = True) -> M:
        mdt = self.mdt
        mdt.counters[name] += 1
        t0 = time.perf_counter()
        hdr = request.hdr
        rep: M | None
        try:
            check_hdr(hdr)
            if gated and not anonymous_ok and mdt.recovery.blocks():
                raise LpError(errno.EINPROGRESS, "the MDS is recovering; send again shortly")
            if not (anonymous_ok and not hdr.client_id):
                mdt.lockd.check(hdr.client_id, hdr.conn_gen)
                mdt.replies.replied(hdr.client_id, hdr.replied_xid)
            if hdr.cancel_cookies:
                mdt.lockd.cancel(hdr.client_id, list(hdr.cancel_cookies))
            cred = mdt.nodemap.cred(hdr.client_id, cred_from_hdr(hdr))
            if not modifying:
                rep = fn(cred)
            else:
                # Only a resend can have a saved reply (a first sending is never answered twice).
                rep = self._resent(name, reply_cls, hdr) if hdr.resent else None
                if rep is None:
                    first = mdt.begin(hdr.client_id, hdr.xid)
                    rep = None if first else self._resent(name, reply_cls, hdr)
                    if rep is None:
                        try:
                            rep = fn(cred)
                        finally:
                            if first:
                                mdt.end(hdr.client_id, hdr.xid)
        except LpError as e:
            rep = reply_cls(hdr=rep_err(e))
        except sqlite3.Error as e:  # a read on a damaged or failing database (writes are mapped by the store)
            failure = classify(e, mdt.store.dir)
            if failure is None:
                log.exception("%s from %s failed", name, hdr.client_id)
                failure = LpError(errno.EIO, f"internal error in {name}")
            else:
                log.error("%s from %s: %s", name, hdr.client_id, failure.message)
            rep = reply_cls(hdr=rep_err(failure))
        except Exception:  # a bug must not take the server down: log it, answer EIO
            log.exception("%s from %s failed", name, hdr.client_id)
            rep = reply_cls(hdr=rep_err(LpError(errno.EIO, f"internal error in {name}")))
        rep.hdr.last_committed = mdt.committer.last_committed
        us = int((time.perf_counter() - t0) * 1e6)
        mdt.counters[f"{name}_us"] += us   # time spent serving
        self.stats.record(name, hdr.client_id, us, failed=rep.hdr.errno != 0)
        return rep

    def _resent(self, name: str, reply_cls: Callable[..., M], hdr: cpb.ReqHdr) -> M | None:
        saved = self.mdt.store.saved_reply(hdr.client_id, hdr.xid)
        if saved is None:
            return None
        self.mdt.counters["resent"] += 1
        log.info("resent %s xid %d from %s answered from its reply record", name, hdr.xid, hdr.client_id)
        rep = reply_cls()
        rep.ParseFromString(saved[1])
        return rep

    # ---- connections ------------------------------------------------------------------

    def Connect(self, request: cpb.ConnectRequest, context: grpc.ServicerContext) -> cpb.ConnectReply:
        mdt = self.mdt
        mdt.counters["connect"] += 1
        if not request.client_id:
            return cpb.ConnectReply(hdr=rep_err(LpError(errno.EINVAL, "connect without a client id")))
        if request.fsname != mdt.fsname:
            return cpb.ConnectReply(hdr=rep_err(LpError(
                errno.ENOENT, f"no file system {request.fsname!r} here (this MDS serves {mdt.fsname!r})")))
        try:
            awaited = mdt.joined(request.client_id, request.replays)
        except LpError as e:
            return cpb.ConnectReply(hdr=rep_err(e))
        gen = mdt.lockd.connect(request.client_id, peer=context.peer() if context else "")
        log.info("client %s connected (gen %d) from %s", request.client_id, gen,
                 context.peer() if context else "?")
        rep = cpb.ConnectReply(hdr=rep_ok(last_committed=mdt.committer.last_committed), conn_gen=gen,
                               server_uuid=mdt.uuid, fsname=mdt.fsname, root=fid_to_pb(mdt.root),
                               boot_id=mdt.boot_id, server_version=__version__, recovering=awaited)
        if mdt.lane is not None:
            rep.lane_port = mdt.lane.port
            rep.lane_token = mdt.lane.issue(request.client_id)
        return rep

    def Replay(self, request: mpb.ReplayRequest, context: grpc.ServicerContext) -> mpb.ReplayReply:
        """Updates a client kept, sent after a restart; `last` waits a while for recovery's end."""
        def fn(cred: Cred) -> mpb.ReplayReply:
            cid = request.hdr.client_id
            if not self.mdt.recovery.add(cid, request.items, request.last) and request.items:
                raise LpError(errno.ESTALE, "recovery is over or does not wait for this client: replays refused")
            done, failed = self.mdt.recovery.outcome(cid, 5.0) if request.last else (False, [])
            return mpb.ReplayReply(hdr=rep_ok(), done=done, failed=failed)
        return self._serve("replay", mpb.ReplayReply, request, fn, gated=False)

    def ReplayBarrier(self, request: mpb.BarrierRequest, context: grpc.ServicerContext) -> mpb.BarrierReply:
        """For admins (tests of recovery): nothing after now survives the next restart."""
        self.mdt.counters["replay_barrier"] += 1
        try:
            return mpb.BarrierReply(hdr=rep_ok(), transno=self.mdt.store.set_barrier())
        except LpError as e:
            return mpb.BarrierReply(hdr=rep_err(e))

    def replay_handlers(self) -> dict[str, Callable[[Any, Any], Any]]:
        """The handlers recovery runs kept updates through."""
        return {"Intent": self.Intent, "Reint": self.Reint, "Close": self.Close, "AllocSeq": self.AllocSeq,
                "ReintBatch": self.ReintBatch}

    def lane_handlers(self) -> dict[str, Handler]:
        """The lane's handlers: each of MDS_LANE_METHODS, for requests of the connection's own client."""
        svc = mpb.DESCRIPTOR.services_by_name["Mds"]
        out = {}
        for name in MDS_LANE_METHODS:
            req_cls = messages(svc, name)[0]
            out[name] = Handler(req_cls, functools.partial(_on_lane, getattr(self, name)))
        return out

    def Disconnect(self, request: cpb.DisconnectRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        def fn(cred: Cred) -> cpb.SimpleReply:
            cid = request.hdr.client_id
            self.mdt.disconnected(cid)
            self.mdt.lockd.disconnect(cid)
            log.info("client %s disconnected", cid)
            return cpb.SimpleReply(hdr=rep_ok())
        return self._serve("disconnect", cpb.SimpleReply, request, fn, gated=False)

    # ---- intents and updates ----------------------------------------------------------

    def Intent(self, request: mpb.IntentRequest, context: grpc.ServicerContext) -> mpb.IntentReply:
        return self._serve("intent", mpb.IntentReply, request,
                           lambda cred: intent.execute(self.mdt, request, cred, request.hdr.client_id, _encode),
                           modifying=intent.is_modifying(request))

    def Reint(self, request: mpb.ReintRequest, context: grpc.ServicerContext) -> mpb.ReintReply:
        kind = request.op.WhichOneof("op") or "none"
        client_id = request.hdr.client_id

        def fn(cred: Cred) -> mpb.ReintReply:
            self.mdt.nodemap.check_writable(client_id)
            for parent in _parents(request.op, kind):
                self.mdt.wbc.revoke_for(client_id, parent)
            rep = reint.execute(self.mdt, request, cred, client_id, _encode)
            if request.want_wbc and kind == "mkdir" and rep.attr.fid.seq:
                wbc = self.mdt.wbc.try_grant(client_id, fid_from_pb(rep.attr.fid))
                if wbc is not None:
                    rep.wbc_lock.CopyFrom(wbc)
            return rep
        return self._serve(kind, mpb.ReintReply, request, fn, modifying=True)

    def ReintBatch(self, request: mpb.ReintBatchRequest, context: grpc.ServicerContext) -> mpb.ReintBatchReply:
        # Not answered from reply rows: the per-client record seqs make a resend (also after
        # a restart) skip what was applied and execute the rest, each record once.
        def fn(cred: Cred) -> mpb.ReintBatchReply:
            if request.records:
                self.mdt.nodemap.check_writable(request.hdr.client_id)
            return replay.apply_batch(self.mdt, request, request.hdr.client_id)
        return self._serve("reint_batch", mpb.ReintBatchReply, request, fn)

    def Close(self, request: mpb.CloseRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        def fn(cred: Cred) -> cpb.SimpleReply:
            heads: list[mpb.CloseRequest | mpb.CloseItem] = [request, *request.more]
            items = [(m.open_handle, (m.size, m.blocks) if m.has_size else None, m.size_lost) for m in heads]

            def closes(tx: Tx) -> bool:
                if request.keep_open:           # fsync: the sizes are recorded, the handles stay
                    for handle, size, _ in items:
                        if size is not None:
                            tx.report_size(handle, size)
                    return False
                return any([tx.close(handle, size, size_lost=lost) for handle, size, lost in items])
            rep = cpb.SimpleReply(hdr=rep_ok())
            destroyed, transno = self.mdt.store.write(closes,
                                                      client_id=request.hdr.client_id, xid=request.hdr.xid,
                                                      encode=lambda r, t: _encode(rep, t))
            if destroyed:
                self.mdt.osp.wake()
            if request.keep_open:
                self.mdt.committer.commit_now()     # an fsync's size is durable when it returns
            rep.hdr.transno = transno               # the client keeps the close for replay until committed
            return rep
        return self._serve("close", cpb.SimpleReply, request, fn, modifying=True)

    def Capas(self, request: mpb.CapaRequest, context: grpc.ServicerContext) -> mpb.CapaReply:
        return self._serve("capas", mpb.CapaReply, request, lambda cred: capas.reply(self.mdt, request, cred))

    def AllocSeq(self, request: mpb.SeqRequest, context: grpc.ServicerContext) -> mpb.SeqReply:
        from lustrepy.common.fid import SEQ_WIDTH

        def fn(cred: Cred) -> mpb.SeqReply:
            owner = request.hdr.client_id

            def alloc(tx: Tx) -> mpb.SeqReply:
                return mpb.SeqReply(hdr=rep_ok(), seq=tx.alloc_seq(owner), width=SEQ_WIDTH)

            rep, _ = self.mdt.store.write(alloc, client_id=owner, xid=request.hdr.xid, encode=_encode)
            self.mdt.committer.commit_now()     # durable before anyone names files from it
            return rep
        return self._serve("alloc_seq", mpb.SeqReply, request, fn, modifying=True)

    def Sync(self, request: mpb.SyncRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        def fn(cred: Cred) -> cpb.SimpleReply:
            self.mdt.committer.commit_now()
            return cpb.SimpleReply(hdr=rep_ok())
        return self._serve("sync", cpb.SimpleReply, request, fn)

    # ---- reads ----------------------------------------------------------------------

    def Readdir(self, request: mpb.ReaddirRequest, context: grpc.ServicerContext) -> mpb.ReaddirReply:
        def fn(cred: Cred) -> mpb.ReaddirReply:
            fid = fid_from_pb(request.fid)
            self.mdt.wbc.revoke_for(request.hdr.client_id, fid)
            tx = self.mdt.store.read()
            a = tx.getattr(fid)
            if not stat.S_ISDIR(a.mode):
                raise LpError(errno.ENOTDIR, "not a directory")
            perm.require(cred, a, perm.R)
            n = max(1, min(request.max_entries or READDIR_MAX, READDIR_MAX))
            rows = tx.readdir(fid, request.cookie, n + 1)
            rep = mpb.ReaddirReply(hdr=rep_ok(), eof=len(rows) <= n)
            several = self.mdt.mdts.several
            for ent, attr in rows[:n]:
                e = rep.entries.add(name=ent.name, fid=fid_to_pb(ent.fid), type=ent.type, cookie=ent.cookie)
                if request.with_attrs:
                    e.attr.CopyFrom(attr_pb(tx, attr))
                if several and remote.remote_mdt(tx, ent.fid) is not None:
                    e.remote = True         # attr is the stub's: type and owner, not the inode's
            return rep
        return self._serve("readdir", mpb.ReaddirReply, request, fn)

    def Getxattr(self, request: mpb.GetxattrRequest, context: grpc.ServicerContext) -> mpb.GetxattrReply:
        def fn(cred: Cred) -> mpb.GetxattrReply:
            tx = self.mdt.store.read()
            fid = fid_from_pb(request.fid)
            value = _made_xattr(tx, fid, request.name)
            return mpb.GetxattrReply(hdr=rep_ok(), value=tx.getxattr(cred, fid, request.name) if value is None
                                     else value)
        return self._serve("getxattr", mpb.GetxattrReply, request, fn)

    def Listxattr(self, request: mpb.ListxattrRequest, context: grpc.ServicerContext) -> mpb.ListxattrReply:
        def fn(cred: Cred) -> mpb.ListxattrReply:
            tx = self.mdt.store.read()
            fid = fid_from_pb(request.fid)
            names = list(tx.listxattr(cred, fid))
            a = tx.getattr(fid)
            if stat.S_ISDIR(a.mode) or (stat.S_ISREG(a.mode) and tx.get_layout(fid) is not None):
                names.append(LOV_XATTR)
            return mpb.ListxattrReply(hdr=rep_ok(), names=names)
        return self._serve("listxattr", mpb.ListxattrReply, request, fn)

    def Readlink(self, request: mpb.ReadlinkRequest, context: grpc.ServicerContext) -> mpb.ReadlinkReply:
        return self._serve("readlink", mpb.ReadlinkReply, request, lambda cred: mpb.ReadlinkReply(
            hdr=rep_ok(), target=self.mdt.store.read().readlink(fid_from_pb(request.fid))))

    def Statfs(self, request: mpb.StatfsRequest, context: grpc.ServicerContext) -> mpb.MdsStatfsReply:
        return self._serve("statfs", mpb.MdsStatfsReply, request, lambda cred: _statfs(self.mdt), anonymous_ok=True)

    def Info(self, request: mpb.MdsInfoRequest, context: grpc.ServicerContext) -> mpb.MdsInfoReply:
        def fn(cred: Cred) -> mpb.MdsInfoReply:
            mdt = self.mdt
            counters = dict(mdt.counters)
            counters.update({f"lock_{k}": int(v) for k, v in mdt.lockd.statistics().items()
                             if isinstance(v, (int, float))})
            counters["commits"] = mdt.committer.syncs
            counters.update(mdt.wbc.statistics())
            counters.update(mdt.replies.statistics())
            return mpb.MdsInfoReply(
                hdr=rep_ok(), uuid=mdt.uuid, fsname=mdt.fsname, address=mdt.address,
                uptime_s=time.monotonic() - mdt.started, version=__version__,
                clients=len(mdt.lockd.exports()), last_transno=mdt.store.last_transno(),
                last_committed=mdt.committer.last_committed, counters=counters,
                recovery=mdt.recovery.state_pb())
        # Info is for admins: no export needed
        self.mdt.counters["info"] += 1
        try:
            return fn(Cred())
        except Exception:
            log.exception("info failed")
            return mpb.MdsInfoReply(hdr=rep_err(LpError(errno.EIO, "internal error in info")))

    def Stats(self, request: spb.StatsRequest, context: grpc.ServicerContext) -> spb.StatsReply:
        """For admins: no export needed. Per op and per client RPC statistics of this MDS."""
        self.mdt.counters["stats"] += 1
        try:
            connected = sum(not e.evicted for e in self.mdt.lockd.exports())
            return stats_reply(f"{self.mdt.fsname}-MDT0000", self.stats.snapshot(), connected)
        except Exception:
            log.exception("stats failed")
            return spb.StatsReply(hdr=rep_err(LpError(errno.EIO, "internal error in stats")))

    def WbcInfo(self, request: mpb.WbcInfoRequest, context: grpc.ServicerContext) -> mpb.WbcInfoReply:
        def fn(cred: Cred) -> mpb.WbcInfoReply:
            fid = fid_from_pb(request.fid)
            if not stat.S_ISDIR(self.mdt.store.read().getattr(fid).mode):
                raise LpError(errno.ENOTDIR, "WBC state is kept for directories")
            i = self.mdt.wbc.info(fid)
            return mpb.WbcInfoReply(hdr=rep_ok(), mode=i.mode, holder=i.holder, contended_for_s=i.contended_for_s,
                                    conflicts=i.conflicts, grants=i.grants, revocations=i.revocations)
        return self._serve("wbc_info", mpb.WbcInfoReply, request, fn)

    # ---- lfsck (lfsctl lfsck): for admins, no export needed ------------------------------

    def LfsckScan(self, request: mpb.LfsckScanRequest, context: grpc.ServicerContext) -> Iterator[mpb.LfsckScanPage]:
        self.mdt.counters["lfsck_scan"] += 1
        try:
            yield from lfsck_wire.scan(self.mdt, request)
        except LpError as e:
            yield mpb.LfsckScanPage(hdr=rep_err(e))
        except Exception:
            log.exception("lfsck scan failed")
            yield mpb.LfsckScanPage(hdr=rep_err(LpError(errno.EIO, "internal error in lfsck_scan")))

    def LfsckVerify(self, request: mpb.LfsckVerifyRequest, context: grpc.ServicerContext) -> mpb.LfsckVerifyReply:
        return self._admin("lfsck_verify", mpb.LfsckVerifyReply, lambda: lfsck_wire.verify(self.mdt, request))

    def LfsckRepair(self, request: mpb.LfsckRepairRequest, context: grpc.ServicerContext) -> mpb.LfsckRepairReply:
        return self._admin("lfsck_repair", mpb.LfsckRepairReply, lambda: lfsck_wire.repair(self.mdt, request))

    def MirrorStatus(self, request: mpb.MirrorStatusRequest, context: grpc.ServicerContext) -> mpb.MirrorStatusReply:
        return self._admin("mirror_status", mpb.MirrorStatusReply, lambda: mirror_status(self.mdt))

    def MirrorResync(self, request: mpb.MirrorResyncRequest, context: grpc.ServicerContext) -> cpb.SimpleReply:
        def fn() -> cpb.SimpleReply:
            self.mdt.resync.request(fid_from_pb(request.fid))
            return cpb.SimpleReply(hdr=rep_ok())
        return self._admin("mirror_resync", cpb.SimpleReply, fn)

    def MirrorChange(self, request: mpb.MirrorChangeRequest, context: grpc.ServicerContext) -> mpb.ReintReply:
        def fn() -> mpb.ReintReply:
            if request.op.action not in (mpb.MirrorOp.EXTEND, mpb.MirrorOp.SPLIT):
                raise LpError(errno.EINVAL, "lfsctl changes mirrors by extend or split")
            rep = reint.run(self.mdt, mpb.ReintOp(mirror=request.op), Cred(), "")[1]
            if request.op.action == mpb.MirrorOp.EXTEND:
                self.mdt.resync.request(fid_from_pb(request.op.fid))
            return rep
        return self._admin("mirror_change", mpb.ReintReply, fn)

    def _admin(self, name: str, reply_cls: Callable[..., M], fn: Callable[[], M]) -> M:
        """An admin RPC: counted, no export needed, failures as the reply's errno."""
        self.mdt.counters[name] += 1
        try:
            return fn()
        except LpError as e:
            return reply_cls(hdr=rep_err(e))
        except Exception:
            log.exception("%s failed", name)
            return reply_cls(hdr=rep_err(LpError(errno.EIO, f"internal error in {name}")))

    # ---- OSTs ---------------------------------------------------------------------------

    def Announce(self, request: mpb.OstAnnounce, context: grpc.ServicerContext) -> mpb.OstAnnounceReply:
        mdt = self.mdt
        mdt.counters["announce"] += 1
        try:
            mdt.announce(request.fsname, request.index, request.uuid, request.address,
                         statfs_from_pb(request.statfs), request.boot_id,
                         placement=(request.node[:64] or request.address.rpartition(":")[0], request.failure_domain[:64]))
        except LpError as e:
            log.warning("refused OST announce from %s: %s", request.uuid, e.message)
            return mpb.OstAnnounceReply(hdr=rep_err(e))
        except Exception:
            log.exception("announce from %s failed", request.uuid)
            return mpb.OstAnnounceReply(hdr=rep_err(LpError(errno.EIO, "internal error in announce")))
        return mpb.OstAnnounceReply(hdr=rep_ok(), mds_uuid=mdt.uuid, heartbeat_interval_s=mdt.cfg.heartbeat_interval,
                                    capa_keys=capas.keys_pb(mdt), **self.announce_extras())

    # ---- tunables (lfsctl get-param / set-param) -------------------------------------------

    params: Registry | None = None       # the server's tunables, set by the daemon

    def GetParam(self, request: mpb.ParamGetRequest, context: grpc.ServicerContext) -> mpb.ParamReply:
        return self._params("get_param", lambda reg: reg.get(list(request.patterns)))

    def SetParam(self, request: mpb.ParamSetRequest, context: grpc.ServicerContext) -> mpb.ParamReply:
        return self._params("set_param", lambda reg: reg.set(
            [(s.name, None if s.reset else s.value) for s in request.settings]))

    def _params(self, name: str, fn: Callable[[Registry], list[ParamValue]]) -> mpb.ParamReply:
        """For admins: no export needed. Bad names and values come back as the reply's errno."""
        self.mdt.counters[name] += 1
        try:
            if self.params is None:
                raise LpError(errno.ENOSYS, "this MDS serves no tunables")
            return mpb.ParamReply(hdr=rep_ok(), params=[mpb.Param(**dataclasses.asdict(v)) for v in fn(self.params)])
        except LpError as e:
            return mpb.ParamReply(hdr=rep_err(e))
        except Exception:
            log.exception("%s failed", name)
            return mpb.ParamReply(hdr=rep_err(LpError(errno.EIO, f"internal error in {name}")))


def _parents(op: mpb.ReintOp, kind: str) -> list[Fid]:
    """The directories whose entries an update changes."""
    if kind in ("create", "mkdir", "symlink", "link", "unlink", "rmdir"):
        return [fid_from_pb(getattr(op, kind).parent)]
    if kind == "rename":
        return [fid_from_pb(op.rename.src_parent), fid_from_pb(op.rename.dst_parent)]
    return []


def mirror_status(mdt: Mdt) -> mpb.MirrorStatusReply:
    st = mdt.resync.status()
    rep = mpb.MirrorStatusReply(hdr=rep_ok(), degraded_files=st.degraded_files, copied_files=st.copied_files,
                                copied_bytes=st.copied_bytes, failures=st.failures,
                                resync_delay_s=st.resync_delay_s, bandwidth=st.bandwidth)
    for c in st.copying:
        rep.copying.add(fid=fid_to_pb(c.fid), mirror_id=c.mirror_id, why=c.why, bytes_total=c.total,
                        bytes_done=c.done, rate=c.rate)
    for fid, why in st.waiting:
        rep.waiting.add(fid=fid_to_pb(fid), why=why)
    return rep


def _on_lane(fn: Callable[[Any, Any], Any], req: Any, peer: str) -> Any:
    """A lane request to its gRPC handler: the lane has checked that it is the connection's own
    client's (rpc.lane)."""
    return fn(req, None)
