"""The metadata client: requests to the MDS with XIDs, resends and reply headers.

Synchronous and thread-safe (trio code calls it through lustrepy.rpc.bridge).
Every request gets a fresh XID; an update whose reply was lost to transport
trouble is sent again with the SAME XID, so the MDS answers it from its
reply-reconstruction record and never executes it twice. POSIX failures
raise LpError with the reply's errno.
"""

from __future__ import annotations

import errno
import itertools
import logging
import threading
import time
import uuid as uuidlib
from typing import Any, Callable

from lustrepy.common.capa import Capa
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.common.protocol import IT_MODIFYING
from lustrepy.common.records import Cred
from lustrepy.client.replaylist import ReplayList
from lustrepy.ldlm.request import LockClient
from lustrepy.common import nids
from lustrepy.rpc import inline
from lustrepy.rpc.channel import DEFAULT_TIMEOUT, call, make_channel
from lustrepy.rpc.lane import MDS_LANE_METHODS, LaneClient, LaneRefused
from lustrepy.rpc.convert import capa_from_pb, check_rep, fid_from_pb, fid_to_pb, layout_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc

log = logging.getLogger(__name__)

_TRANSPORT = (errno.ENOTCONN, errno.ETIMEDOUT, errno.ECANCELED)
SIZE_LOST = -1      # a size in close_handles: the writer wrote but could not learn the size
RECOVERY_WAIT = 300.0   # seconds a request waits for the MDS's recovery to end before failing
REPLAY_CHUNK = 512      # kept updates per Replay request
LANE_CONNECT = 2.0      # seconds a request-lane connect may take before the request goes on gRPC


