"""Conversions between ldlm records (ResId, Extent, Lock, Callback) and lustrepy.rpc.v1 messages.

Only shapes change here; never any rule or state.
"""

from __future__ import annotations

import errno

from typing import cast

from lustrepy.common.errors import LpError
from lustrepy.common.records import Lvb
from lustrepy.ldlm.core import Callback, CallbackKind
from lustrepy.ldlm.extent import Extent
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import Lock, ResId
from lustrepy.rpc.convert import lvb_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import ldlm_pb2 as lpb


def res_to_pb(res: ResId) -> cpb.ResId:
    return cpb.ResId(n0=res.n0, n1=res.n1, n2=res.n2)


def res_from_pb(m: cpb.ResId) -> ResId:
    return ResId(m.n0, m.n1, m.n2)


def extent_to_pb(ext: Extent) -> cpb.Extent:
    return cpb.Extent(start=ext.start, end=ext.end)


def extent_from_pb(m: cpb.Extent) -> Extent:
    try:
        return Extent(m.start, m.end)
    except ValueError as e:
        raise LpError(errno.EINVAL, str(e)) from None


def mode_from_pb(value: int) -> LockMode:
    try:
        return LockMode(value)
    except ValueError:
        raise LpError(errno.EINVAL, f"bad lock mode {value}") from None


def mode_to_pb(mode: LockMode) -> cpb.LockMode:
    """A mode as the wire's enum field takes it (its number; protoc's stubs name the enum type)."""
    return cast("cpb.LockMode", int(mode))


def lock_to_pb(lock: Lock) -> cpb.LockDesc:
    desc = cpb.LockDesc(cookie=lock.cookie, res=res_to_pb(lock.res), mode=mode_to_pb(lock.mode),
                        ibits=lock.ibits, owner=lock.owner)
    if lock.extent is not None:
        desc.extent.CopyFrom(extent_to_pb(lock.extent))
    return desc


def lock_from_pb(desc: cpb.LockDesc, *, granted: bool = True) -> Lock:
    """A Lock record from a description; the extent counts only when the message carries one."""
    extent = extent_from_pb(desc.extent) if desc.HasField("extent") else None
    return Lock(desc.cookie, desc.owner, res_from_pb(desc.res), mode_from_pb(desc.mode), desc.ibits,
                extent, extent, granted)


_CALLBACK_KINDS: dict[CallbackKind, lpb.CallbackKind] = {
    CallbackKind.NONE: lpb.CB_NONE, CallbackKind.BLOCKING: lpb.CB_BLOCKING,
    CallbackKind.GLIMPSE: lpb.CB_GLIMPSE, CallbackKind.EVICTED: lpb.CB_EVICTED,
}


def callback_to_pb(cb: Callback) -> lpb.CallbackDown:
    """A message for a callback stream."""
    msg = lpb.CallbackDown(callback_id=cb.callback_id, kind=_CALLBACK_KINDS[cb.kind])
    if cb.lock is not None:
        msg.lock.CopyFrom(lock_to_pb(cb.lock))
    if cb.conflicting is not None:
        msg.conflicting.CopyFrom(lock_to_pb(cb.conflicting))
    return msg


def answer_lvb(up: lpb.CallbackUp) -> Lvb | None:
    """The LVB a callback answer carries, or None (none sent, or the client failed)."""
    return lvb_from_pb(up.lvb) if up.lvb_valid and not up.errno else None
