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
from typing import Any

from lustrepy.rpc.v1 import mds_pb2 as mpb

log = logging.getLogger(__name__)

# the requests kept, by class -> the Mds method that replays them
_KEPT = {mpb.IntentRequest: "Intent", mpb.ReintRequest: "Reint", mpb.CloseRequest: "Close",
         mpb.SeqRequest: "AllocSeq", mpb.ReintBatchRequest: "ReintBatch"}


class ReplayList:
    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._kept: dict[int, mpb.ReplayItem] = {}      # xid -> update answered, not committed
        self.last_committed = 0
        self.failed: dict[int, tuple[int, str]] = {}    # xid -> (errno, message) of updates lost

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
                        self.failed[x] = (errno.EIO, "lost: the MDS recovered without this client")
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
        """Replays the MDS could not apply (the object changed since, or it is gone)."""
        for f in failed:
            log.warning("replayed update xid %d failed: %s", f.xid, f.message)
            with self._mu:
                self.failed[f.xid] = (f.errno, f.message)
