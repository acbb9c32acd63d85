"""The MDS's client of the OSSes (Lustre's osp): object precreation and destruction.

One background thread keeps a pool of precreated object ids per active OST
(asking several OSTs at once, each in a thread of a pool made for that round)
above a low-water mark (so creating a file makes no OSS round trip) and
drains the destroy queue (objects of unlinked files) to the OSSes that hold
them. Both queues live in the store, so they survive an MDS restart; an
object is marked destroyed only after its OSS confirmed it.
"""

from __future__ import annotations

import errno
import functools
import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import grpc

from lustrepy.common.errors import LpError
from lustrepy.common.objid import group_of
from lustrepy.mds.ostreg import OstRegistry
from lustrepy.mds.namespace import Tx
from lustrepy.mds.store import Store
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import check_rep
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc

log = logging.getLogger(__name__)

RPC_TIMEOUT = 10.0
PARALLEL = 8            # OSTs precreated for at once, at most
MAX_BATCH = 8192        # a pool that runs dry doubles its precreation batch up to this (Lustre's create_count)


@dataclass
class _Target:
    index: int
    address: str
    channel: grpc.Channel
    stub: oss_pb2_grpc.OssStub
    conn_gen: int = 0
    xid: int = 0
    failing: bool = False
    batch: int = 0          # objects asked per precreation: grows while creates empty the pool


@dataclass
class OspStats:
    precreated: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    destroyed: dict[int, int] = field(default_factory=lambda: defaultdict(int))


