"""The lfsck RPCs of the MDS (LfsckScan, LfsckVerify, LfsckRepair): fields checked, records to wire.

The MDS servicer calls these; the reading is layoutscan.py's (names across MDTs crossnames.py's),
the repairing lfsck_repair.py's, the MDT's own invariant checks lfsck.py's. A bad field is
LpError(EINVAL) naming it. Refused while the MDS recovers (EINPROGRESS): replays may still name
objects the pools have passed over.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid, valid_fid
from lustrepy.common.layout import MAX_FILE_SIZE, StripeObject
from lustrepy.common.lfsckrec import Orphan, SizeFix
from lustrepy.mds import crossnames, layoutscan, lfsck_repair
from lustrepy.mds.lfsck import check_invariants
from lustrepy.rpc import lfsckconv as conv
from lustrepy.rpc.convert import fid_from_pb, rep_ok
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ITEMS = 65536           # objects or files one LfsckVerify or LfsckRepair may name


def _ready(mdt: Mdt) -> None:
    if mdt.recovery.blocks():
        raise LpError(errno.EINPROGRESS, "the MDS is recovering; check again when recovery is over")


def scan(mdt: Mdt, req: mpb.LfsckScanRequest) -> Iterator[mpb.LfsckScanPage]:
    """The MDT's invariant problems, then its snapshot of objects, page by page."""
    _ready(mdt)
    if req.page_files > layoutscan.PAGE_MAX:
        raise LpError(errno.EINVAL, f"page_files {req.page_files} exceeds {layoutscan.PAGE_MAX}")
    problems = check_invariants(mdt.store)
    conn = layoutscan.open_snapshot(mdt.store.db_path)
    try:
        for page in layoutscan.scan(conn, req.page_files):
            yield mpb.LfsckScanPage(hdr=rep_ok(), last=page.last, problems=problems, mdt_index=mdt.index,
                                    files=[conv.file_to_pb(f) for f in page.files],
                                    queued=[conv.obj_to_pb(o) for o in page.queued],
                                    pools=[conv.pool_to_pb(p) for p in page.pools],
                                    stubs=[conv.cross_to_pb(n) for n in page.stubs],
                                    remote_names=[conv.cross_to_pb(n) for n in page.remote_names],
                                    pending=[conv.pending_to_pb(o) for o in page.pending])
            problems = []
    finally:
        conn.close()


def verify(mdt: Mdt, req: mpb.LfsckVerifyRequest) -> mpb.LfsckVerifyReply:
    _ready(mdt)
    objects = [_obj(m) for m in _bounded(req.objects, "objects")]
    fids = [_fid(m) for m in _bounded(req.fids, "fids")]
    names = [_fid(m) for m in _bounded(req.names, "names")]
    conn = layoutscan.open_snapshot(mdt.store.db_path)
    try:
        ostates, fstates = layoutscan.verify(conn, objects, fids, mdt.index)
        stubs, rnames = crossnames.stubs(conn, names), crossnames.remote_names(conn, names)
        inodes = crossnames.inodes(conn, names)
        pending = crossnames.pending(conn) if req.pending else []
    finally:
        conn.close()
    return mpb.LfsckVerifyReply(hdr=rep_ok(), objects=[conv.object_state_to_pb(s) for s in ostates],
                                files=[conv.file_state_to_pb(f) for f in fstates],
                                stubs=[conv.cross_to_pb(n) for n in stubs],
                                remote_names=[conv.cross_to_pb(n) for n in rnames],
                                inodes=[conv.inode_to_pb(f, p) for f, p in inodes.items()],
                                pending=[conv.pending_to_pb(o) for o in pending])


def repair(mdt: Mdt, req: mpb.LfsckRepairRequest) -> mpb.LfsckRepairReply:
    _ready(mdt)
    orphans = [Orphan(_obj(m.object), _size(m.size, "orphan size"), m.blocks) for m in _bounded(req.orphans, "orphans")]
    fixes = [SizeFix(_fid(m.fid), m.seen, _size(m.size, "size"), m.blocks) for m in _bounded(req.sizes, "sizes")]
    into = _fid(req.lost_found) if req.HasField("lost_found") else None
    made = lfsck_repair.lost_found_dirs(mdt, list(_bounded(req.lost_found_for, "lost+found directories")))
    done_o = lfsck_repair.orphans(mdt, orphans, req.keep_orphans, into)
    done_s = lfsck_repair.sizes(mdt, fixes)
    for o, r in zip(orphans, done_o, strict=True):
        log.info("lfsck: orphan OST%04x object %d: %s%s", o.object.ost_index, o.object.object_id,
                 "" if r.done else "not repaired: ", r.note)
    for f, r in zip(fixes, done_s, strict=True):
        log.info("lfsck: size of %s: %s%s", f.fid, "" if r.done else "not repaired: ", r.note)
    return mpb.LfsckRepairReply(hdr=rep_ok(), orphans=[conv.outcome_to_pb(r) for r in done_o],
                                sizes=[conv.outcome_to_pb(r) for r in done_s],
                                lost_found=[conv.inode_to_pb(f, p) for f, p in made])


def _bounded(items: Sequence[T], what: str) -> Sequence[T]:
    if len(items) > MAX_ITEMS:
        raise LpError(errno.EINVAL, f"{len(items)} {what} exceed {MAX_ITEMS} a request")
    return items


def _obj(m: cpb.StripeObject) -> StripeObject:
    if m.object_id <= 0:
        raise LpError(errno.EINVAL, f"object id {m.object_id} on OST index {m.ost_index} names no object")
    return StripeObject(m.ost_index, m.object_id)


def _fid(m: cpb.Fid) -> Fid:
    fid = fid_from_pb(m)
    if not valid_fid(fid):
        raise LpError(errno.EINVAL, f"bad FID {fid}")
    return fid


def _size(n: int, what: str) -> int:
    if n > MAX_FILE_SIZE:
        raise LpError(errno.EINVAL, f"{what} {n} exceeds the maximum file size")
    return n
