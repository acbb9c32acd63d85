"""The servers of one file system as lfsctl sees them, and calls to any one of them.

MDT0's MDS is found by target.resolve; every OST's address comes from its
Statfs reply (the OST registry), every other MDT's from its Fld reply (the
MDT registry; an MDS that does not answer Fld serves one MDT). `server_call`
opens a channel to one server, makes one call with a deadline and closes
it; transport trouble becomes a ServerError naming the server, so a command
asking many servers can report the ones that did not answer and go on with
the rest. This module renders nothing and never imports a server or lock
package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.fld import MdtInfo, mdt_name
from lustrepy.ctl import fldq, query
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import check_rep
from lustrepy.rpc.v1 import common_pb2 as cpb

log = logging.getLogger(__name__)

MDT = "MDT"
OST = "OST"


@dataclass(frozen=True, slots=True)
class Server:
    """One target: an MDT or an OST, where it serves, and whether MDT0 sees it alive."""

    kind: str           # MDT | OST
    index: int
    name: str           # fsname-MDT0000 / fsname-OST0001
    address: str
    active: bool = True

    @property
    def label(self) -> str:
        """MDT0000 / OST0001: short enough for table columns."""
        return f"{self.kind}{self.index:04x}"


class ServerError(QuietError):
    """One server did not answer (or refused): one line naming it."""

    def __init__(self, server: Server, message: str, err: int = 0) -> None:
        self.server = server
        self.errno = err        # the POSIX error the server answered with; 0 for transport trouble
        super().__init__(f"{server.name} at {server.address or '?'}: {message}")


def fs_servers(mds_address: str, timeout: float = query.DEFAULT_TIMEOUT_S) -> tuple[str, list[Server]]:
    """(fsname, [every MDT by index, then every registered OST by index]) from MDT0's Statfs and Fld."""
    st = query.fs_status(mds_address, timeout)
    return st.fsname, of_status(mds_address, st, fldq.mdt_list(mds_address, timeout))


def mdt_servers(mds_address: str, fsname: str, timeout: float = query.DEFAULT_TIMEOUT_S) -> list[Server]:
    """Every MDT by index, from MDT0's Fld (MDT0 alone when it does not answer Fld)."""
    return of_mdts(mds_address, fsname, fldq.mdt_list(mds_address, timeout))


def of_mdts(mds_address: str, fsname: str, mdts: Iterable[MdtInfo] | None = None) -> list[Server]:
    """MDT0 at `mds_address` (the address it was reached at), then every other MDT of `mdts`."""
    out = [Server(MDT, 0, mdt_name(fsname, 0), mds_address)]
    out += [Server(MDT, m.index, mdt_name(fsname, m.index), m.address, m.active)
            for m in sorted(mdts or (), key=lambda m: m.index) if m.index != 0]
    return out


def of_status(mds_address: str, st: query.FsStatus, mdts: Iterable[MdtInfo] | None = None) -> list[Server]:
    """Every MDT (MDT0 alone without `mdts`), then every OST the MDS's Statfs reply `st` lists."""
    out = of_mdts(mds_address, st.fsname, mdts)
    out += [Server(OST, o.index, f"{st.fsname}-OST{o.index:04x}", o.address, o.active) for o in st.osts]
    return out


def _one(servers: list[Server], kind: str, index: int) -> list[Server]:
    chosen = [s for s in servers if s.kind == kind and s.index == index]
    if not chosen:
        known = ", ".join(str(s.index) for s in servers if s.kind == kind) or "none"
        raise QuietError(f"no {kind} {index} in this file system ({kind}s: {known})")
    return chosen


def select(servers: list[Server], mds: bool = False, ost: int | None = None,
           mdt: int | None = None) -> list[Server]:
    """Every MDT (--mds), one MDT (--mdt N), one OST (--ost N), or all; QuietError for an
    index MDT0 does not know."""
    if mds:
        return [s for s in servers if s.kind == MDT]
    if mdt is not None:
        return _one(servers, MDT, mdt)
    if ost is not None:
        return _one(servers, OST, ost)
    return servers


def server_call(server: Server, stub_cls: Callable[[Any], Any], fn: Callable[[Any, float], Any],
                what: str, timeout: float = query.DEFAULT_TIMEOUT_S) -> Any:
    """fn(stub, timeout) against one server; its reply header checked. ServerError on any failure."""
    if not server.address:
        raise ServerError(server, f"no address known (the {server.kind} never registered)")
    channel = make_channel(server.address)
    try:
        rep = fn(stub_cls(channel), timeout)
    except LpError as e:
        raise ServerError(server, f"cannot reach it: {query.unreachable_reason(e, timeout)}") from None
    finally:
        channel.close()
    hdr = getattr(rep, "hdr", None)
    if isinstance(hdr, cpb.RepHdr):
        try:
            check_rep(hdr)
        except LpError as e:
            raise ServerError(server, f"refused {what}: {e}", e.errno) from None
    return rep


def unary(method_name: str, request: Any) -> Callable[[Any, float], Any]:
    """A server_call fn calling stub.<method_name>(request) with the deadline."""
    return lambda stub, timeout: call(getattr(stub, method_name), request, timeout=timeout)
