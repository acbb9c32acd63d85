"""One kept update replayed during recovery (recovery_window.py): decoded, made to
reproduce the results its first reply gave, and run through the service's own
handler, as the request first ran.

A replay runs with its original transno (a batch of update records: every record
it applies again takes the batch's transno) and gets back the FIDs, open handle,
objects and sequence its client was told (store.forcing); it is re-run with
the client's current connection and grants no lock (a lock its handler grants
is cancelled: the client holds none after a restart). Its reply row is written
again, so a later resend of it is answered from there.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.mds.records import Forced
from lustrepy.rpc import limits
from lustrepy.rpc.convert import fid_from_pb, layout_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt

# what a client may replay: method -> (request, reply)
KINDS: dict[str, tuple[type[Any], type[Any]]] = {
    "Intent": (mpb.IntentRequest, mpb.IntentReply),
    "Reint": (mpb.ReintRequest, mpb.ReintReply),
    "Close": (mpb.CloseRequest, cpb.SimpleReply),
    "AllocSeq": (mpb.SeqRequest, mpb.SeqReply),
    "ReintBatch": (mpb.ReintBatchRequest, mpb.ReintBatchReply),
}
_CREATES = ("create", "mkdir", "symlink")


def apply(mdt: Mdt, handlers: dict[str, Callable[[Any, Any], Any]], client_id: str,
          item: mpb.ReplayItem) -> mpb.ReplayFailure | None:
    """Run one replayed update; None when it applied, else why not."""
    kinds = KINDS.get(item.method)
    if kinds is None:
        return mpb.ReplayFailure(xid=item.xid, errno=errno.EINVAL, message=f"{item.method!r} is not replayed")
    req_cls, rep_cls = kinds
    req, first = req_cls(), rep_cls()
    try:
        req.ParseFromString(item.request)
        first.ParseFromString(item.reply)
        limits.check(req)
        limits.check(first)
    except DecodeError:
        return mpb.ReplayFailure(xid=item.xid, errno=errno.EINVAL, message="a replay that does not decode")
    except LpError as e:
        return mpb.ReplayFailure(xid=item.xid, errno=errno.EINVAL, message=f"a replay past the bounds: {e.message}")
    if req.hdr.client_id != client_id or req.hdr.xid != item.xid or not item.transno:
        return mpb.ReplayFailure(xid=item.xid, errno=errno.EINVAL, message="a replay of another request")
    gens = [e.conn_gen for e in mdt.lockd.exports() if e.client_id == client_id and not e.evicted]
    if not gens:
        return mpb.ReplayFailure(xid=item.xid, errno=errno.ENOTCONN, message="the client is not connected")
    req.hdr.conn_gen = gens[0]
    req.hdr.resent = False
    del req.hdr.cancel_cookies[:]
    if hasattr(req, "want_wbc"):
        req.want_wbc = False
    mdt.store.forcing(_forced(item.transno, req, first))
    try:
        rep = handlers[item.method](req, None)
    finally:
        mdt.store.forcing(None)
    cookies = [lk.cookie for lk in (getattr(rep, "lock", None), getattr(rep, "wbc_lock", None))
               if lk is not None and lk.cookie]
    if cookies:
        mdt.lockd.cancel(client_id, cookies)
    if rep.hdr.errno:
        return mpb.ReplayFailure(xid=item.xid, errno=rep.hdr.errno, message=rep.hdr.message)
    return None


def _forced(transno: int, req: Any, first: Any) -> Forced:
    """The results the first reply gave, which the replay must give again."""
    fids: tuple[Fid, ...] = ()
    handle = seq = 0
    layout = None
    if isinstance(first, mpb.IntentReply):
        if first.disposition & mpb.DISP_OPEN_CREATE and first.attr.fid.seq:
            fids = (fid_from_pb(first.attr.fid),)
        handle = first.open_handle
    elif isinstance(first, mpb.ReintReply):
        if req.op.WhichOneof("op") in _CREATES and first.attr.fid.seq:
            fids = (fid_from_pb(first.attr.fid),)
    elif isinstance(first, mpb.SeqReply):
        seq = first.seq
    elif isinstance(first, mpb.ReintBatchReply):      # the records carry their FIDs; objects by file
        layouts = tuple((fid_from_pb(rl.fid), layout_from_pb(rl.layout)) for rl in first.layouts)
        return Forced(transno=transno, layouts=layouts)
    if getattr(first, "has_layout", False):
        layout = layout_from_pb(first.layout)
    return Forced(transno=transno, fids=fids, handle=handle, layout=layout, seq=seq)
