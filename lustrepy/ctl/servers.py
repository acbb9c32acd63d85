"""The servers of one file system as lfsctl sees them, and calls to any one of them.

The MDS is found by target.resolve; every OST's address comes from the MDS's
Statfs reply (the OST registry). `server_call` opens a channel to one server,
makes one call with a deadline and closes it; transport trouble becomes a
ServerError naming the server, so a command asking many servers can report
the ones that did not answer and go on with the rest. This module renders
nothing and never imports a server or lock package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lustrepy.common.errors import LpError, QuietError
from lustrepy.ctl import query
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import check_rep
from lustrepy.rpc.v1 import common_pb2 as cpb

log = logging.getLogger(__name__)

MDT = "MDT"
OST = "OST"


@dataclass(frozen=True, slots=True)
class Server:
    """One target: the MDT (index 0) or an OST, where it serves, and whether the MDS sees it alive."""

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
    """(fsname, [the MDT, then every registered OST by index]) from the MDS's Statfs."""
    st = query.fs_status(mds_address, timeout)
    return st.fsname, of_status(mds_address, st)


def of_status(mds_address: str, st: query.FsStatus) -> list[Server]:
    """The MDT, then every OST the MDS's Statfs reply `st` lists."""
    out = [Server(MDT, 0, f"{st.fsname}-MDT0000", mds_address)]
    out += [Server(OST, o.index, f"{st.fsname}-OST{o.index:04x}", o.address, o.active) for o in st.osts]
    return out


def select(servers: list[Server], mds: bool = False, ost: int | None = None) -> list[Server]:
    """The MDT alone (--mds), one OST (--ost N), or all; QuietError for an OST the MDS does not know."""
    if mds:
        return [s for s in servers if s.kind == MDT]
    if ost is not None:
        chosen = [s for s in servers if s.kind == OST and s.index == ost]
        if not chosen:
            known = ", ".join(str(s.index) for s in servers if s.kind == OST) or "none"
            raise QuietError(f"no OST {ost} in this file system (OSTs: {known})")
        return chosen
    return servers


def server_call(server: Server, stub_cls: Callable[[Any], Any], fn: Callable[[Any, float], Any],
                what: str, timeout: float = query.DEFAULT_TIMEOUT_S) -> Any:
    """fn(stub, timeout) against one server; its reply header checked. ServerError on any failure."""
    if not server.address:
        raise ServerError(server, "no address known (the OST never registered)")
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
