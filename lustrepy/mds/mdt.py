"""The metadata target: the MDS's parts wired together (store, lock server,
OST registry, placement, osp, committer) and the shared steps of request
handling (layout allocation inside a transaction, resend bookkeeping).

Request handlers (intent.py, reint.py, service.py) receive an Mdt; nothing
here speaks gRPC.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from lustrepy.common.capa import LIFETIME_S, KeyRing
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout, Mirror, StripeObject
from lustrepy.common.records import Statfs
from lustrepy.ldlm.lockd import LockServer
from lustrepy.common.fld import mdt_name
from lustrepy.mds import clienttab, fld, remote, resources
from lustrepy.mds.dne import Dne
from lustrepy.mds.mdtreg import MdtAnnouncer
from lustrepy.mds.locking import MdsLocks
from lustrepy.mds.namespace import Tx
from lustrepy.mds.nodemap import Nodemap
from lustrepy.mds.lod import DEFAULT_RESERVED, Allocator
from lustrepy.mds.osp import Osp
from lustrepy.mds.ostreg import OstRegistry, OstState
from lustrepy.mds.recovery import Committer
from lustrepy.rpc.recovery_window import RecoveryWindow
from lustrepy.mds.replies import ReplyKeeper
from lustrepy.mds.resync import Resyncer
from lustrepy.mds.sqlerr import MdtFull
from lustrepy.mds.store import Store
from lustrepy.mds.wbc import ContentionPolicy, WbcManager
from lustrepy.rpc.lane import LaneServer

R = TypeVar("R")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MdsConfig:
    dir: Path
    fsname: str | None = None
    heartbeat_interval: float = 1.0
    ost_timeout: float = 5.0
    callback_timeout: float = 10.0
    commit_interval: float = 1.0
    precreate_low: int = 128
    precreate_batch: int = 512
    ost_reserved: int = DEFAULT_RESERVED     # an OST with less free space gets objects only when all have as little
    pool_wait: float = 5.0
    recovery_window: float = 60.0   # clients known at a restart get this long to come back and replay
    start_check: str = "quick"      # how much of the database to check at start (dbcheck.CHECKS)
    reserve: int = 0                # disk space held back for a full disk (reserve.py)
    contention: ContentionPolicy = ContentionPolicy()
    resync_delay: float = 300.0         # an OST inactive this long has its mirrors rebuilt elsewhere
    resync_bandwidth: int = 64 << 20    # bytes/s of mirror copies (0: unbounded)
    mdt0: str = ""                      # MDT0's address (MDT1.. register there)
    dne_wait: float = 30.0              # a request across MDTs waits this long for the other MDT


class Mdt:
    def __init__(self, cfg: MdsConfig) -> None:
        self.cfg = cfg
        self.store = Store(cfg.dir, expect_fsname=cfg.fsname, check=cfg.start_check,
                           reserve=cfg.reserve)
        self.fsname = self.store.fsname
        self.uuid = self.store.uuid
        self.index = self.store.index
        self.root = self.store.root
        self.address = ""
        self.boot_id = time.time_ns()
        self.started = time.monotonic()
        self.registry = OstRegistry(timeout=cfg.ost_timeout)
        for o in self.store.read().ost_list():
            self.registry.known(o.index, o.uuid, o.address)
        self.lockd = LockServer(mdt_name(self.fsname, self.index), callback_timeout=cfg.callback_timeout,
                                on_evict=self._evicted)
        self.locks = MdsLocks(self.lockd)
        self.nodemap = Nodemap()                # root squash and read-only clients (tunables)
        self.capa_keys = KeyRing(mdt=self.index)    # signs object capabilities (mds/capas.py)
        self.mdts = fld.Mdts(self.store, self.index, timeout=cfg.ost_timeout)   # the file system's MDTs
        if self.index and not cfg.mdt0:
            raise LpError(errno.EINVAL, f"{self.uuid} needs MDT0's address (mdt0) to register with")
        self.mdtreg = MdtAnnouncer(self, cfg.mdt0, cfg.heartbeat_interval) if self.index else None
        self.dne = Dne(self)                    # operations across MDTs (mds/dne.py)
        self.capa_lifetime = LIFETIME_S         # mds.capa_lifetime
        self.wbc = WbcManager(self.lockd, cfg.contention)
        self.wbc.refused = self.nodemap.readonly    # a read-only client creates nothing, locally or not
        # every MDT grants; not where a name binds another MDT's inode (records replay on one MDT)
        self.wbc.elsewhere = lambda fid: self.mdts.several and self.store.peek(
            lambda tx: remote.blocks_wbc(tx, fid))
        self.lockd.on_blocking = self.wbc.on_blocking
        self.allocator = Allocator(reserved=cfg.ost_reserved)
        self.osp = Osp(self.store, self.registry, client_id=self.uuid, fsname=self.fsname,
                       low_water=cfg.precreate_low, batch=cfg.precreate_batch)
        self.committer = Committer(self.store, interval=cfg.commit_interval)
        self.replies = ReplyKeeper(self.store, grace=cfg.recovery_window,
                                   connected=lambda: [e.client_id for e in self.lockd.exports()])
        self.counters: Counter[str] = Counter()
        self._inflight: dict[tuple[str, int], threading.Event | None] = {}
        self._inflight_lock = threading.Lock()
        self._serial: dict[str, threading.Lock] = {}   # per client: its batches of update records
        self._alloc = threading.local()     # .lenient: allocate fewer stripes rather than wait
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, name="ost-sweep", daemon=True)
        self.lane: LaneServer | None = None     # the request lane, when served (server.run)
        # Runs one update a client replays after a restart (replay_apply.apply over the service's
        # handlers; set by the server before it serves).
        self.replay_one: Callable[[str, Any], Any] = _no_replay
        self.recovery = RecoveryWindow(clienttab.known(self.store), cfg.recovery_window, self.store.last_transno(),
                                       apply=self._replay, on_end=self._end_recovery)
        if self.recovery.state == "recovering":
            log.info("recovery: waiting up to %.0fs for %d clients to replay", cfg.recovery_window,
                     len(clienttab.known(self.store)))
        self.osp.held = self.recovery.blocks     # no precreation or destroy until replays are in
        self._skipped: set[tuple[int, int]] = set()    # objects replays passed over (recovery thread)
        self.resync = Resyncer(self, delay=cfg.resync_delay, bandwidth=cfg.resync_bandwidth)

    # ---- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        self.lockd.start()
        self.committer.start()
        self.replies.start()
        self.osp.start()
        self._sweeper.start()
        self.resync.start()
        if self.mdtreg is not None:
            self.mdtreg.start()
        self.dne.start()

    def stop(self) -> None:
        self._stop.set()
        if self.mdtreg is not None:
            self.mdtreg.stop()
        self.dne.stop()
        self.resync.stop()
        self.osp.stop()
        self.lockd.stop()
        self.committer.stop()
        self._sweeper.join(timeout=5)
        self.store.close()

    def _sweep(self) -> None:
        while not self._stop.wait(min(0.5, self.cfg.ost_timeout / 4)):
            try:
                for i in self.registry.sweep():
                    log.warning("OST%04x inactive: no heartbeat for %.1fs", i, self.cfg.ost_timeout)
                self.recovery.tick()
                self.replies.prune()
            except LpError as e:  # a full or failing MDT disk: the store logged it; the rows go at a later tick
                log.debug("sweep: %s", e)
            except Exception:  # the sweeper must go on whatever one tick hit
                log.exception("sweep failed")

    # ---- recovery ------------------------------------------------------------------------

    def _replay(self, client_id: str, item: Any) -> Any:
        return self.replay_one(client_id, item)

    def _end_recovery(self, missing: list[str]) -> None:
        """Recovery is over: clients that did not come back are evicted and their opens closed
        (their orphans go); what the replays did is made durable."""
        connected = {e.client_id for e in self.lockd.exports() if not e.evicted}
        for cid in missing:
            if cid in connected:
                log.info("client %s did not replay in time: evicting it", cid)
                self.lockd.evict(cid, "recovery ended without its replays")
            clienttab.left(self.store, cid)
        for cid in self.store.read().open_clients():
            if cid not in connected or cid in missing:
                log.info("client %s did not reconnect: closing its open files", cid)
                self.close_client(cid)
        if self._skipped:
            def orphans(tx: Tx) -> set[tuple[int, int]]:
                gone = resources.unreferenced(tx, self._skipped)
                resources.queue_destroy(tx, gone)
                return gone
            gone, _ = self.store.write(orphans)
            if gone:
                log.info("recovery: %d objects no replay took go to the destroy queue", len(gone))
            self._skipped = set()
        self.committer.commit_now()
        self.osp.wake()

    def joined(self, client_id: str, replays: int) -> bool:
        """A client connects: recorded for recovery; True when recovery awaits its replays.
        EINPROGRESS for a client this MDS did not know while recovery is under way."""
        if self.recovery.blocks() and client_id not in clienttab.known(self.store):
            raise LpError(errno.EINPROGRESS, "the MDS is recovering; connect again shortly")
        clienttab.joined(self.store, client_id)
        return self.recovery.connected(client_id, replays)

    def close_client(self, client_id: str) -> None:
        """A client left or was evicted: close its open handles (last closes of orphans destroy them)."""
        self.wbc.forget_client(client_id)
        destroyed, _ = self.store.write(lambda tx: tx.close_client(client_id))
        if destroyed:
            self.osp.wake()

    def _evicted(self, client_id: str) -> None:
        if self.lane is not None:
            self.lane.revoke(client_id)                 # its lane connections are cut
        self._forget_client(client_id, self.replies.evicted)

    def disconnected(self, client_id: str) -> None:
        """A client disconnected cleanly: it sends nothing more (no resend, no batch)."""
        if self.lane is not None:
            self.lane.revoke(client_id, cut=False)      # this request's own connection answers it
        self._forget_client(client_id, self.replies.left)
        self.recovery.connected(client_id, 0)          # leaving: it replays nothing
        with self._inflight_lock:
            self._serial.pop(client_id, None)

    def _forget_client(self, client_id: str, replies: Callable[[str], None]) -> None:
        """Close a gone client's opens, drop its saved replies and its record. Each step that the
        database refuses (a full disk) is left for later: the opens and the record to the next
        start's recovery, the replies to the sweeper."""
        for what, step in (("closing its open files", self.close_client), ("dropping its saved replies", replies),
                           ("forgetting it", lambda cid: clienttab.left(self.store, cid))):
            try:
                step(client_id)
            except LpError as e:
                log.warning("client %s gone: %s is left for later: %s", client_id, what, e.message)

    # ---- OSTs -----------------------------------------------------------------------

    def announce(self, fsname: str, index: int, uuid: str, address: str, statfs: Statfs, boot_id: int,
                 placement: tuple[str, str] = ("", "")) -> None:
        if fsname != self.fsname:
            raise LpError(errno.EINVAL, f"OST {uuid} belongs to file system {fsname!r}, not {self.fsname!r}")
        _check_announced(fsname, index, uuid, address)
        st = self.registry.get(index)
        if st is None or st.uuid != uuid or st.address != address:
            self.store.write(lambda tx: tx.ost_register(index, uuid, address))
        became, restarted = self.registry.heartbeat(index, uuid, address, statfs, boot_id, placement)
        if became:
            log.info("OST%04x %s active at %s", index, uuid, address)
            self.osp.wake()
        if restarted:
            log.info("OST%04x %s restarted", index, uuid)

    def ost_count(self) -> int:
        return self.registry.count()

    # ---- layouts ----------------------------------------------------------------------

    def check_layout(self, lo: Layout) -> None:
        """Validate a requested layout against the registered OSTs."""
        n = self.ost_count()
        lo.check(ost_count=n if n else None)

    def allocate(self, tx: Tx, lo: Layout, fid: Fid | None = None) -> Layout:
        """Choose OSTs and take precreated object ids, inside the caller's transaction.

        While an active OST is skipped only because its pool is empty, this raises
        ENOSPC so write_with_objects waits for precreation; past that wait a file
        gets fewer stripes rather than none.
        """
        forced = None
        if tx.forced is not None:           # a replay: the objects its first reply named
            forced = dict(tx.forced.layouts).get(fid) if tx.forced.layouts and fid else tx.forced.layout
        if forced is not None and forced.has_objects:
            for o in forced.all_objects():
                self._skipped.update((o.ost_index, i) for i in resources.pool_claim(tx, o.ost_index, o.object_id))
            return forced
        ranges = resources.pool_ranges(tx)
        pools = resources.sizes_of(ranges)
        osts = self.registry.all()
        if lo.wanted_mirrors() > 1:
            return self._allocate_mirrors(tx, lo, osts, ranges, pools)
        if not getattr(self._alloc, "lenient", False):
            open_osts = self.allocator.open_osts(lo, osts)
            usable = self.allocator.usable(lo, osts, pools)
            want = len(open_osts) if lo.stripe_count == -1 else min(lo.stripe_count, len(open_osts))
            if len(usable) < want:
                self.osp.wake()
                raise LpError(errno.ENOSPC, "waiting for object precreation")
        chosen = list(self.allocator.choose(lo, osts, pools))
        ids = resources.pool_take_each(tx, ranges, chosen)
        objs = [StripeObject(i, oid) for i, oid in zip(chosen, ids, strict=True)]
        if any(pools.get(i, 0) - 1 < self.cfg.precreate_low for i in chosen):
            self.osp.wake()
        return Layout(stripe_size=lo.stripe_size, stripe_count=len(objs),
                      stripe_offset=objs[0].ost_index, pattern=lo.pattern, objects=tuple(objs))

    def _allocate_mirrors(self, tx: Tx, lo: Layout, osts: list[OstState], ranges: dict[int, tuple[int, int]],
                          pools: dict[int, int]) -> Layout:
        """A new mirrored file's mirrors (ids 1..N), each on nodes of its own; fewer mirrors than asked
        when there are not enough nodes (the file is then degraded, as `lfsctl mirror status` shows)."""
        want = lo.wanted_mirrors()
        plan = self.allocator.choose_mirrors(lo, osts, pools, want)
        if not getattr(self._alloc, "lenient", False):
            ready = {s.index: 1 for s in self.allocator.open_osts(lo, osts)}
            if sum(map(len, plan)) < sum(map(len, self.allocator.choose_mirrors(lo, osts, ready, want))):
                self.osp.wake()
                raise LpError(errno.ENOSPC, "waiting for object precreation")
        flat = [i for chosen in plan for i in chosen]
        ids = iter(resources.pool_take_each(tx, ranges, flat))
        if any(pools.get(i, 0) - 1 < self.cfg.precreate_low for i in flat):
            self.osp.wake()
        if len(plan) < want:
            log.warning("a new file gets %d of %d mirrors: not enough OSS nodes with room", len(plan), want)
        mirrors = []
        for k, chosen in enumerate(plan, start=1):
            objs = tuple(StripeObject(i, next(ids)) for i in chosen)
            mirrors.append(Mirror(k, Layout(stripe_size=lo.stripe_size, stripe_count=len(objs),
                                            stripe_offset=objs[0].ost_index, objects=objs)))
        return Layout(stripe_size=lo.stripe_size, stripe_count=lo.stripe_count, stripe_offset=-1,
                      mirror_count=want, mirrors=tuple(mirrors))

    def add_mirrors(self, tx: Tx, lo: Layout, n: int) -> Layout:
        """`lo` (a file's layout with objects) with n more mirrors of its striping, on nodes its objects
        are not on, stale until the resync copies the file into them (ENOSPC: no room for them all)."""
        comps = lo.components()
        base = comps[0].layout
        width = len(base.objects)
        osts = self.registry.all()
        by_index = {s.index: s for s in osts}
        ranges = resources.pool_ranges(tx)
        plan = self.allocator.choose_mirrors(Layout(stripe_size=base.stripe_size, stripe_count=width), osts,
                                             resources.sizes_of(ranges), n,
                                             avoid=[by_index[o.ost_index] for o in lo.all_objects()
                                                    if o.ost_index in by_index])
        plan = [c for c in plan if len(c) == width]
        if len(plan) < n:
            self.osp.wake()
            raise LpError(errno.ENOSPC, f"room for {len(plan)} of {n} more mirrors on other OSS nodes")
        ids = iter(resources.pool_take_each(tx, ranges, [i for c in plan for i in c]))
        have = lo.mirrors or (Mirror(1, Layout(stripe_size=base.stripe_size, stripe_count=width,
                                               stripe_offset=base.objects[0].ost_index, objects=base.objects)),)
        first = max(m.mirror_id for m in have) + 1
        new = tuple(Mirror(first + k, Layout(stripe_size=base.stripe_size, stripe_count=width, stripe_offset=c[0],
                                             objects=tuple(StripeObject(i, next(ids)) for i in c)), stale=True)
                    for k, c in enumerate(plan))
        return Layout(stripe_size=base.stripe_size, stripe_count=width, generation=lo.generation,
                      mirror_count=len(have) + n, mirrors=have + new)

    def write_with_objects(self, fn: Callable[[Tx], R], *, client_id: str = "", xid: int = 0,
                           encode: Callable[[R, int], bytes] | None = None, now_ns: int = 0) -> tuple[R, int]:
        """store.write(fn), retried while object pools refill (precreation catching up)."""
        deadline = time.monotonic() + self.cfg.pool_wait
        self._alloc.lenient = False
        try:
            while True:
                try:
                    return self.store.write(fn, client_id=client_id, xid=xid, encode=encode, now_ns=now_ns)
                except LpError as e:
                    if e.errno != errno.ENOSPC or isinstance(e, MdtFull) or not (
                            any(not s.full for s in self.registry.active()) or self._osts_may_come()):
                        raise
                    if time.monotonic() > deadline:
                        if self._alloc.lenient:
                            raise
                        self._alloc.lenient = True      # last try: take what the pools have
                        continue
                    self.osp.wait_pools(0.2)
        finally:
            self._alloc.lenient = False

    def _osts_may_come(self) -> bool:
        """Just restarted: known OSTs may not have announced themselves yet."""
        recent = time.monotonic() - self.started < self.cfg.ost_timeout + 2 * self.cfg.heartbeat_interval
        return recent and bool(self.registry.all())

    # ---- resends ------------------------------------------------------------------------

    def begin(self, client_id: str, xid: int) -> bool:
        """Mark (client, xid) in flight; if it already is, wait for it and return False."""
        key = (client_id, xid)
        with self._inflight_lock:
            if key not in self._inflight:
                self._inflight[key] = None      # an Event only when a resend has to wait for it
                return True
            ev = self._inflight[key]
            if ev is None:
                ev = self._inflight[key] = threading.Event()
        ev.wait(60)
        return False

    def end(self, client_id: str, xid: int) -> None:
        with self._inflight_lock:
            ev = self._inflight.pop((client_id, xid), None)
        if ev is not None:
            ev.set()

    def client_mutex(self, client_id: str) -> threading.Lock:
        """The client's own mutex: its batches of update records (a resend among them) replay
        one at a time, so a resend waits for the original and then skips what it applied."""
        with self._inflight_lock:
            return self._serial.setdefault(client_id, threading.Lock())


def _no_replay(client_id: str, item: Any) -> Any:
    raise RuntimeError("this MDT has no replay handler: the server did not set one")


_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))$")
MAX_OST_INDEX = 0xFFFF


def _check_announced(fsname: str, index: int, uuid: str, address: str) -> None:
    """EINVAL for an announce no OSS of this file system sends: its index, uuid and address."""
    if not 0 <= index <= MAX_OST_INDEX or uuid != f"{fsname}-OST{index:04x}_UUID":
        raise LpError(errno.EINVAL, f"bad OST announce: index {index}, uuid {uuid[:80]!r}")
    host, sep, port = address.rpartition(":")
    if not sep or not _HOST_RE.match(host) or not port.isdigit() or not 0 < int(port) <= 65535:
        raise LpError(errno.EINVAL, f"bad OST announce: address {address[:80]!r}")
