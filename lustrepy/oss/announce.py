"""The OSS's heartbeat to one MDT: Mds.Announce with the OST's identity, address and statfs.

One thread sends an announce at once and then every `interval` seconds, each
with a deadline. An unreachable MDS is retried forever with one warning per
outage; an MDS that answers with a refusal (wrong file system, index owned by
another OST) ends the loop and reports the reason through `on_refused`. Each
reply's capability keys go to the OSS's key ring, those of the MDT that
answered only (common/capa.py: a key id names its MDT), so no MDT can replace
another's keys. Several of these, one per MDT, are kept by announcers.py.
Never touches objects and never serves requests.
"""

from __future__ import annotations

import errno
import logging
import threading
from dataclasses import dataclass
from typing import Callable

from lustrepy.common.capa import KeyRing, mdt_of
from lustrepy.common.errors import LpError, from_wire
from lustrepy.common.records import Statfs
from lustrepy.oss.identity import OstIdentity
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import statfs_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc

log = logging.getLogger(__name__)

# Answers that mean "not now" rather than "never": the MDS is starting, recovering or stopping.
_TRANSIENT = frozenset({errno.EAGAIN, errno.EBUSY, errno.EINPROGRESS, errno.ETIMEDOUT,
                        errno.ENOTCONN, errno.ESHUTDOWN, errno.ECONNREFUSED})
MAX_INTERVAL = 3600.0           # a heartbeat period asked for beyond this is not taken


@dataclass(frozen=True, slots=True)
class AnnounceStats:
    sent: int
    answered: int
    reachable: bool | None          # None until the first answer or failure


def deadline_for(interval: float) -> float:
    """An announce's deadline at this heartbeat period."""
    return min(10.0, max(2.0, 2 * interval))


class Announcer:
    """Heartbeats to the MDS at `mds_address` from a daemon thread.

    `mdt` is the MDT index expected there (None: whichever answers, as for the --mds given);
    `follow` takes the heartbeat period each reply asks for; `on_reply` sees every reply that
    accepted the announce, in this announcer's thread.
    """

    def __init__(self, mds_address: str, ident: OstIdentity, address: str, boot_id: int,
                 statfs: Callable[[], Statfs], on_refused: Callable[[str], None], *,
                 interval: float = 1.0, timeout: float | None = None, node: str = "",
                 failure_domain: str = "", keys: KeyRing | None = None, mdt: int | None = None,
                 follow: bool = False, on_reply: Callable[[mpb.OstAnnounceReply], None] | None = None,
                 name: str = "announce") -> None:
        self.mds_address = mds_address
        self.mdt = mdt
        self.follow = follow
        self._on_reply = on_reply
        self.ident = ident
        self.address = address
        self.boot_id = boot_id
        self.node = node
        self.failure_domain = failure_domain
        self.interval = interval
        self.timeout = timeout if timeout is not None else deadline_for(interval)
        self._statfs = statfs
        self._on_refused = on_refused
        self.keys = keys            # takes the capability keys each reply carries
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._channel = make_channel(mds_address, "mds")
        self._stub = mds_pb2_grpc.MdsStub(self._channel)
        self._sent = 0
        self._answered = 0
        self._reachable: bool | None = None
        self._statfs_failing = False
        self._foreign_keys = False          # keys of another MDT were left out (logged once)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        """End the heartbeats; with `wait`, return once the thread has (within its deadline + 1 s).
        Without, an announce in flight is cancelled by closing the channel and the thread ends
        by itself."""
        self._stop.set()
        if wait and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timeout + 1)
        self._channel.close()

    def statistics(self) -> AnnounceStats:
        return AnnounceStats(self._sent, self._answered, self._reachable)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._beat():
                    return
            except Exception:       # keep heartbeating whatever one beat hit
                log.exception("announce to MDS %s failed", self.mds_address)
            self._stop.wait(self.interval)

    def _beat(self) -> bool:
        """Send one announce; False when the MDS refused us for good."""
        try:
            sf = self._statfs()
        except LpError as e:
            if not self._statfs_failing:
                log.warning("cannot read statfs for the heartbeat: %s", e)
            self._statfs_failing = True
            return True
        self._statfs_failing = False
        msg = mpb.OstAnnounce(fsname=self.ident.fsname, index=self.ident.index, uuid=self.ident.uuid,
                              address=self.address, statfs=statfs_to_pb(sf), boot_id=self.boot_id,
                              node=self.node, failure_domain=self.failure_domain)
        self._sent += 1
        try:
            rep = call(self._stub.Announce, msg, timeout=self.timeout)
        except LpError as e:
            if self._stop.is_set():
                return False        # stopped while the announce was in flight (its channel closed)
            if self._reachable is not False:
                log.warning("MDS %s unreachable (%s); retrying every %gs", self.mds_address, e.message,
                            self.interval)
            self._reachable = False
            return True
        err = from_wire(rep.hdr.errno)
        if err in _TRANSIENT:
            if self._reachable is not False:
                log.warning("MDS %s cannot take the announce yet: %s", self.mds_address, rep.hdr.message)
            self._reachable = False
            return True
        if err:
            reason = rep.hdr.message or errno.errorcode.get(err, str(err))
            log.error("MDS %s refused %s: %s", self.mds_address, self.ident.uuid, reason)
            self._on_refused(f"MDS {self.mds_address} refused {self.ident.uuid}: {reason}")
            return False
        self._answered += 1
        if self.mdt is not None and rep.mdt_index != self.mdt and self._reachable is not True:
            log.warning("MDS %s answers as MDT%04x, not MDT%04x as listed", self.mds_address, rep.mdt_index,
                        self.mdt)
        self._take_keys(rep)
        asked = rep.heartbeat_interval_s
        if self.follow and 0 < asked <= MAX_INTERVAL and asked != self.interval:
            self.interval = asked
            self.timeout = deadline_for(asked)
        if self._reachable is None:
            log.info("announced %s at %s to MDS %s (%s)", self.ident.uuid, self.address, self.mds_address,
                     rep.mds_uuid or "?")
        elif self._reachable is False:
            log.info("MDS %s reachable again", self.mds_address)
        self._reachable = True
        if self._on_reply is not None:
            self._on_reply(rep)
        return True

    def _take_keys(self, rep: mpb.OstAnnounceReply) -> None:
        """The reply's capability keys of the MDT that answered (another MDT's would be a
        misconfigured MDS signing with ids not its own: left out, logged once)."""
        if self.keys is None or not rep.capa_keys:
            return
        mine = [(k.id, k.key, k.made) for k in rep.capa_keys if mdt_of(k.id) == rep.mdt_index]
        if len(mine) != len(rep.capa_keys) and not self._foreign_keys:
            log.error("MDS %s (MDT%04x) sent capability keys of other MDTs %s: left out", self.mds_address,
                      rep.mdt_index, sorted({mdt_of(k.id) for k in rep.capa_keys} - {rep.mdt_index}))
        self._foreign_keys = len(mine) != len(rep.capa_keys)
        if mine:
            self.keys.load(mine)
