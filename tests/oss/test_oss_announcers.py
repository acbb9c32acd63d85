"""The OSS's heartbeats to every MDT (oss/announcers.py), against minimal MDS peers on loopback
that implement only Mds.Announce: MDT0's replies list the other MDTs; the OSS beats to each at the
period that MDT asks, takes each MDT's own capability keys only, and stops beating to an MDT that
leaves MDT0's list. A file system of one MDT keeps the one announcer it always had."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import pytest

from lustrepy.common.capa import MDT_SHIFT, KeyRing, mdt_of
from lustrepy.common.records import Statfs
from lustrepy.oss.announcers import Announcers
from lustrepy.oss.identity import OstIdentity
from lustrepy.rpc.channel import bind, make_server
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc
from tests.support.servers import wait_for

pytestmark = pytest.mark.timeout(60)

IDENT = OstIdentity(fsname="testfs", index=0, uuid="testfs-OST0000_UUID")


class MdtPeer(mds_pb2_grpc.MdsServicer):
    """Answers Mds.Announce as MDT `index`: with `mdts` (MDT0), its own heartbeat period and keys."""

    def __init__(self, index: int, interval: float = 1.0) -> None:
        self.index = index
        self.interval = interval
        self.mdts: list[mpb.MdtEntry] = []
        self.key_ids = [(index << MDT_SHIFT) | 7]
        self.address = ""
        self.times: list[float] = []
        self._mu = threading.Lock()

    def Announce(self, request: mpb.OstAnnounce, context) -> mpb.OstAnnounceReply:
        assert request.uuid == IDENT.uuid and request.address == "127.0.0.1:9"
        with self._mu:
            self.times.append(time.monotonic())
            mdts, keys = list(self.mdts), list(self.key_ids)
        return mpb.OstAnnounceReply(hdr=cpb.RepHdr(), mds_uuid=f"testfs-MDT{self.index:04x}_UUID",
                                    heartbeat_interval_s=self.interval, mdt_index=self.index, mdts=mdts,
                                    capa_keys=[mpb.CapaKey(id=i, key=bytes([i % 256]) * 32, made=1.0 + n)
                                               for n, i in enumerate(keys)])

    def set_list(self, *peers: MdtPeer) -> None:
        with self._mu:
            self.mdts = [mpb.MdtEntry(index=p.index, uuid=f"testfs-MDT{p.index:04x}_UUID", address=p.address,
                                      active=True) for p in peers]

    def count(self) -> int:
        with self._mu:
            return len(self.times)


@pytest.fixture
def peers() -> Iterator[Callable[..., MdtPeer]]:
    servers = []

    def start(index: int, interval: float = 1.0) -> MdtPeer:
        peer = MdtPeer(index, interval)
        srv = make_server(max_workers=4)
        mds_pb2_grpc.add_MdsServicer_to_server(peer, srv)
        peer.address = f"127.0.0.1:{bind(srv, '127.0.0.1:0')}"
        srv.start()
        servers.append(srv)
        return peer

    try:
        yield start
    finally:
        for srv in servers:
            srv.stop(0).wait(2)


def _announcers(mdt0: MdtPeer, keys: KeyRing, interval: float) -> Announcers:
    refused: list[str] = []
    return Announcers(mdt0.address, IDENT, "127.0.0.1:9", 1, lambda: Statfs(4096, 100, 50, 50, 10, 5),
                      refused.append, interval=interval, keys=keys)


def _beating_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("announce-MDT")}


def test_one_mdt_keeps_one_announcer(peers):
    mdt0 = peers(0)
    mdt0.set_list(mdt0)                         # MDT0 lists only itself
    keys = KeyRing()
    a = _announcers(mdt0, keys, interval=0.1)
    a.start()
    try:
        wait_for(lambda: mdt0.count() >= 5, what="five heartbeats to MDT0")
        assert a.others() == {} and _beating_threads() == set()
        assert keys.known(0) == 1 and keys.known() == 1
    finally:
        a.stop()
    n = mdt0.count()
    time.sleep(0.3)
    assert mdt0.count() == n                    # stopped


def test_every_listed_mdt_gets_heartbeats_at_its_own_period_and_leaves_with_the_list(peers):
    mdt0 = peers(0)
    mdt1 = peers(1, interval=0.05)              # asks for beats much faster than the OSS's own period
    mdt2 = peers(2, interval=0.05)
    mdt2.key_ids = [(2 << MDT_SHIFT) | 1, 5]    # and a key of MDT0's space, which it may not give
    mdt0.set_list(mdt0, mdt1, mdt2)
    keys = KeyRing()
    a = _announcers(mdt0, keys, interval=3.0)
    a.start()
    try:
        wait_for(lambda: mdt1.count() >= 10 and mdt2.count() >= 10, what="MDT1 and MDT2 beaten at 0.05 s")
        assert mdt0.count() <= 2                # its own period: 3 s
        assert a.others() == {mdt1.address: 1, mdt2.address: 2}
        assert _beating_threads() == {"announce-MDT0001", "announce-MDT0002"}
        ids = {i for i, _, _ in keys.export()}
        assert ids == {7, (1 << MDT_SHIFT) | 7, (2 << MDT_SHIFT) | 1}        # MDT2's stray key left out
        assert {mdt_of(i) for i in ids} == {0, 1, 2}

        mdt0.set_list(mdt0, mdt2)               # MDT1 leaves the file system
        a.interval = 0.1                        # the OSS's tunable: MDT0's period only (after this wait)
        mdt0.key_ids = [8]                      # and MDT0 rotates
        wait_for(lambda: a.others() == {mdt2.address: 2}, what="MDT1 dropped")
        wait_for(lambda: _beating_threads() == {"announce-MDT0002"}, what="MDT1's thread ended")
        n1, n2 = mdt1.count(), mdt2.count()
        time.sleep(0.5)
        assert mdt1.count() <= n1 + 1 and mdt2.count() >= n2 + 3     # (one beat may have been in flight)
        assert keys.known(0) == 2 and keys.known(1) == 1           # MDT1's keys stay until they expire
    finally:
        a.stop()
    assert _beating_threads() == set()
    n2 = mdt2.count()
    time.sleep(0.3)
    assert mdt2.count() == n2


def test_a_list_from_an_mds_that_is_not_mdt0_is_not_followed(peers):
    mdt1 = peers(1, interval=0.05)
    mdt2 = peers(2)
    mdt1.set_list(mdt2)
    keys = KeyRing()
    a = _announcers(mdt1, keys, interval=0.1)
    a.start()
    try:
        wait_for(lambda: mdt1.count() >= 3, what="heartbeats to the MDS given")
        assert a.others() == {} and mdt2.count() == 0
        assert keys.known(1) == 1               # its own keys are still taken
    finally:
        a.stop()