class Mdc:
    def __init__(self, address: str, fsname: str, *, client_id: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, resend_for: float = 30.0,
                 on_blocking: Callable[[cpb.LockDesc], None] | None = None, with_locks: bool = False,
                 auto_reconnect: bool = True, lru_size: int = 256, lane: bool = True) -> None:
        self.address = address
        self.fsname = fsname
        self.client_id = client_id or f"client-{uuidlib.uuid4()}"
        self.timeout = timeout
        self.resend_for = resend_for
        self.channel = make_channel(address, "mds")
        self.grpc_stub = mds_pb2_grpc.MdsStub(self.channel)
        self.stub: Any = self.grpc_stub         # a LaneStub while the request lane is up
        self.use_lane = lane
        self.conn_gen = 0
        self.root: Fid | None = None
        self.server_uuid = ""
        self.last_committed = 0
        self._xid = itertools.count(int(time.time() * 1000) << 16)
        self._unreplied: set[int] = set()      # xids sent and not yet answered or given up (under _lock)
        self.replay = ReplayList()              # updates answered and not yet committed
        self.boot_id = 0                        # of the MDS instance connected to
        self.recovery_wait = RECOVERY_WAIT
        self._lock = threading.Lock()
        self._reconnect_mu = threading.Lock()   # one reconnect at a time; the others use its export
        self._closing = False
        self.auto_reconnect = auto_reconnect
        self.on_reconnect: Callable[[], None] | None = None         # before connecting again
        self.on_reconnected: Callable[[], None] | None = None       # after (must not block: a request waits)
        self.locks: LockClient | None = None
        if with_locks or on_blocking is not None:
            self.locks = LockClient(self.channel, self.client_id, on_blocking=on_blocking or (lambda lock: None),
                                    on_evicted=self._export_gone, lru_size=lru_size)

    # ---- connection ------------------------------------------------------------------

    def connect(self) -> cpb.ConnectReply:
        """Connect (again); after an MDS restart, replay the updates it may have lost first."""
        deadline = time.monotonic() + self.recovery_wait
        while True:
            kept = len(self.replay)
            rep = call(self.grpc_stub.Connect, cpb.ConnectRequest(client_id=self.client_id, fsname=self.fsname,
                                                                  replays=kept), timeout=self.timeout)
            if rep.hdr.errno != errno.EINPROGRESS or time.monotonic() > deadline:
                break
            inline.sleep(0.5)               # the MDS recovers with the clients it knew: wait
        check_rep(rep.hdr)
        self._set_lane(rep)
        self.conn_gen = rep.conn_gen
        self.root = fid_from_pb(rep.root)
        self.server_uuid = rep.server_uuid
        restarted = self.boot_id not in (0, rep.boot_id)
        self.boot_id = rep.boot_id
        if self.locks is not None:
            self.locks.attach(self.conn_gen)
            self.locks.wait_attached(self.timeout)
        if rep.recovering:
            self._replay_kept()
        self.replay.committed(rep.hdr.last_committed, lost=restarted and not rep.recovering)
        self.last_committed = max(self.last_committed, rep.hdr.last_committed)
        return rep

    # ---- replay -----------------------------------------------------------------------

    def kept(self) -> int:
        """Updates kept for replay (answered by the MDS, not yet committed)."""
        return len(self.replay)

    def _replay_kept(self) -> None:
        """Send every kept update to the recovering MDS, in transno order, then wait for its
        recovery to end; updates that no longer apply are logged and remembered."""
        items = self.replay.items()
        log.warning("MDS restarted: replaying %d updates", len(items))
        chunks = [items[i:i + REPLAY_CHUNK] for i in range(0, len(items), REPLAY_CHUNK)] or [[]]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            rep = self._replay_call(chunk, last)
        deadline = time.monotonic() + self.recovery_wait
        while not rep.done and time.monotonic() < deadline:
            rep = self._replay_call([], True)
        if not rep.done:
            raise LpError(errno.ETIMEDOUT, "the MDS's recovery did not end")
        self.replay.failures(list(rep.failed))

    def _replay_call(self, items: list[mpb.ReplayItem], last: bool) -> mpb.ReplayReply:
        hdr = cpb.ReqHdr(client_id=self.client_id, conn_gen=self.conn_gen, xid=next(self._xid))
        rep = call(self.grpc_stub.Replay, mpb.ReplayRequest(hdr=hdr, items=items, last=last),
                   timeout=max(self.timeout, 10.0))
        check_rep(rep.hdr)
        return rep

    def _set_lane(self, rep: cpb.ConnectReply) -> None:
        """Requests go on the request lane this Connect authorised, when the MDS serves one."""
        old = self.stub
        self.stub = self.grpc_stub
        if isinstance(old, LaneStub):
            old.lane.close()
        if self.use_lane and rep.lane_port:
            hosts = nids.hosts(self.address)
            lane = LaneClient(hosts, rep.lane_port, rep.lane_token, _MDS_SERVICE,
                              connect_timeout=min(self.timeout, LANE_CONNECT))
            self.stub = LaneStub(lane, self.grpc_stub)

    def close(self) -> None:
        self._closing = True
        if self.conn_gen:
            try:
                self.request(self.stub.Disconnect, cpb.DisconnectRequest, timeout=5, retry=False)
            except LpError:
                pass
        if self.locks is not None:
            self.locks.close()
        if isinstance(self.stub, LaneStub):
            self.stub.lane.close()
        self.channel.close()

    def hdr(self, cred: Cred | None = None, xid: int | None = None) -> cpb.ReqHdr:
        cred = cred or Cred()
        with self._lock:
            x = next(self._xid) if xid is None else xid
            self._unreplied.add(x)
            replied = min(self._unreplied) - 1
        h = cpb.ReqHdr(client_id=self.client_id, conn_gen=self.conn_gen, xid=x, uid=cred.uid, gid=cred.gid,
                       groups=list(cred.groups), replied_xid=replied)
        if self.locks is not None:
            h.cancel_cookies.extend(self.locks.take_early_cancels())
        return h

    def request(self, method, req_cls, cred: Cred | None = None, *, resend: bool = False, retry: bool = True,
                timeout: float | None = None, on_reply: Callable[[Any], None] | None = None,
                check: bool = True, **fields: Any) -> Any:
        """Send one request; transport trouble sends it again with the same XID (for an update,
        resend=True, the MDS then answers from its saved reply), until `resend_for` has passed.

        A reply saying this client is not connected (evicted, or the MDS restarted) makes it
        reconnect once and send the request again on the new connection.
        """
        hdr = self.hdr(cred)
        try:
            req = req_cls(hdr=hdr, **fields)
            rep = self._exchange(method, req, timeout, on_reply, check, retry)
            if resend:
                self.replay.keep(req, rep)
            return rep
        finally:
            with self._lock:
                self._unreplied.discard(hdr.xid)    # answered or given up: never sent again

    def _exchange(self, method, req, timeout: float | None, on_reply: Callable[[Any], None] | None,
                  check: bool, retry: bool) -> Any:
        hdr = req.hdr
        deadline = time.monotonic() + self.resend_for
        recovered = time.monotonic() + self.recovery_wait
        reconnected = False
        while True:
            try:
                rep = call(method, req, timeout=timeout or self.timeout)
            except LpError as e:
                # Reads are sent again too: a restarting MDS makes them wait, not fail.
                if not retry or e.errno not in _TRANSPORT or time.monotonic() > deadline:
                    raise
                log.info("resending xid %d after %s", hdr.xid, e)
                hdr.resent = True           # the MDS looks for its saved reply
                inline.sleep(0.2)
                continue
            if rep.hdr.errno == errno.ENOTCONN and not reconnected and self.conn_gen and self.auto_reconnect:
                reconnected = True
                inline.offload(self.reconnect, req.hdr.conn_gen)
                req.hdr.conn_gen = self.conn_gen
                continue
            if rep.hdr.errno == errno.EINPROGRESS and time.monotonic() < recovered:
                inline.sleep(0.2)           # the MDS replays what a restart lost first
                continue
            if rep.hdr.last_committed > self.last_committed:
                self.last_committed = rep.hdr.last_committed
                self.replay.committed(rep.hdr.last_committed)
            if on_reply is not None:
                on_reply(rep)
            if check:
                check_rep(rep.hdr)
            return rep

    def reconnect(self, seen_gen: int | None = None) -> None:
        """Connect again after an eviction or an MDS restart; every lock (and what it cached)
        is gone. Threads that find the export gone together connect once: a caller whose
        request went with `seen_gen` uses the export another made since."""
        with self._reconnect_mu:
            if seen_gen is not None and seen_gen != self.conn_gen:
                return
            log.warning("reconnecting to %s as %s", self.address, self.client_id)
            if self.on_reconnect is not None:
                self.on_reconnect()
            self.connect()
        if self.on_reconnected is not None:
            self.on_reconnected()

    def _export_gone(self) -> None:
        """The lock server says our export is gone (evicted, or the MDS restarted): connect
        again now rather than at the next request, so an idle client's open files are known
        to the MDS again within its recovery window (a lock-client thread runs this)."""
        if self._closing or not self.auto_reconnect or not self.conn_gen or self.locks is None:
            return
        gen = self.locks.conn_gen
        if not self.locks.evicted:
            return                          # reconnected meanwhile
        try:
            self.reconnect(gen)
        except LpError as e:
            log.warning("reconnecting to %s failed (the next request tries again): %s", self.address, e.message)

    @staticmethod
    def raise_for(rep: Any) -> None:
        check_rep(rep.hdr)

    # ---- intents -----------------------------------------------------------------------

    def intent_raw(self, ops: int, cred: Cred | None = None, **kw: Any) -> mpb.IntentReply:
        """An intent whose reply is returned even when it carries an errno (see raise_for)."""
        return self.intent(ops, cred, check=False, **kw)

    def intent(self, ops: int, cred: Cred | None = None, *, parent: Fid | None = None, name: bytes = b"",
               fid: Fid | None = None, open_flags: int = 0, mode: int = 0, layout: Layout | None = None,
               new_fid: Fid | None = None, lock_mode: int = 0, ibits: int = 0,
               check: bool = True, want_wbc: bool = False) -> mpb.IntentReply:
        f: dict[str, Any] = dict(ops=ops, name=name, open_flags=open_flags, create_mode=mode,
                                 lock_mode=lock_mode, ibits=ibits, want_wbc=want_wbc)
        if parent is not None:
            f["parent"] = fid_to_pb(parent)
        if fid is not None:
            f["fid"] = fid_to_pb(fid)
        if layout is not None:
            f["layout"] = layout_to_pb(layout)
            f["has_layout"] = True
        if new_fid is not None:
            f["new_fid"] = fid_to_pb(new_fid)
        modifying = bool(ops & IT_MODIFYING)
        return self.request(self.stub.Intent, mpb.IntentRequest, cred, resend=modifying, on_reply=self._adopt,
                            check=check, **f)

    def _adopt(self, rep: Any) -> None:
        """Register the locks a reply granted (also with a negative lookup's errno)."""
        if self.locks is not None:
            if rep.lock.cookie:
                self.locks.adopt(rep.lock)
            wbc = getattr(rep, "wbc_lock", None)
            if wbc is not None and wbc.cookie:
                self.locks.adopt(wbc)

    # ---- reint --------------------------------------------------------------------------

    def reint(self, cred: Cred | None = None, *, want_wbc: bool = False, **op: Any) -> mpb.ReintReply:
        return self.request(self.stub.Reint, mpb.ReintRequest, cred, resend=True, on_reply=self._adopt,
                            op=mpb.ReintOp(**op), want_wbc=want_wbc)

    def mkdir(self, parent: Fid, name: bytes, mode: int = 0o755, cred: Cred | None = None, *,
              want_wbc: bool = False, mdt_index: int | None = None, stripe_count: int = 0,
              stripe_hash: str = "") -> mpb.ReintReply:
        """mkdir; with mdt_index, the directory's inode goes to that MDT (lfsctl mkdir -i); with
        stripe_count > 1, its entries are striped over that many MDTs (lfsctl mkdir -c)."""
        op = mpb.MkdirOp(parent=fid_to_pb(parent), name=name, mode=mode, stripe_count=stripe_count,
                         stripe_hash=stripe_hash)
        if mdt_index is not None:
            op.remote, op.mdt_index = True, mdt_index
        return self.reint(cred, mkdir=op, want_wbc=want_wbc)

    def create(self, parent: Fid, name: bytes, mode: int = 0o100644, cred: Cred | None = None,
               layout: Layout | None = None, rdev: int = 0) -> mpb.ReintReply:
        op = mpb.CreateOp(parent=fid_to_pb(parent), name=name, mode=mode, rdev=rdev)
        if layout is not None:
            op.layout.CopyFrom(layout_to_pb(layout))
            op.has_layout = True
        return self.reint(cred, create=op)

    def symlink(self, parent: Fid, name: bytes, target: bytes, cred: Cred | None = None) -> mpb.ReintReply:
        return self.reint(cred, symlink=mpb.SymlinkOp(parent=fid_to_pb(parent), name=name, target=target))

    def link(self, fid: Fid, parent: Fid, name: bytes, cred: Cred | None = None) -> mpb.ReintReply:
        return self.reint(cred, link=mpb.LinkOp(fid=fid_to_pb(fid), parent=fid_to_pb(parent), name=name))

    def unlink(self, parent: Fid, name: bytes, cred: Cred | None = None) -> mpb.ReintReply:
        return self.reint(cred, unlink=mpb.UnlinkOp(parent=fid_to_pb(parent), name=name))

    def rmdir(self, parent: Fid, name: bytes, cred: Cred | None = None) -> mpb.ReintReply:
        return self.reint(cred, rmdir=mpb.RmdirOp(parent=fid_to_pb(parent), name=name))

    def rename(self, sp: Fid, sn: bytes, dp: Fid, dn: bytes, flags: int = 0,
               cred: Cred | None = None) -> mpb.ReintReply:
        return self.reint(cred, rename=mpb.RenameOp(src_parent=fid_to_pb(sp), src_name=sn, dst_parent=fid_to_pb(dp),
                                                    dst_name=dn, flags=flags))

    def setattr(self, fid: Fid, cred: Cred | None = None, **attrs: Any) -> mpb.ReintReply:
        return self.reint(cred, setattr=mpb.SetattrOp(fid=fid_to_pb(fid), **attrs))

    def setxattr(self, fid: Fid, name: bytes, value: bytes, flags: int = 0,
                 cred: Cred | None = None) -> mpb.ReintReply:
        return self.reint(cred, setxattr=mpb.SetxattrOp(fid=fid_to_pb(fid), name=name, value=value, flags=flags))

    def removexattr(self, fid: Fid, name: bytes, cred: Cred | None = None) -> mpb.ReintReply:
        return self.reint(cred, removexattr=mpb.RemovexattrOp(fid=fid_to_pb(fid), name=name))

    def reint_batch(self, records: list[mpb.UpdateRecord], after_seq: int | None = None) -> mpb.ReintBatchReply:
        """Send update records (ascending seq) as one ReintBatch; with `after_seq`, a chained one
        (this MDT's records, the first following its record after_seq). The reply is returned
        even when it carries an errno, so the caller sees failed_seq and applied_seq (raise_for
        raises it). A resend after transport trouble is safe: the MDS skips records done."""
        chain: dict[str, Any] = {} if after_seq is None else {"chained": True, "after_seq": after_seq}
        return self.request(self.stub.ReintBatch, mpb.ReintBatchRequest, resend=True, check=False,
                            records=records, **chain)

    # ---- reads and the rest ----------------------------------------------------------------

    def readdir(self, fid: Fid, cookie: int = 0, max_entries: int = 1024, with_attrs: bool = False,
                cred: Cred | None = None) -> mpb.ReaddirReply:
        return self.request(self.stub.Readdir, mpb.ReaddirRequest, cred, fid=fid_to_pb(fid), cookie=cookie,
                            max_entries=max_entries, with_attrs=with_attrs)

    def listdir(self, fid: Fid, cred: Cred | None = None) -> list[mpb.DirEntry]:
        return list_all(self.readdir, fid, cred)

    def getxattr(self, fid: Fid, name: bytes, cred: Cred | None = None) -> bytes:
        return self.request(self.stub.Getxattr, mpb.GetxattrRequest, cred, fid=fid_to_pb(fid), name=name).value

    def listxattr(self, fid: Fid, cred: Cred | None = None) -> list[bytes]:
        return list(self.request(self.stub.Listxattr, mpb.ListxattrRequest, cred, fid=fid_to_pb(fid)).names)

    def readlink(self, fid: Fid, cred: Cred | None = None) -> bytes:
        return self.request(self.stub.Readlink, mpb.ReadlinkRequest, cred, fid=fid_to_pb(fid)).target

    def close_handle(self, handle: int, cred: Cred | None = None, size: int | None = None) -> None:
        """Close an MDS open handle; a writer reports the size it knows (size on MDS)."""
        self.close_handles([(handle, size)], cred)

    def close_handles(self, items: list[tuple[int, int | None]], cred: Cred | None = None, *,
                      keep_open: bool = False) -> None:
        """Close several MDS open handles, (handle, size known or None or SIZE_LOST), in one RPC.
        keep_open (fsync): the sizes are recorded and committed, the handles stay open."""
        (handle, size), *rest = items
        more = [mpb.CloseItem(open_handle=h, **_size_fields(sz)) for h, sz in rest]
        self.request(self.stub.Close, mpb.CloseRequest, cred, resend=True, open_handle=handle, more=more,
                     keep_open=keep_open, **_size_fields(size))

    def report_size(self, handle: int, size: int, cred: Cred | None = None) -> None:
        """A writer's fsync: the MDS records the size and commits before answering."""
        self.close_handles([(handle, size)], cred, keep_open=True)

    def alloc_seq(self) -> tuple[int, int]:
        rep = self.request(self.stub.AllocSeq, mpb.SeqRequest, resend=True)
        return rep.seq, rep.width

    def sync(self) -> int:
        rep = self.request(self.stub.Sync, mpb.SyncRequest)
        return rep.hdr.last_committed

    def capas(self, fid: Fid, write: bool) -> list[Capa]:
        """Capabilities for the objects of a file (client.capas)."""
        rep = self.request(self.stub.Capas, mpb.CapaRequest, fid=fid_to_pb(fid), write=write)
        return [capa_from_pb(c) for c in rep.capas]

    def wbc_info(self, fid: Fid) -> mpb.WbcInfoReply:
        return self.request(self.stub.WbcInfo, mpb.WbcInfoRequest, fid=fid_to_pb(fid))

    def statfs(self) -> mpb.MdsStatfsReply:
        return self.request(self.stub.Statfs, mpb.StatfsRequest)

    def info(self) -> mpb.MdsInfoReply:
        return self.request(self.stub.Info, mpb.MdsInfoRequest)


