"""The updates a client keeps for replay (Lustre's import replay list).

Every update the MDS answers (intents that change something, reints,
closes, sequence allocations, batches of write-back-cache update records) is
kept, request and reply, until the MDS's last_committed covers its transno:
until then a crash of the MDS host may lose it, and the client replays it
when the restarted MDS opens its recovery window (mdc.Mdc.connect), in
transno order with the other clients' updates. (The write-back cache's
journal also keeps its records until committed: for a restart of the client.)
Thread-safe; never does I/O.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterator
from typing import Any

from google.protobuf.message import DecodeError, Message

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.rpc.convert import fid_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

log = logging.getLogger(__name__)

# the requests kept, by class -> the Mds method that replays them
_KEPT = {mpb.IntentRequest: "Intent", mpb.ReintRequest: "Reint", mpb.CloseRequest: "Close",
         mpb.SeqRequest: "AllocSeq", mpb.ReintBatchRequest: "ReintBatch"}
_BY_METHOD = {m: cls for cls, m in _KEPT.items()}
ERRORS_MAX = 4096       # failed replays kept for files nobody fsyncs or closes: the oldest go


class ReplayList:
    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._kept: dict[int, mpb.ReplayItem] = {}      # xid -> update answered, not committed
        self.last_committed = 0
        self.failed: dict[int, tuple[int, str]] = {}    # xid -> (errno, message) of updates lost
        self._errors: dict[Fid, LpError] = {}           # a lost update's error, by each file it concerned

    def keep(self, req: Any, rep: Any) -> None:
        """An update the MDS answered: kept until last_committed covers its transno."""
        method = _KEPT.get(type(req))
        t = rep.hdr.transno
        if method is None or not t or t <= self.last_committed:
            return
        if rep.hdr.errno and method != "ReintBatch":    # a refused batch record: those before it applied
            return
        item = mpb.ReplayItem(transno=t, xid=req.hdr.xid, method=method, request=req.SerializeToString(),
                              reply=rep.SerializeToString())
        with self._mu:
            if t > self.last_committed:     # another reply may have said it is committed meanwhile
                self._kept[req.hdr.xid] = item

    def committed(self, last_committed: int, *, lost: bool = False) -> None:
        """Forget the updates `last_committed` covers; `lost`: the MDS restarted and recovered
        without waiting for the others, which are gone."""
        with self._mu:
            if last_committed <= self.last_committed and not lost:
                return
            self.last_committed = max(self.last_committed, last_committed)
            gone = []
            for x, it in list(self._kept.items()):
                if it.transno <= last_committed or lost:
                    del self._kept[x]
                    if it.transno > last_committed:
                        gone.append(it)
                        self._failed(it, errno.EIO, "lost: the MDS recovered without this client")
        if gone:
            log.error("%d updates the MDS had answered are lost: it restarted and recovered without this client",
                      len(gone))

    def __len__(self) -> int:
        with self._mu:
            return len(self._kept)

    def items(self) -> list[mpb.ReplayItem]:
        """The kept updates in transno order."""
        with self._mu:
            return sorted(self._kept.values(), key=lambda it: it.transno)

    def failures(self, failed: list[mpb.ReplayFailure]) -> None:
        """Replays the MDS could not apply (the object changed since, or it is gone): each is
        reported once, by the next fsync or close of a file it concerned (take_error)."""
        for f in failed:
            log.warning("replayed update xid %d failed: %s", f.xid, f.message)
            with self._mu:
                it = self._kept.get(f.xid)
                if it is not None:
                    self._failed(it, f.errno, f.message)

    def take_error(self, fid: Fid) -> LpError | None:
        """The failure of a replayed update that concerned this file or directory, once."""
        if not self._errors:
            return None
        with self._mu:
            return self._errors.pop(fid, None)

    def _failed(self, it: mpb.ReplayItem, err: int, message: str) -> None:
        """Called with _mu held."""
        self.failed[it.xid] = (err, message)
        e = LpError(err or errno.EIO, f"an update the MDS lost in a restart could not be applied again: {message}")
        for fid in _fids_of(it):
            self._errors.pop(fid, None)
            self._errors[fid] = e
        while len(self._errors) > ERRORS_MAX:
            del self._errors[next(iter(self._errors))]


def _fids_of(it: mpb.ReplayItem) -> set[Fid]:
    """The files and directories a kept update named, or made."""
    req = _BY_METHOD[it.method]()
    try:
        req.ParseFromString(it.request)
    except DecodeError:
        return set()
    out = {fid_from_pb(f) for f in _fid_fields(req) if f.seq}
    if it.method in ("Intent", "Reint"):
        rep: Any = mpb.IntentReply() if it.method == "Intent" else mpb.ReintReply()
        try:
            rep.ParseFromString(it.reply)
        except DecodeError:
            return out
        if rep.attr.fid.seq:
            out.add(fid_from_pb(rep.attr.fid))
    return out


def _fid_fields(m: Message, depth: int = 0) -> Iterator[cpb.Fid]:
    for fd, value in m.ListFields():
        if fd.message_type is None or depth > 3:
            continue
        for v in [value] if isinstance(value, Message) else value:      # one message, or repeated
            if isinstance(v, cpb.Fid):
                yield v
            elif isinstance(v, Message):
                yield from _fid_fields(v, depth + 1)
