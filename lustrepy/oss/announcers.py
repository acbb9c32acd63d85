"""The OSS's heartbeats to every MDT of its file system (as Lustre's OSTs connect to each MDT).

The OSS is given one MDS, MDT0's (--mds). MDT0's reply to each announce lists
every MDT of the file system; for each other MDT listed this module runs one
more Announcer (announce.py) to that MDT's address, beating at the period that
MDT asks for: started when an MDT appears in the list, stopped when it leaves
it or moves to another address. A file system of one MDT (MDT0 lists nobody
else, or an MDS that lists no MDTs at all) has the MDT0 announcer alone, as an
OSS always had.

Only MDT0's refusal ends the OSS (`on_refused`); another MDT's refusal ends
that MDT's announcer alone (logged), until MDT0's list changes for that MDT.
The capability keys each MDT sends go to one key ring, kept per MDT there.
Never touches objects and never serves requests.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

from lustrepy.common.capa import KeyRing
from lustrepy.common.errors import LpError
from lustrepy.common.objid import valid_mdt
from lustrepy.common.records import Statfs
from lustrepy.oss.announce import Announcer, deadline_for
from lustrepy.oss.identity import OstIdentity
from lustrepy.rpc.v1 import mds_pb2 as mpb

log = logging.getLogger(__name__)


class Announcers:
    """One Announcer to MDT0 and one to each other MDT that MDT0 lists. Thread-safe."""

    def __init__(self, mds_address: str, ident: OstIdentity, address: str, boot_id: int,
                 statfs: Callable[[], Statfs], on_refused: Callable[[str], None], *,
                 interval: float = 1.0, node: str = "", failure_domain: str = "",
                 keys: KeyRing | None = None) -> None:
        self._new = functools.partial(Announcer, ident=ident, address=address, boot_id=boot_id, statfs=statfs,
                                      node=node, failure_domain=failure_domain, keys=keys)
        self.primary = self._new(mds_address, on_refused=on_refused, interval=interval, on_reply=self._listed)
        self._mu = threading.Lock()             # _others, _bad, _stopped
        self._others: dict[str, Announcer] = {}     # address -> the announcer to the MDT there
        self._bad: set[str] = set()             # listed addresses no channel can be made to (logged once)
        self._stopped = False

    # -- the heartbeat period (the OSS's tunable: MDT0's; the others follow what their MDT asks) --

    @property
    def interval(self) -> float:
        return self.primary.interval

    @interval.setter
    def interval(self, v: float) -> None:
        self.primary.interval = v
        self.primary.timeout = deadline_for(v)

    # -- life ----------------------------------------------------------------------------

    def start(self) -> None:
        self.primary.start()

    def stop(self) -> None:
        """Stop every announcer, MDT0's first (no new list comes after it), each within its deadline."""
        self.primary.stop()
        with self._mu:
            self._stopped = True
            others, self._others = list(self._others.values()), {}
        for a in others:
            a.stop(wait=False)
        for a in others:
            a.stop()

    def others(self) -> dict[str, int]:
        """The other MDTs beaten to now: address -> MDT index."""
        with self._mu:
            return {addr: a.mdt for addr, a in self._others.items() if a.mdt is not None}

    # -- MDT0's list ---------------------------------------------------------------------

    def _listed(self, rep: mpb.OstAnnounceReply) -> None:
        """MDT0 answered (in the MDT0 announcer's thread): start and stop the others to match its list."""
        if rep.mdt_index != 0:
            return              # the --mds given is not MDT0: its list is not the file system's
        wanted = {e.address: e.index for e in rep.mdts if e.index != 0 and e.address and valid_mdt(e.index)}
        with self._mu:
            if self._stopped:
                return
            gone = [a for addr, a in self._others.items() if wanted.get(addr) != a.mdt]
            for a in gone:
                del self._others[a.mds_address]
                log.info("MDT%04x at %s left MDT0's list: no more heartbeats to it", a.mdt, a.mds_address)
            for addr, index in wanted.items():
                if addr not in self._others:
                    self._start(addr, index)
        for a in gone:
            a.stop(wait=False)      # closes its channel: the thread ends by itself, not holding this one

    def _start(self, addr: str, index: int) -> None:
        """One more announcer, to MDT `index` at `addr`. Under _mu: creating and starting it does no I/O."""
        try:
            a = self._new(addr, on_refused=lambda reason: log.error("%s: no more heartbeats to MDT%04x", reason,
                                                                    index),
                          interval=self.primary.interval, mdt=index, follow=True, name=f"announce-MDT{index:04x}")
        except LpError as e:
            if addr not in self._bad:
                log.warning("MDT0 lists MDT%04x at %r: %s", index, addr, e.message)
                self._bad.add(addr)
            return
        self._others[addr] = a
        log.info("announcing to MDT%04x at %s too", index, addr)
        a.start()
