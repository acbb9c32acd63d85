"""MDT1..'s registration with MDT0 and its heartbeat (Mds.MdtAnnounce).

One thread announces this MDT (index, uuid, address) to MDT0 at once and then every interval
MDT0 asks for, each call with a deadline. The first answer carries the range of FID sequences
MDT0 gave this MDT: it is kept in the MDT's own database (fld.adopt) before the MDT names any
inode, so that the range survives a restart without MDT0. Every answer's view of the file
system's MDTs and ranges is kept for this MDT's own Fld and announce replies. An unreachable
MDT0 is retried forever with one warning per outage; a refusal (another MDT holds the index,
wrong file system) is logged as an error and retried at a slow pace, since an admin may fix it.
"""

from __future__ import annotations

import errno
import logging
import threading
from typing import TYPE_CHECKING, Protocol

from lustrepy.common.errors import LpError, from_wire
from lustrepy.mds import fld
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.fldwire import view_from_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc

if TYPE_CHECKING:
    from lustrepy.mds.fld import Mdts
    from lustrepy.mds.recovery import Committer
    from lustrepy.mds.store import Store

log = logging.getLogger(__name__)

REFUSED_PAUSE = 30.0        # seconds between announces MDT0 refuses


class Host(Protocol):
    """What the announcer needs of its MDT (lustrepy.mds.mdt.Mdt is one)."""

    fsname: str
    index: int
    uuid: str
    address: str
    store: Store
    committer: Committer
    mdts: Mdts


class MdtAnnouncer:
    """Heartbeats of this MDT (index > 0) to MDT0 at `mdt0`, from a daemon thread."""

    def __init__(self, mdt: Host, mdt0: str, interval: float = 1.0) -> None:
        self.mdt = mdt
        self.mdt0 = mdt0
        self.interval = interval
        self.timeout = min(10.0, max(2.0, 2 * interval))
        self.registered = threading.Event()     # set once this MDT holds a range of sequences
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mdt-announce", daemon=True)
        self._channel = make_channel(mdt0, "mds")
        self._stub = mds_pb2_grpc.MdsStub(self._channel)
        self._reachable: bool | None = None
        if mdt.store.peek(lambda tx: [r for r in fld.ranges(tx) if r.mdt == mdt.index]):
            self.registered.set()       # registered at an earlier start

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timeout + 1)
        self._channel.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            pause = self.interval
            try:
                pause = self._beat()
            except Exception:       # keep beating whatever one beat hit
                log.exception("announce to MDT0 failed")
            self._stop.wait(pause)

    def _beat(self) -> float:
        mdt = self.mdt
        msg = mpb.MdtAnnounceRequest(fsname=mdt.fsname, index=mdt.index, uuid=mdt.uuid, address=mdt.address,
                                     instance=mdt.store.instance)
        try:
            rep = call(self._stub.MdtAnnounce, msg, timeout=self.timeout)
        except LpError as e:
            if self._reachable is not False:
                log.warning("MDT0 at %s unreachable (%s); retrying every %gs", self.mdt0, e.message, self.interval)
            self._reachable = False
            return self.interval
        err = from_wire(rep.hdr.errno)
        if err in (errno.EAGAIN, errno.EINPROGRESS):        # MDT0 recovers: not now
            return self.interval
        if err:
            log.error("MDT0 at %s refused %s: %s", self.mdt0, mdt.uuid, rep.hdr.message)
            self._reachable = False
            return REFUSED_PAUSE
        view = view_from_pb(rep.ranges, rep.mdts)
        if not self.registered.is_set():
            got, _ = mdt.store.write(lambda tx: fld.adopt(tx, mdt.index, list(view.ranges)))
            mdt.committer.commit_now()          # the range is durable before any inode is named from it
            mine = [r for r in view.ranges if r.mdt == mdt.index]
            if mine:
                log.info("registered with MDT0 at %s: FID sequences %#x..%#x", self.mdt0, mine[0].start,
                         mine[0].end - 1)
                self.registered.set()
        mdt.mdts.keep(view)
        if self._reachable is not True:
            if self._reachable is False:
                log.info("MDT0 at %s reachable again", self.mdt0)
            self._reachable = True
        return rep.heartbeat_interval_s if rep.heartbeat_interval_s > 0 else self.interval
