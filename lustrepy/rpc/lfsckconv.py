"""Wire forms of the layout check's records (common.lfsckrec), both ways: the MDS sends them,
lfsctl reads them. Conversion only; checking fields is the receiving server's business."""

from __future__ import annotations

from lustrepy.common.layout import StripeObject
from lustrepy.common.fid import Fid
from lustrepy.common.lfsckrec import CrossName, FileObjects, FileState, ObjectState, Outcome, Pending, Pool
from lustrepy.rpc.convert import fid_from_pb, fid_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb


def obj_to_pb(o: StripeObject) -> cpb.StripeObject:
    return cpb.StripeObject(ost_index=o.ost_index, object_id=o.object_id)


def obj_from_pb(m: cpb.StripeObject) -> StripeObject:
    return StripeObject(m.ost_index, m.object_id)


def file_to_pb(f: FileObjects) -> mpb.LfsckFile:
    return mpb.LfsckFile(fid=fid_to_pb(f.fid), stripe_size=f.stripe_size, objects=[obj_to_pb(o) for o in f.objects],
                         size=f.size, size_valid=f.size_valid)


def file_from_pb(m: mpb.LfsckFile) -> FileObjects:
    return FileObjects(fid_from_pb(m.fid), m.stripe_size, tuple(obj_from_pb(o) for o in m.objects), m.size,
                       m.size_valid)


def pool_to_pb(p: Pool) -> mpb.LfsckPool:
    return mpb.LfsckPool(ost_index=p.ost_index, next_id=p.next_id, last_id=p.last_id)


def pool_from_pb(m: mpb.LfsckPool) -> Pool:
    return Pool(m.ost_index, m.next_id, m.last_id)


def object_state_to_pb(s: ObjectState) -> mpb.LfsckObjectState:
    return mpb.LfsckObjectState(object=obj_to_pb(s.object), owner=fid_to_pb(s.owner) if s.owner else cpb.Fid(),
                                stripe=s.stripe, queued=s.queued, handed_out=s.handed_out)


def object_state_from_pb(m: mpb.LfsckObjectState) -> ObjectState:
    owner = fid_from_pb(m.owner)
    return ObjectState(obj_from_pb(m.object), None if owner.is_zero() else owner, m.stripe, m.queued, m.handed_out)


def file_state_to_pb(s: FileState) -> mpb.LfsckFileState:
    m = mpb.LfsckFileState(fid=fid_to_pb(s.fid), exists=s.file is not None, path=s.path)
    if s.file is not None:
        m.file.CopyFrom(file_to_pb(s.file))
    return m


def file_state_from_pb(m: mpb.LfsckFileState) -> FileState:
    return FileState(fid_from_pb(m.fid), file_from_pb(m.file) if m.exists else None, m.path)


def outcome_to_pb(o: Outcome) -> mpb.LfsckOutcome:
    return mpb.LfsckOutcome(done=o.done, note=o.note)


def outcome_from_pb(m: mpb.LfsckOutcome) -> Outcome:
    return Outcome(m.done, m.note)


def cross_to_pb(n: CrossName) -> mpb.LfsckCrossName:
    return mpb.LfsckCrossName(fid=fid_to_pb(n.fid), mdt=n.mdt, parent=fid_to_pb(n.parent), name=n.name, path=n.path)


def cross_from_pb(m: mpb.LfsckCrossName) -> CrossName:
    return CrossName(fid_from_pb(m.fid), m.mdt, fid_from_pb(m.parent), bytes(m.name), m.path)


def pending_to_pb(p: Pending) -> mpb.LfsckPending:
    return mpb.LfsckPending(id=p.op_id, kind=p.kind, fid=fid_to_pb(p.fid) if p.fid else cpb.Fid(),
                            names=[mpb.LfsckName(parent=fid_to_pb(d), name=n) for d, n in p.names],
                            mdts=list(p.mdts), created_ns=p.created_ns)


def pending_from_pb(m: mpb.LfsckPending) -> Pending:
    fid = fid_from_pb(m.fid)
    return Pending(m.id, m.kind, None if fid.is_zero() else fid,
                   tuple((fid_from_pb(n.parent), bytes(n.name)) for n in m.names), tuple(m.mdts), m.created_ns)


def inode_to_pb(fid: Fid, path: str) -> mpb.LfsckInode:
    return mpb.LfsckInode(fid=fid_to_pb(fid), path=path)


def inode_from_pb(m: mpb.LfsckInode) -> tuple[Fid, str]:
    return fid_from_pb(m.fid), m.path
