"""lfsctl lfsck's calls to the servers, turned into typed records.

Every MDT: its snapshot of every file's objects, the pools, its names across MDTs and the destroy
queue (Mds.LfsckScan, one stream), its present view of suspects (LfsckVerify) and its repairs
(LfsckRepair, where MDT0 also makes the lost+found directories of the others). Every OST: its
objects a page at a time (Oss.ListObjects) and the recreation of lost ones (Oss.Recreate). Every
call has a deadline; transport trouble with MDT0 becomes a QuietError, with another MDT or an OST
a ServerError naming it. Renders nothing and never imports a server package.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import StripeObject
from lustrepy.common.lfsckrec import (CrossName, FileObjects, FileState, NamesNow, ObjectState, Orphan, Outcome, Pending,
                                      Pool, SizeFix)
from lustrepy.ctl import query, servers
from lustrepy.ctl.servers import Server, ServerError
from lustrepy.rpc import lfsckconv as conv
from lustrepy.rpc.channel import call, stream
from lustrepy.rpc.convert import check_rep, fid_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc as mgrpc
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc as ogrpc

log = logging.getLogger(__name__)

SCAN_TIMEOUT_S = 600.0      # the MDS's whole snapshot stream
CALL_TIMEOUT_S = 60.0       # one page, one verification or one batch of repairs
PAGE = 4096                 # objects an OST lists a page
BATCH = 4096                # objects or files one verification or repair request names

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class MdtView:
    """One MDT's snapshot: its own problems, pools by OST, files with objects, queued objects, and
    its names across MDTs: stubs, remote names and the operations across MDTs it has not finished."""

    problems: tuple[str, ...]
    pools: Mapping[int, Pool]
    files: tuple[FileObjects, ...]
    queued: frozenset[StripeObject]
    index: int = 0
    stubs: tuple[CrossName, ...] = ()
    remote_names: tuple[CrossName, ...] = ()
    pending: tuple[Pending, ...] = ()


@dataclass(frozen=True, slots=True)
class OstObject:
    object_id: int
    size: int
    blocks: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class OstView:
    """One OST's objects by id, and its LAST_ID."""

    index: int
    objects: Mapping[int, OstObject]
    last_id: int


def _hdr() -> cpb.ReqHdr:
    """lfsctl holds no connection (export) on any server: an anonymous header."""
    return cpb.ReqHdr(xid=1, uid=os.getuid(), gid=os.getgid())


def _rpc(mdt: Server, fn: Callable[[mgrpc.MdsStub], Any], timeout: float, what: str) -> Any:
    """fn(stub) against one MDT: transport trouble with MDT0 is a QuietError (nothing can be
    checked without it), with another MDT a ServerError naming it."""
    if mdt.index == 0:
        return query.mds_rpc(mdt.address, fn, timeout)
    return servers.server_call(mdt, mgrpc.MdsStub, lambda stub, _: fn(stub), what, timeout)


def _unary(mdt: Server, method: str, req: Any, what: str) -> Any:
    rep = _rpc(mdt, lambda stub: call(getattr(stub, method), req, timeout=CALL_TIMEOUT_S), CALL_TIMEOUT_S, what)
    _checked(rep.hdr, mdt, what)
    return rep


def _checked(hdr: cpb.RepHdr, mdt: Server, what: str) -> None:
    try:
        check_rep(hdr)
    except LpError as e:
        if mdt.index == 0:
            raise QuietError(f"MDS at {mdt.address} refused {what}: {e}") from None
        raise ServerError(mdt, f"refused {what}: {e}", e.errno) from None


def scan_mdt(mdt: Server, progress: Progress, timeout: float = SCAN_TIMEOUT_S) -> MdtView:
    """The MDT's snapshot, streamed; progress(files so far) after each page."""
    problems: list[str] = []
    pools: dict[int, Pool] = {}
    files: list[FileObjects] = []
    queued: set[StripeObject] = set()
    stubs: list[CrossName] = []
    rnames: list[CrossName] = []
    pending: list[Pending] = []

    def run(stub: mgrpc.MdsStub) -> bool:
        for page in stream(stub.LfsckScan, mpb.LfsckScanRequest(hdr=_hdr()), timeout):
            _checked(page.hdr, mdt, "the lfsck scan")
            problems.extend(page.problems)
            pools.update((p.ost_index, conv.pool_from_pb(p)) for p in page.pools)
            files.extend(conv.file_from_pb(f) for f in page.files)
            queued.update(conv.obj_from_pb(o) for o in page.queued)
            stubs.extend(map(conv.cross_from_pb, page.stubs))
            rnames.extend(map(conv.cross_from_pb, page.remote_names))
            pending.extend(map(conv.pending_from_pb, page.pending))
            progress(len(files))
            if page.last:
                return True
        return False

    if not _rpc(mdt, run, timeout, "the lfsck scan"):
        if mdt.index == 0:
            raise QuietError(f"the MDS at {mdt.address} ended its lfsck scan early")
        raise ServerError(mdt, "ended its lfsck scan early")
    return MdtView(tuple(problems), pools, tuple(files), frozenset(queued), mdt.index, tuple(stubs), tuple(rnames),
                   tuple(pending))