_MDS_SERVICE = mpb.DESCRIPTOR.services_by_name["Mds"]


class LaneStub:
    """The Mds stub over the request lane: the lane's methods on it, the rest on gRPC. A call
    the lane refuses (an unknown token: the MDS restarted) or loses the connection of goes on
    gRPC, whose reply says whether to connect again."""

    def __init__(self, lane: LaneClient, grpc_stub: Any) -> None:
        self.lane = lane
        self._grpc = grpc_stub
        for name in MDS_LANE_METHODS:
            setattr(self, name, self._method(name))

    def _method(self, name: str) -> Callable[..., Any]:
        on_lane = self.lane.method(_MDS_SERVICE, name)
        on_grpc = getattr(self._grpc, name)

        def call(request: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
            try:
                return on_lane(request, timeout=timeout)
            except LaneRefused as e:
                log.info("request lane refused (%s): %s on gRPC", e.message, name)
            except LpError as e:
                if e.errno != errno.ENOTCONN:
                    raise
                # Cut (an eviction) or lost (a restart): gRPC says which, in its reply's header
                # or as transport trouble. The request may have run: a resend is marked as one.
                log.info("%s: %s on gRPC", e.message, name)
                request.hdr.resent = True
            return inline.offload(on_grpc, request, timeout=timeout)
        call.cooperative = True     # type: ignore[attr-defined]  # see rpc.channel.call
        return call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grpc, name)


def _size_fields(size: int | None) -> dict[str, Any]:
    if size is None:
        return {}
    if size == SIZE_LOST:
        return {"size_lost": True}
    return {"has_size": True, "size": size, "blocks": (size + 511) // 512}


def list_all(readdir: Callable[..., mpb.ReaddirReply], fid: Fid, cred: Cred | None) -> list[mpb.DirEntry]:
    """Every entry of a directory, page after page of `readdir`."""
    out: list[mpb.DirEntry] = []
    cookie = 0
    while True:
        rep = readdir(fid, cookie, cred=cred)
        out.extend(rep.entries)
        if rep.eof or not rep.entries:
            return out
        cookie = rep.entries[-1].cookie
