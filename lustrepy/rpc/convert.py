"""Conversions between wire messages (lustrepy.rpc.v1) and common records."""

from __future__ import annotations

import errno
from typing import Protocol

from lustrepy.common.capa import Capa
from lustrepy.common.errors import LpError, from_wire, to_wire
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout, Mirror, StripeObject
from lustrepy.common.records import Attr, Cred, Lvb, Statfs
from lustrepy.rpc.v1 import common_pb2 as cpb


class Reply(Protocol):
    """What every reply message has: its header, and parsing from a saved reply."""

    hdr: cpb.RepHdr

    def ParseFromString(self, serialized: bytes, /) -> int: ...

    def SerializeToString(self) -> bytes: ...



def fid_to_pb(fid: Fid) -> cpb.Fid:
    return cpb.Fid(seq=fid.seq, oid=fid.oid, ver=fid.ver)


I64_MAX = (1 << 63) - 1      # what SQLite's INTEGER (and a file offset) holds
MAX_GROUPS = 1024
MAX_LIST = 4096             # cancel cookies, capabilities a request carries
MAX_CLIENT_ID = 256


def fid_from_pb(m: cpb.Fid) -> Fid:
    """A FID from the wire; EINVAL for one no MDT can have made (past 63 bits)."""
    if m.seq > I64_MAX or m.oid > I64_MAX:
        raise LpError(errno.EINVAL, f"bad FID [{m.seq:#x}:{m.oid:#x}:{m.ver:#x}]")
    return Fid(m.seq, m.oid, m.ver)


def check_hdr(h: cpb.ReqHdr) -> None:
    """EINVAL for a request header a server cannot take: numbers past 63 bits, lists and ids
    longer than any client sends."""
    if h.xid > I64_MAX or h.replied_xid > I64_MAX or h.conn_gen > I64_MAX:
        raise LpError(errno.EINVAL, "bad request header: xid or connection generation past 63 bits")
    if len(h.groups) > MAX_GROUPS or len(h.cancel_cookies) > MAX_LIST or len(h.capas) > MAX_LIST:
        raise LpError(errno.EINVAL, "bad request header: too many groups, cookies or capabilities")
    if len(h.client_id) > MAX_CLIENT_ID:
        raise LpError(errno.EINVAL, "bad request header: client id too long")


def attr_to_pb(a: Attr) -> cpb.Attr:
    return cpb.Attr(
        fid=fid_to_pb(a.fid), ino=a.fid.ino(), mode=a.mode, nlink=a.nlink, uid=a.uid, gid=a.gid,
        size=a.size, blocks=a.blocks, atime_ns=a.atime_ns, mtime_ns=a.mtime_ns,
        ctime_ns=a.ctime_ns, rdev=a.rdev, generation=a.generation,
    )


def attr_from_pb(m: cpb.Attr) -> Attr:
    return Attr(
        fid=fid_from_pb(m.fid), mode=m.mode, nlink=m.nlink, uid=m.uid, gid=m.gid, size=m.size,
        blocks=m.blocks, atime_ns=m.atime_ns, mtime_ns=m.mtime_ns, ctime_ns=m.ctime_ns,
        rdev=m.rdev, generation=m.generation,
    )


def layout_to_pb(lo: Layout) -> cpb.Layout:
    return cpb.Layout(
        stripe_size=lo.stripe_size, stripe_count=lo.stripe_count, stripe_offset=lo.stripe_offset,
        pattern=lo.pattern, generation=lo.generation, mirror_count=lo.mirror_count,
        objects=[cpb.StripeObject(ost_index=o.ost_index, object_id=o.object_id) for o in lo.objects],
        mirrors=[cpb.Mirror(mirror_id=m.mirror_id, stale=m.stale, layout=layout_to_pb(m.layout), syncing=m.syncing)
                 for m in lo.mirrors],
    )


def layout_from_pb(m: cpb.Layout, depth: int = 0) -> Layout:
    """The layout of a message; a mirror's own mirrors (malformed) are not followed."""
    return Layout(
        stripe_size=m.stripe_size, stripe_count=m.stripe_count, stripe_offset=m.stripe_offset,
        pattern=m.pattern or "raid0", generation=m.generation, mirror_count=m.mirror_count,
        objects=tuple(StripeObject(o.ost_index, o.object_id) for o in m.objects),
        mirrors=() if depth else tuple(Mirror(x.mirror_id, layout_from_pb(x.layout, 1), x.stale, x.syncing)
                                       for x in m.mirrors),
    )


def lvb_to_pb(v: Lvb) -> cpb.Lvb:
    return cpb.Lvb(size=v.size, blocks=v.blocks, mtime_ns=v.mtime_ns, atime_ns=v.atime_ns, ctime_ns=v.ctime_ns)


def lvb_from_pb(m: cpb.Lvb) -> Lvb:
    return Lvb(m.size, m.blocks, m.mtime_ns, m.atime_ns, m.ctime_ns)


def statfs_to_pb(s: Statfs) -> cpb.Statfs:
    return cpb.Statfs(bsize=s.bsize, blocks=s.blocks, bfree=s.bfree, bavail=s.bavail, files=s.files, ffree=s.ffree)


def statfs_from_pb(m: cpb.Statfs) -> Statfs:
    return Statfs(m.bsize, m.blocks, m.bfree, m.bavail, m.files, m.ffree)


def cred_from_hdr(h: cpb.ReqHdr) -> Cred:
    return Cred(h.uid, h.gid, tuple(h.groups))


def rep_ok(transno: int = 0, last_committed: int = 0) -> cpb.RepHdr:
    return cpb.RepHdr(errno=0, transno=transno, last_committed=last_committed)


def rep_err(e: LpError, last_committed: int = 0) -> cpb.RepHdr:
    return cpb.RepHdr(errno=to_wire(e.errno), message=e.message[:400], last_committed=last_committed)


def check_rep(h: cpb.RepHdr) -> None:
    """Raise the reply's POSIX error, if it carries one."""
    if h.errno:
        raise LpError(from_wire(h.errno), h.message)


def capa_to_pb(c: Capa) -> cpb.Capa:
    return cpb.Capa(ost_index=c.ost_index, object_id=c.object_id, mode=c.mode, expiry=int(c.expiry),
                    key_id=c.key_id, mac=c.mac)


def capa_from_pb(m: cpb.Capa) -> Capa:
    return Capa(m.ost_index, m.object_id, m.mode, float(m.expiry), m.key_id, bytes(m.mac))