def verify(mdt: Server, objects: Sequence[StripeObject], fids: Sequence[Fid]) -> tuple[
        dict[StripeObject, ObjectState], dict[Fid, FileState]]:
    """The MDT's present view of `objects` and `fids`, asked BATCH at a time."""
    ostates: dict[StripeObject, ObjectState] = {}
    fstates: dict[Fid, FileState] = {}
    for objs, fs in _batches(objects, fids):
        req = mpb.LfsckVerifyRequest(hdr=_hdr(), objects=[conv.obj_to_pb(o) for o in objs],
                                     fids=[fid_to_pb(f) for f in fs])
        rep = _unary(mdt, "LfsckVerify", req, "the lfsck verification")
        ostates.update((s.object, s) for s in map(conv.object_state_from_pb, rep.objects))
        fstates.update((s.fid, s) for s in map(conv.file_state_from_pb, rep.files))
    return ostates, fstates


def names_now(mdt: Server, fids: Sequence[Fid]) -> NamesNow:
    """The MDT's present names across MDTs of `fids`, which of them are its inodes, and the
    operations across MDTs it has not finished."""
    stubs: list[CrossName] = []
    rnames: list[CrossName] = []
    inodes: dict[Fid, str] = {}
    pending: tuple[Pending, ...] = ()
    for i in range(0, max(len(fids), 1), BATCH):
        req = mpb.LfsckVerifyRequest(hdr=_hdr(), names=[fid_to_pb(f) for f in fids[i:i + BATCH]], pending=True)
        rep = _unary(mdt, "LfsckVerify", req, "the lfsck verification")
        stubs += map(conv.cross_from_pb, rep.stubs)
        rnames += map(conv.cross_from_pb, rep.remote_names)
        inodes.update(map(conv.inode_from_pb, rep.inodes))
        pending = tuple(map(conv.pending_from_pb, rep.pending))
    return NamesNow(tuple(stubs), tuple(rnames), inodes, pending)


def repair(mdt: Server, orphans: Sequence[Orphan], keep: bool, sizes: Sequence[SizeFix],
           into: Fid | None = None) -> tuple[list[Outcome], list[Outcome]]:
    """The MDT's repairs: outcomes of the orphans and of the size fixes, in their order; kept
    orphans go in directory `into` of that MDT (None: its /.lustre/lost+found)."""
    done_o: list[Outcome] = []
    done_s: list[Outcome] = []
    for orph, fixes in _batches(orphans, sizes):
        req = mpb.LfsckRepairRequest(
            hdr=_hdr(), keep_orphans=keep,
            orphans=[mpb.LfsckOrphan(object=conv.obj_to_pb(o.object), size=o.size, blocks=o.blocks) for o in orph],
            sizes=[mpb.LfsckSizeFix(fid=fid_to_pb(f.fid), seen=f.seen, size=f.size, blocks=f.blocks) for f in fixes])
        if into is not None:
            req.lost_found.CopyFrom(fid_to_pb(into))
        rep = _unary(mdt, "LfsckRepair", req, "the lfsck repair")
        done_o += map(conv.outcome_from_pb, rep.orphans)
        done_s += map(conv.outcome_from_pb, rep.sizes)
    return done_o, done_s


def lost_found_dirs(mdt0: Server, indexes: Sequence[int]) -> dict[int, tuple[Fid, str]]:
    """MDT0 makes /.lustre/lost+found/MDT<index> on each of those MDTs where missing: index ->
    (the directory's FID, its path)."""
    req = mpb.LfsckRepairRequest(hdr=_hdr(), lost_found_for=list(indexes))
    rep = _unary(mdt0, "LfsckRepair", req, "making lost+found directories")
    return dict(zip(indexes, map(conv.inode_from_pb, rep.lost_found), strict=True))


def _batches(a: Sequence[Any], b: Sequence[Any]) -> list[tuple[Sequence[Any], Sequence[Any]]]:
    """Both lists cut into requests of at most BATCH items each (at least one request)."""
    out = [(a[i:i + BATCH], b[0:0]) for i in range(0, len(a), BATCH)]
    out += [(a[0:0], b[i:i + BATCH]) for i in range(0, len(b), BATCH)]
    return out or [(a, b)]


def list_ost(server: Server, progress: Progress) -> OstView:
    """Every object of one OST, a page at a time; progress(objects so far) after each page."""
    objects: dict[int, OstObject] = {}
    cursor, last_id = 0, 0
    while True:
        req = opb.ObjListRequest(hdr=_hdr(), index=server.index, cursor=cursor, max=PAGE)
        rep = servers.server_call(server, ogrpc.OssStub, servers.unary("ListObjects", req), "the object listing",
                                  CALL_TIMEOUT_S)
        last_id = max(last_id, rep.last_id)
        objects.update((o.object_id, OstObject(o.object_id, o.size, o.blocks, o.mtime_ns)) for o in rep.objects)
        progress(len(objects))
        if rep.eof:
            return OstView(server.index, objects, last_id)
        if rep.next_cursor <= cursor:
            raise ServerError(server, f"the object listing does not move on (cursor {cursor})")
        cursor = rep.next_cursor


def recreate(server: Server, ids: Sequence[int]) -> set[int]:
    """Recreate lost objects empty on one OST; the ids created."""
    made: set[int] = set()
    for i in range(0, len(ids), BATCH):
        req = opb.RecreateRequest(hdr=_hdr(), index=server.index, object_ids=ids[i:i + BATCH])
        rep = servers.server_call(server, ogrpc.OssStub, servers.unary("Recreate", req), "recreating objects",
                                  CALL_TIMEOUT_S)
        made.update(rep.created)
    return made
