"""lfsctl's client of the MDS: Statfs and Info calls, turned into typed records.

Every call has a short deadline; transport trouble becomes one QuietError line
("cannot reach MDS at HOST:PORT: ..."). This module renders nothing and never
imports a server package.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.records import Statfs
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import check_rep, statfs_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc as mgrpc
from lustrepy.rpc.v1 import oss_pb2_grpc as ogrpc

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class OstState:
    index: int
    uuid: str
    address: str
    active: bool
    last_seen_s: float
    statfs: Statfs
    precreated: int = 0
    full: bool = False
    node: str = ""
    failure_domain: str = ""


@dataclass(frozen=True, slots=True)
class MdtState:
    """One MDT as df shows it: its own Statfs (None: inactive, or it did not answer)."""

    index: int
    uuid: str
    statfs: Statfs | None

    @property
    def active(self) -> bool:
        return self.statfs is not None


@dataclass(frozen=True, slots=True)
class FsStatus:
    """What Mds.Statfs tells: the MDT and every OST the MDS knows of; `mdts`, when filled in
    by asking each MDT, every MDT of a file system of several (empty: MDT0 alone, `mdt`)."""

    fsname: str
    mdt: Statfs
    osts: tuple[OstState, ...]
    total: Statfs = field(default_factory=Statfs)
    mdts: tuple[MdtState, ...] = ()

    @property
    def mdt_uuid(self) -> str:
        return f"{self.fsname}-MDT0000_UUID"

    def mdt_states(self) -> tuple[MdtState, ...]:
        """Every MDT, by index (MDT0 alone when no other was asked)."""
        return self.mdts or (MdtState(0, self.mdt_uuid, self.mdt),)

    def active_indexes(self) -> frozenset[int]:
        return frozenset(o.index for o in self.osts if o.active)


@dataclass(frozen=True, slots=True)
class MdsInfo:
    address: str
    uuid: str
    fsname: str
    uptime_s: float
    version: str
    clients: int
    last_transno: int
    last_committed: int
    counters: tuple[tuple[str, int], ...] = ()
    recovery: Recovery | None = None


@dataclass(frozen=True, slots=True)
class Recovery:
    """A server's recovery after its last start (state "none": it knew no client)."""

    state: str
    clients_expected: int
    clients_recovered: int
    clients_evicted: int
    replays_applied: int
    replays_failed: int
    time_left_s: float
    took_s: float


def ost_uuid(fsname: str, index: int) -> str:
    """Lustre's target name: the index in four hex digits."""
    return f"{fsname}-OST{index:04x}_UUID"


def anonymous_hdr() -> cpb.ReqHdr:
    """An anonymous header: lfsctl holds no connection (export) on the MDS, so it sends no client id."""
    return cpb.ReqHdr(xid=1, uid=os.getuid(), gid=os.getgid())


def unreachable_reason(e: LpError, timeout: float) -> str:
    """A short reason for transport trouble (gRPC's details run long)."""
    detail = e.message.removeprefix("rpc failed: ")
    if e.errno == errno.ETIMEDOUT:
        return f"no answer within {timeout:g}s"
    for known in ("Connection refused", "No route to host", "Network is unreachable", "Name or service not known",
                  "DNS resolution failed"):
        if known.lower() in detail.lower():
            return known[0].lower() + known[1:]
    return detail


def mds_rpc(address: str, fn: Callable[[mgrpc.MdsStub], Any], timeout: float) -> Any:
    """fn(stub) over a channel of its own to the MDS; transport trouble -> one QuietError line."""
    channel = make_channel(address)
    try:
        return fn(mgrpc.MdsStub(channel))  # type: ignore[no-untyped-call]
    except LpError as e:
        raise QuietError(f"cannot reach MDS at {address}: {unreachable_reason(e, timeout)}") from None
    finally:
        channel.close()


def fs_status_from_pb(rep: mpb.MdsStatfsReply) -> FsStatus:
    osts = tuple(sorted((
        OstState(index=o.index, uuid=o.uuid or ost_uuid(rep.fsname, o.index), address=o.address,
                 active=o.active, last_seen_s=o.last_seen_s, statfs=statfs_from_pb(o.statfs),
                 precreated=o.precreated, full=o.full, node=o.node, failure_domain=o.failure_domain)
        for o in rep.osts), key=lambda o: o.index))
    return FsStatus(fsname=rep.fsname, mdt=statfs_from_pb(rep.mdt), osts=osts, total=statfs_from_pb(rep.total))


def mds_info_from_pb(rep: mpb.MdsInfoReply, address: str) -> MdsInfo:
    return MdsInfo(address=rep.address or address, uuid=rep.uuid, fsname=rep.fsname, uptime_s=rep.uptime_s,
                   version=rep.version, clients=rep.clients, last_transno=rep.last_transno,
                   last_committed=rep.last_committed, counters=tuple(sorted(rep.counters.items())),
                   recovery=recovery_from_pb(rep.recovery))


def recovery_from_pb(m: mpb.RecoveryState) -> Recovery | None:
    """None when the server says nothing of its recovery."""
    return Recovery(**{f: getattr(m, f) for f in Recovery.__slots__}) if m.state else None


def fs_status(address: str, timeout: float = DEFAULT_TIMEOUT_S) -> FsStatus:
    rep = mds_rpc(address, lambda stub: call(stub.Statfs, mpb.StatfsRequest(hdr=anonymous_hdr()), timeout=timeout),
                  timeout)
    _check(rep.hdr, address, "statfs")
    return fs_status_from_pb(rep)


def mds_info(address: str, timeout: float = DEFAULT_TIMEOUT_S) -> MdsInfo:
    rep = mds_rpc(address, lambda stub: call(stub.Info, mpb.MdsInfoRequest(hdr=anonymous_hdr()), timeout=timeout),
                  timeout)
    _check(rep.hdr, address, "info")
    return mds_info_from_pb(rep, address)


def replay_barrier(address: str, timeout: float = DEFAULT_TIMEOUT_S) -> int:
    """Set a replay barrier on the MDS; returns the last transno that survives its next restart."""
    rep = mds_rpc(address, lambda stub: call(stub.ReplayBarrier, mpb.BarrierRequest(hdr=anonymous_hdr()),
                                             timeout=timeout), timeout)
    _check(rep.hdr, address, "the replay barrier")
    return int(rep.transno)


def ost_replay_barrier(mds: str, index: int, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[str, int]:
    """Set a replay barrier on OST `index` (found through the MDS); its address and the barrier's transno."""
    ost = next((o for o in fs_status(mds, timeout).osts if o.index == index), None)
    if ost is None or not ost.address:
        raise QuietError(f"the MDS at {mds} knows no OST {index}")
    channel = make_channel(ost.address)
    try:
        stub = ogrpc.OssStub(channel)  # type: ignore[no-untyped-call]
        rep = call(stub.ReplayBarrier, mpb.BarrierRequest(hdr=anonymous_hdr()), timeout=timeout)
    except LpError as e:
        raise QuietError(f"cannot reach OST {index} at {ost.address}: {unreachable_reason(e, timeout)}") from None
    finally:
        channel.close()
    try:
        check_rep(rep.hdr)
    except LpError as e:
        raise QuietError(f"OST {index} at {ost.address} refused the replay barrier: {e}") from None
    return ost.address, int(rep.transno)


def _check(hdr: cpb.RepHdr, address: str, what: str) -> None:
    try:
        check_rep(hdr)
    except LpError as e:
        raise QuietError(f"MDS at {address} refused {what}: {e}") from None
