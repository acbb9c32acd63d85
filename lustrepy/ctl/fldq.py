"""lfsctl's client of Mds.Fld: the MDTs of a file system, as MDT0 knows them.

MDT0 keeps the file system's MDT registry (index, uuid, the address each MDS
serves at, whether it has been heard from lately). An MDS that does not
answer Fld (an older one: the method is unknown to it, or its reply carries
an error) serves a file system of one MDT, and `mdt_list` says so with None.
Transport trouble is one QuietError line, as for every call to the MDS. This
module renders nothing and never imports a server package.
"""

from __future__ import annotations

import logging

import grpc

from lustrepy.common.errors import LpError, QuietError, from_wire
from lustrepy.common.fld import MdtInfo
from lustrepy.ctl import query
from lustrepy.rpc.channel import make_channel, transport_errno
from lustrepy.rpc.fldwire import view_from_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc as mgrpc

log = logging.getLogger(__name__)


def mdt_list(address: str, timeout: float = query.DEFAULT_TIMEOUT_S) -> tuple[MdtInfo, ...] | None:
    """Every MDT the MDS at `address` knows, by index; None when it does not answer Fld (one MDT)."""
    channel = make_channel(address)
    try:
        stub = mgrpc.MdsStub(channel)  # type: ignore[no-untyped-call]
        rep = stub.Fld(mpb.FldRequest(hdr=query.anonymous_hdr()), timeout=timeout)
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else None
        if code == grpc.StatusCode.UNIMPLEMENTED:
            log.debug("the MDS at %s serves no Fld: one MDT", address)
            return None
        detail = str((e.details() if hasattr(e, "details") else None) or e)
        reason = query.unreachable_reason(LpError(transport_errno(e), detail), timeout)
        raise QuietError(f"cannot reach MDS at {address}: {reason}") from None
    finally:
        channel.close()
    if from_wire(rep.hdr.errno):
        log.debug("the MDS at %s refused Fld (%s): one MDT", address, rep.hdr.message)
        return None
    try:
        mdts = view_from_pb(rep.ranges, rep.mdts).mdts
    except LpError as e:
        raise QuietError(f"MDS at {address} sent a bad MDT list: {e.message}") from None
    return mdts or None
