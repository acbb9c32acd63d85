"""Mirrors made whole again by the MDS, without an operator: resync and re-replication.

A thread (`mirror-resync`) looks over the mirrored files every `interval`:
- a stale mirror whose OSTs are all active again is resynced in place;
- a mirror with an object on an OST inactive for longer than `delay`
  (`mds.mirror.resync_delay`) gets a new object for it on another OST,
  chosen as placement chooses (not on a node or, while there are enough,
  in a failure domain another mirror uses); the old object goes to the
  destroy queue, so it is destroyed once its OST comes back.
Either way the mirror is marked `syncing` under the file's LAYOUT lock (so
writers write it from then on), the OSS of an in-sync mirror pushes each
object to the OSS of the copy, OSS to OSS (lustrepy.oss.replica), at most
`bandwidth` bytes a second (`mds.mirror.resync_bandwidth`), and the mirror
is marked in sync, again under the LAYOUT lock, if nothing changed meanwhile:
the source still in sync and the copy still syncing with the same objects
(a writer that cannot write the copy marks it stale, which calls the copy
off). A copy that fails is tried again at a later pass; one cut by an MDS
restart starts over after it. `lfsctl mirror resync` asks for a file now,
`lfsctl mirror status` shows what is degraded and what is being copied.
Blocks an OSS found bad (its reads or its scrub: lustrepy.oss.scrub) are
asked for every `BAD_POLL` seconds; an in-sync mirror holding one is marked
stale while another is in sync, so the resync rewrites it from a good copy.

One file at a time; the store is read in snapshots and written in short
transactions; no lock is held across a copy.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Protocol

import grpc

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout, Mirror, StripeObject, mirror_of
from lustrepy.ldlm.inodebits import IBit
from lustrepy.mds import mirrors, resources
from lustrepy.mds.locking import MdsLocks
from lustrepy.mds.lod import Allocator
from lustrepy.mds.namespace import Tx
from lustrepy.mds.osp import Osp
from lustrepy.mds.ostreg import OstRegistry, OstState
from lustrepy.mds.store import Store
from lustrepy.rpc.recovery_window import RecoveryWindow
from lustrepy.mds.schema import NAMED_OBJECTS, layout_from_db
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import check_rep
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc

log = logging.getLogger(__name__)

CHUNK = 16 << 20            # bytes per Push
BAD_POLL = 10.0             # seconds between asking the OSSes for the blocks they found bad
BAD_ASKED = 100             # bad blocks asked of an OSS at a time
PUSH_TIMEOUT = 60.0
_MIRRORED = "SELECT id, seq, oid, ver, layout FROM inodes WHERE layout LIKE '%\"m\":[%'"


class Host(Protocol):
    """What the resync needs of its MDT (lustrepy.mds.mdt.Mdt is one)."""

    store: Store
    registry: OstRegistry
    locks: MdsLocks
    allocator: Allocator
    osp: Osp
    recovery: RecoveryWindow
    started: float
    uuid: str


@dataclass
class Copy:
    """A copy under way (its fields change as it goes; read under Resyncer._mu)."""

    fid: Fid
    mirror_id: int
    why: str                    # "stale" | "replace"
    total: int = 0              # bytes to copy, as known so far
    done: int = 0
    started: float = 0.0        # monotonic


@dataclass(frozen=True, slots=True)
class CopyState:
    fid: Fid
    mirror_id: int
    why: str
    total: int
    done: int
    rate: float                 # bytes/s since it began


@dataclass(frozen=True, slots=True)
class ResyncStatus:
    degraded_files: int         # files with a mirror to rebuild, at the last pass
    copying: tuple[CopyState, ...]
    waiting: tuple[tuple[Fid, str], ...]    # degraded files that cannot be rebuilt yet, and why (the first 20)
    copied_files: int
    copied_bytes: int
    failures: int
    resync_delay_s: float
    bandwidth: int


@dataclass(frozen=True, slots=True)
class Work:
    iid: int
    fid: Fid
    layout: Layout
    mirror: Mirror              # the mirror to rebuild
    replace: tuple[int, ...]    # its stripes whose objects move to other OSTs
    source: Mirror


class Resyncer:
    """The MDS's resync thread and its status. Thread-safe."""

    def __init__(self, mdt: Host, *, delay: float = 300.0, bandwidth: int = 64 << 20, interval: float = 2.0) -> None:
        self.mdt = mdt
        self.delay = delay                  # seconds an OST stays inactive before its mirrors move away
        self.bandwidth = bandwidth          # bytes/s all copies together (0: unbounded)
        self.interval = interval
        self._mu = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._urgent: set[Fid] = set()                  # guarded by _mu
        self._copy: Copy | None = None                  # guarded by _mu
        self._degraded = 0                              # guarded by _mu: files found needing work, last pass
        self._waiting: dict[Fid, str] = {}             # guarded by _mu: why a degraded file was not copied
        self.copied_files = 0
        self.copied_bytes = 0
        self.failures = 0
        self._stubs: dict[str, oss_pb2_grpc.OssStub] = {}
        self._bad_polled = 0.0
        self.bad_found = 0          # mirrors marked stale for bad blocks
        self._channels: list[grpc.Channel] = []
        self._thread = threading.Thread(target=self._run, name="mirror-resync", daemon=True)

    # ---- life cycle and requests ---------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        for ch in self._channels:
            ch.close()

    def request(self, fid: Fid) -> None:
        """Resync this file at the next pass, first."""
        with self._mu:
            self._urgent.add(fid)
        self._wake.set()

    def status(self) -> ResyncStatus:
        with self._mu:
            c = self._copy
            copying = () if c is None else (
                CopyState(c.fid, c.mirror_id, c.why, c.total, c.done, c.done / max(time.monotonic() - c.started, 1e-3)),)
            return ResyncStatus(self._degraded, copying, tuple(sorted(self._waiting.items()))[:20], self.copied_files,
                                self.copied_bytes, self.failures, self.delay, self.bandwidth)

    # ---- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self.mdt.recovery.blocks():
                continue
            try:
                self._pass()
            except LpError as e:
                log.warning("mirror resync pass: %s", e.message)
            except Exception:  # the thread must go on whatever one pass hit
                log.exception("mirror resync pass failed")

    def _pass(self) -> None:
        with self._mu:
            urgent, self._urgent = self._urgent, set()
        if time.monotonic() - self._bad_polled >= BAD_POLL:
            self._bad_polled = time.monotonic()
            self._stale_for_bad_blocks()
        work, waiting = self._find(urgent)
        with self._mu:
            self._degraded = len(work) + len(waiting)
            self._waiting = waiting
        for w in work:
            if self._stop.is_set():
                return
            self._rebuild(w)

    def _find(self, urgent: set[Fid]) -> tuple[list[Work], dict[Fid, str]]:
        """What to rebuild (urgent files first), and why the other degraded files wait."""
        now = time.monotonic()
        reg = self.mdt.registry
        active = {s.index for s in reg.active()}
        since = now - self.mdt.started

        def gone(st: OstState) -> bool:
            return not st.active and min(reg.age(st), since) > self.delay
        dead = {s.index for s in reg.all() if gone(s)}
        found: list[Work] = []
        waiting: dict[Fid, str] = {}
        for iid, seq, oid, ver, text in self.mdt.store.read().conn.execute(_MIRRORED).fetchall():
            fid, lo = Fid(seq, oid, ver), layout_from_db(text)
            w, why = _plan(iid, fid, lo, active, dead)
            if w is not None:
                found.append(w)
            elif why:
                waiting[fid] = why
        found.sort(key=lambda w: w.fid not in urgent)
        return found, waiting

    # ---- bad blocks ------------------------------------------------------------------------

    def _stale_for_bad_blocks(self) -> None:
        """Mark stale each in-sync mirror holding a block its OSS found bad (another in-sync one left)."""
        bad: set[tuple[int, int]] = set()
        for st in self.mdt.registry.active():
            try:
                rep = call(self._stub(st.address).ScrubStatus, opb.ScrubStatusRequest(
                    hdr=cpb.ReqHdr(client_id=self.mdt.uuid), index=st.index, max_bad=BAD_ASKED), timeout=5.0)
                check_rep(rep.hdr)
            except LpError as e:
                log.debug("OST%04x: no bad blocks known: %s", st.index, e.message)
                continue
            bad.update((st.index, b.object_id) for b in rep.bad)
        if not bad:
            return
        some = sorted(bad)[:BAD_ASKED * 4]         # the rest at the next poll
        where = " OR ".join("(n.ost = ? AND n.obj = ?)" for _ in some)
        args = [x for pair in some for x in pair]
        rows = self.mdt.store.read().conn.execute(
            f"SELECT DISTINCT i.seq, i.oid, i.ver, n.ost, n.obj FROM ({NAMED_OBJECTS}) n JOIN inodes i "
            f"ON i.id = n.inode WHERE {where}", args).fetchall()
        for seq, oid, ver, ost, obj in rows:
            self._stale_holding(Fid(seq, oid, ver), StripeObject(int(ost), int(obj)))

    def _stale_holding(self, fid: Fid, obj: StripeObject) -> None:
        def fn(tx: Tx) -> int:
            iid, _ = tx._node(fid)
            lo = tx._layout_of(iid)
            m = next((m for m in (lo.mirrors if lo else ()) if obj in m.layout.objects), None)
            if m is None or m.stale or len(lo.in_sync() if lo else ()) < 2:
                return 0
            mirrors.mark_stale(tx, fid, m.mirror_id)
            return m.mirror_id

        try:
            with self.mdt.locks.update([(fid, IBit.LAYOUT | IBit.XATTR)]):
                mid, _ = self.mdt.store.write(fn)
        except LpError as e:
            log.warning("%s: a bad block's mirror not marked stale: %s", fid, e.message)
            return
        if mid:
            self.bad_found += 1
            log.warning("%s: mirror %d holds a block that fails its checksum on OST%04x: marked stale, to be "
                        "rewritten from an in-sync mirror", fid, mid, obj.ost_index)

    # ---- one mirror --------------------------------------------------------------------------

    def _rebuild(self, w: Work) -> None:
        why = "replace" if w.replace else "stale"
        try:
            target = self._begin(w)
        except LpError as e:
            log.info("%s: mirror %d not rebuilt now: %s", w.fid, w.mirror.mirror_id, e.message)
            return
        copy = Copy(w.fid, w.mirror.mirror_id, why, started=time.monotonic())
        with self._mu:
            self._copy = copy
        try:
            for src, dst in zip(w.source.layout.objects, target.layout.objects, strict=True):
                self._copy_object(copy, src, dst)
            self._finish(w, target)
            with self._mu:
                self.copied_files += 1
                self._degraded = max(0, self._degraded - 1)
            log.info("%s: mirror %d %s: %d bytes copied from mirror %d in %.1fs", w.fid, w.mirror.mirror_id,
                     "rebuilt on new objects" if w.replace else "resynced", copy.done, w.source.mirror_id,
                     time.monotonic() - copy.started)
        except LpError as e:
            with self._mu:
                self.failures += 1
            log.warning("%s: copying mirror %d failed, to be tried again: %s", w.fid, w.mirror.mirror_id, e.message)
            self._abandon(w, target)
        finally:
            with self._mu:
                self._copy = None

    def _begin(self, w: Work) -> Mirror:
        """Under the LAYOUT lock: the mirror (with its new objects) is marked syncing."""
        mdt = self.mdt

        def fn(tx: Tx) -> Mirror:
            iid, _ = tx._node(w.fid)
            lo = tx._layout_of(iid)
            if lo is None or lo.generation != w.layout.generation:
                raise LpError(errno.EAGAIN, "the layout changed since it was looked at")
            m = mirror_of(lo, w.mirror.mirror_id)
            objs = list(m.layout.objects)
            if w.replace:
                objs = self._new_objects(tx, lo, m, w.replace)
                resources.queue_destroy(tx, {(m.layout.objects[k].ost_index, m.layout.objects[k].object_id)
                                             for k in w.replace})
            new = replace(m, stale=True, syncing=True, layout=replace(m.layout, objects=tuple(objs)))
            mirrors.store(tx, iid, mirrors.replace_mirror(lo, new))
            return new

        with mdt.locks.update([(w.fid, IBit.LAYOUT | IBit.XATTR)]):
            target, _ = mdt.store.write(fn)
        if w.replace:
            mdt.osp.wake()
        return target

    def _new_objects(self, tx: Tx, lo: Layout, m: Mirror, stripes: tuple[int, ...]) -> list[StripeObject]:
        """New objects for those stripes of `m`, on OSTs whose nodes no other object of the file uses."""
        mdt = self.mdt
        osts = mdt.registry.all()
        by_index = {s.index: s for s in osts}
        objs = list(m.layout.objects)
        ranges = resources.pool_ranges(tx)
        pools = resources.sizes_of(ranges)
        for k in stripes:
            keep = [o for x in lo.components() for i, o in enumerate(x.layout.objects)
                    if not (x.mirror_id == m.mirror_id and i in stripes)] + [o for i, o in enumerate(objs)
                                                                             if i in stripes and i < k]
            avoid = [by_index[o.ost_index] for o in keep if o.ost_index in by_index]
            chosen = mdt.allocator.choose_mirrors(Layout(stripe_size=m.layout.stripe_size, stripe_count=1), osts,
                                                  pools, 1, avoid=avoid)[0]
            oid = resources.pool_take_each(tx, ranges, chosen)[0]
            ranges[chosen[0]] = (ranges[chosen[0]][0] + 1, ranges[chosen[0]][1])
            pools[chosen[0]] = pools.get(chosen[0], 1) - 1
            objs[k] = StripeObject(chosen[0], oid)
        return objs

    def _copy_object(self, copy: Copy, src: StripeObject, dst: StripeObject) -> None:
        reg = self.mdt.registry
        s, d = reg.get(src.ost_index), reg.get(dst.ost_index)
        if s is None or d is None or not s.active or not d.active:
            raise LpError(errno.ENOTCONN, f"OST{src.ost_index:04x} or OST{dst.ost_index:04x} is not active")
        stub = self._stub(s.address)
        base, offset = copy.done, 0
        while not self._stop.is_set():
            t0 = time.monotonic()
            rep = self._push(stub, src, dst, d.address, offset, False)
            offset += CHUNK
            self._progress(copy, base, rep, min(offset, rep.size))
            self._pace(rep.copied, t0)
            if offset >= rep.size:          # the rest (what grew meanwhile), the size, and a sync
                rep = self._push(stub, src, dst, d.address, offset, True)
                self._progress(copy, base, rep, rep.size)
                return
        raise LpError(errno.ESHUTDOWN, "the MDS is stopping")

    def _push(self, stub: oss_pb2_grpc.OssStub, src: StripeObject, dst: StripeObject, address: str, offset: int,
              last: bool) -> opb.PushReply:
        rep = call(stub.Push, opb.PushRequest(
            hdr=cpb.ReqHdr(client_id=self.mdt.uuid), object_id=src.object_id, target_address=address,
            target_ost=dst.ost_index, target_object_id=dst.object_id, offset=offset, length=0 if last else CHUNK,
            last=last), timeout=PUSH_TIMEOUT)
        check_rep(rep.hdr)
        assert isinstance(rep, opb.PushReply)
        return rep

    def _progress(self, copy: Copy, base: int, rep: opb.PushReply, done: int) -> None:
        with self._mu:
            copy.done = base + done
            copy.total = max(copy.total, base + rep.size)
            self.copied_bytes += rep.copied

    def _pace(self, nbytes: int, t0: float) -> None:
        bw = self.bandwidth
        if bw > 0:
            left = nbytes / bw - (time.monotonic() - t0)
            if left > 0:
                self._stop.wait(left)

    def _stub(self, address: str) -> oss_pb2_grpc.OssStub:
        stub = self._stubs.get(address)
        if stub is None:
            ch = make_channel(address, "oss")
            self._channels.append(ch)
            stub = self._stubs[address] = oss_pb2_grpc.OssStub(ch)
        return stub

    def _finish(self, w: Work, target: Mirror) -> None:
        """Under the LAYOUT lock: the copy is in sync, if nothing called it off meanwhile."""
        def fn(tx: Tx) -> None:
            iid, _ = tx._node(w.fid)
            lo = tx._layout_of(iid)
            if lo is None:
                raise LpError(errno.ENOENT, "the file has no layout any more")
            m, src = mirror_of(lo, target.mirror_id), mirror_of(lo, w.source.mirror_id)
            if not m.syncing or m.layout.objects != target.layout.objects:
                raise LpError(errno.ECANCELED, "a writer could not write the copy, or the mirror changed")
            if src.stale or src.layout.objects != w.source.layout.objects:
                raise LpError(errno.ECANCELED, "the mirror copied from is no longer in sync")
            mirrors.store(tx, iid, mirrors.replace_mirror(lo, replace(m, stale=False, syncing=False)))

        with self.mdt.locks.update([(w.fid, IBit.LAYOUT | IBit.XATTR)]):
            self.mdt.store.write(fn)

    def _abandon(self, w: Work, target: Mirror) -> None:
        """A copy failed: the mirror stays stale, and writers stop writing it."""
        def fn(tx: Tx) -> None:
            iid, _ = tx._node(w.fid)
            lo = tx._layout_of(iid)
            if lo is None or not lo.mirrors:
                return
            m = mirror_of(lo, target.mirror_id)
            if m.syncing:
                mirrors.store(tx, iid, mirrors.replace_mirror(lo, replace(m, syncing=False)))

        try:
            with self.mdt.locks.update([(w.fid, IBit.LAYOUT | IBit.XATTR)]):
                self.mdt.store.write(fn)
        except LpError as e:
            log.warning("%s: mirror %d left syncing: %s", w.fid, target.mirror_id, e.message)


def _plan(iid: int, fid: Fid, lo: Layout, active: set[int], dead: set[int]) -> tuple[Work | None, str]:
    """The one mirror of the file to rebuild now (None, and why not, when none can be)."""
    sources = [m for m in lo.in_sync() if all(o.ost_index in active for o in m.layout.objects)]
    need = ""
    for m in lo.mirrors:
        moved = tuple(k for k, o in enumerate(m.layout.objects) if o.ost_index in dead)
        down = any(o.ost_index not in active for o in m.layout.objects)
        if not moved and (not m.stale or down):
            if down:
                need = need or f"mirror {m.mirror_id} has an OST down (moved after mds.mirror.resync_delay)"
            continue
        src = next((s for s in sources if s.mirror_id != m.mirror_id), None)
        if src is None:
            need = f"no in-sync mirror with every OST active to copy mirror {m.mirror_id} from"
            continue
        return Work(iid, fid, lo, m, moved, src), ""
    return None, need
