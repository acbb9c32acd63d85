"""The FID location database on the wire: FldView <-> FldRange and MdtEntry messages, with the
checks a view received from a peer must pass."""

from __future__ import annotations

import errno
from collections.abc import Iterable

from lustrepy.common.errors import LpError
from lustrepy.common.fld import FldView, MdtInfo, SeqRange
from lustrepy.common.objid import valid_mdt
from lustrepy.rpc.v1 import mds_pb2 as mpb

MAX_MDT_ADDRESS = 256


def ranges_to_pb(ranges: Iterable[SeqRange]) -> list[mpb.FldRange]:
    return [mpb.FldRange(start=r.start, end=r.end, mdt=r.mdt) for r in ranges]


def mdts_to_pb(mdts: Iterable[MdtInfo]) -> list[mpb.MdtEntry]:
    return [mpb.MdtEntry(index=m.index, uuid=m.uuid, address=m.address, active=m.active) for m in mdts]


def ranges_from_pb(ms: Iterable[mpb.FldRange]) -> list[SeqRange]:
    out = []
    for m in ms:
        if not valid_mdt(m.mdt) or m.end <= m.start:
            raise LpError(errno.EPROTO, f"bad FID sequence range [{m.start:#x}, {m.end:#x}) of MDT {m.mdt}")
        out.append(SeqRange(m.start, m.end, m.mdt))
    return out


def mdts_from_pb(ms: Iterable[mpb.MdtEntry]) -> tuple[MdtInfo, ...]:
    out = []
    for m in ms:
        if not valid_mdt(m.index) or len(m.address) > MAX_MDT_ADDRESS:
            raise LpError(errno.EPROTO, f"bad MDT entry {m.index}")
        out.append(MdtInfo(m.index, m.uuid, m.address, m.active))
    return tuple(out)


def view_from_pb(ranges: Iterable[mpb.FldRange], mdts: Iterable[mpb.MdtEntry]) -> FldView:
    return FldView(ranges_from_pb(ranges), mdts_from_pb(mdts))