class Osp:
    def __init__(self, store: Store, registry: OstRegistry, client_id: str, fsname: str, *,
                 low_water: int = 128, batch: int = 512, interval: float = 0.5) -> None:
        self.store = store
        self.registry = registry
        self.client_id = client_id
        self.fsname = fsname
        self.low_water = low_water
        self.batch = batch
        self.interval = interval
        self.stats = OspStats()
        self._targets: dict[int, _Target] = {}
        self._tlock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pool_cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="osp", daemon=True)
        # True while nothing may change (recovery replays first, with the transnos they had)
        self.held: Callable[[], bool] = lambda: False

    # ---- life cycle -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        with self._tlock:
            for t in self._targets.values():
                t.channel.close()
            self._targets.clear()

    def wake(self) -> None:
        self._wake.set()

    def wait_pools(self, timeout: float) -> None:
        """Block until some pool changes or timeout (a create found every pool empty)."""
        self._wake.set()
        with self._pool_cond:
            self._pool_cond.wait(timeout)

    # ---- the loop -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self.held() or not self.store.has_room():
                continue        # objects made now could not be recorded: the MDT's disk is full
            try:
                self._precreate_all()
                self._destroy_pending()
            except LpError as e:  # the store could not record a round (it logged why): the next one tries again
                log.debug("osp round: %s", e)
            except Exception:  # keep the loop alive whatever one round hit
                log.exception("osp round failed")

    def _target(self, index: int) -> _Target | None:
        st = self.registry.get(index)
        if st is None or not st.active:
            return None
        with self._tlock:
            t = self._targets.get(index)
            if t is not None and t.address != st.address:
                t.channel.close()
                t = None
            if t is None:
                ch = make_channel(st.address, "oss")
                t = _Target(index, st.address, ch, oss_pb2_grpc.OssStub(ch))
                self._targets[index] = t
        return t

    def _hdr(self, t: _Target) -> cpb.ReqHdr:
        t.xid += 1
        return cpb.ReqHdr(client_id=self.client_id, conn_gen=t.conn_gen, xid=t.xid)

    def _connect(self, t: _Target) -> None:
        rep = call(t.stub.Connect, cpb.ConnectRequest(client_id=self.client_id, fsname=self.fsname),
                   timeout=RPC_TIMEOUT)
        check_rep(rep.hdr)
        t.conn_gen = rep.conn_gen

    def _rpc(self, t: _Target, method: Callable[..., Any], make_req: Callable[[cpb.ReqHdr], Any]) -> Any:
        """Call with a connected export, reconnecting once on ENOTCONN."""
        for attempt in (0, 1):
            if t.conn_gen == 0:
                self._connect(t)
            rep = call(method, make_req(self._hdr(t)), timeout=RPC_TIMEOUT)
            if rep.hdr.errno == errno.ENOTCONN and attempt == 0:
                t.conn_gen = 0
                continue
            check_rep(rep.hdr)
            return rep
        raise AssertionError("unreachable")

    def _precreate_all(self) -> None:
        """Refill every pool below the low-water mark; several OSTs at once in parallel (a
        striped file takes from each, so their pools run low together)."""
        sizes = self.store.read().pool_sizes()
        targets = []
        for st in self.registry.active():
            t = self._target(st.index)
            have = sizes.get(st.index, 0)
            if t is None or have >= max(self.low_water, t.batch // 2):
                continue
            if have <= 0 and t.batch:
                t.batch = min(MAX_BATCH, t.batch * 2)   # creates waited for this pool: refill more at once
            t.batch = max(t.batch, self.batch)
            targets.append(t)
        if len(targets) == 1:
            self._precreate(targets[0])
        elif targets:
            with ThreadPoolExecutor(min(len(targets), PARALLEL), thread_name_prefix="osp-precreate") as ex:
                list(ex.map(self._precreate, targets))

    def _precreate(self, t: _Target) -> None:
        try:
            rep = self._rpc(t, t.stub.Precreate, lambda h: opb.PrecreateRequest(hdr=h, count=t.batch,
                                                                                mdt_index=self.store.index))
        except LpError as e:
            if not t.failing:
                log.warning("precreate on OST%04x (%s) failed: %s", t.index, t.address, e)
            t.failing = True
            t.conn_gen = 0
            return
        first, last = rep.first_id, rep.last_id
        if group_of(first) != self.store.index or group_of(last) != self.store.index:
            if not t.failing:       # an OSS that ignores mdt_index would hand out another MDT's ids
                log.error("OST%04x precreated objects %d..%d outside this MDT's range; not using them",
                          t.index, first, last)
            t.failing = True
            return
        t.failing = False
        self.store.write(functools.partial(_pool_add, t.index, first, last))
        with self._pool_cond:
            self.stats.precreated[t.index] += last - first + 1
            self._pool_cond.notify_all()
        log.debug("OST%04x precreated objects %d..%d", t.index, first, last)

    def _destroy_pending(self) -> None:
        items = self.store.read().pending_destroys(4096)
        if not items:
            return
        by_ost: dict[int, list[int]] = defaultdict(list)
        for ost, oid in items:
            by_ost[ost].append(oid)
        for ost, oids in by_ost.items():
            t = self._target(ost)
            if t is None:
                continue    # inactive OST: keep them queued until it returns
            try:
                self._rpc(t, t.stub.Destroy, functools.partial(_destroy_request, oids))
            except LpError as e:
                log.warning("destroy of %d objects on OST%04x failed: %s", len(oids), ost, e)
                t.conn_gen = 0
                continue
            done = [(ost, o) for o in oids]
            self.store.write(functools.partial(_destroy_done, done))
            self.stats.destroyed[ost] += len(oids)
            log.debug("OST%04x destroyed %d objects", ost, len(oids))

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until the destroy queue is empty (tests and shutdown); True when it is."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.store.read().pending_destroys(1):
                return True
            self.wake()
            time.sleep(0.05)
        return False


def _pool_add(index: int, first: int, last: int, tx: Tx) -> None:
    tx.pool_add(index, first, last)


def _destroy_done(done: list[tuple[int, int]], tx: Tx) -> None:
    tx.destroy_done(done)


def _destroy_request(ids: list[int], hdr: cpb.ReqHdr) -> opb.DestroyRequest:
    return opb.DestroyRequest(hdr=hdr, object_ids=ids)
