"""lfsctl's client of the Ldlm service each server runs: List (locks and exports) and Evict.

Turns replies into typed records shared by `lfsctl locks`, `clients` and
`evict`. Lock modes and inode bits are named from the wire enums, so this
module needs no lock package; it renders nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lustrepy.ctl.servers import Server, server_call, unary
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import ldlm_pb2 as lpb
from lustrepy.rpc.v1 import ldlm_pb2_grpc as lgrpc

log = logging.getLogger(__name__)

EOF_OFFSET = 2**64 - 1
_IBITS = tuple((v, name.removeprefix("IBIT_")) for name, v in cpb.IBit.items() if v)


@dataclass(frozen=True, slots=True)
class LockRow:
    """One lock on one server, granted or waiting."""

    cookie: int
    resource: tuple[int, int, int]
    mode: str                       # EX, PW, PR, CW, CR, NL
    ibits: int
    extent: tuple[int, int] | None  # inclusive byte range (OST locks)
    owner: str
    granted: bool
    age_s: float
    blocking_sent: bool
    local: bool
    on_behalf: str

    @property
    def flags(self) -> tuple[str, ...]:
        out = []
        if self.blocking_sent:
            out.append("blocking-sent")
        if self.local:
            out.append("local")
        if self.on_behalf and self.on_behalf == self.owner:
            out.append("wbc")
        elif self.on_behalf:
            out.append(f"for:{self.on_behalf}")
        return tuple(out)


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One client's connection (export) on one server."""

    client_id: str
    conn_gen: int
    peer: str
    callback_stream: bool
    granted_locks: int
    connected_s: float
    idle_s: float
    evicted: bool


@dataclass(frozen=True, slots=True)
class Listing:
    """What one server's lock server holds."""

    server: Server
    locks: tuple[LockRow, ...]
    exports: tuple[ExportRow, ...]
    evictions: int
    callbacks_sent: int


def mode_name(value: int) -> str:
    try:
        return str(cpb.LockMode.Name(value)).removeprefix("LCK_")
    except ValueError:
        return str(value)


def bits_str(bits: int) -> str:
    names = [name for v, name in _IBITS if bits & v]
    return "|".join(names) if names else "-"


def extent_str(ext: tuple[int, int]) -> str:
    end = "EOF" if ext[1] >= EOF_OFFSET else str(ext[1])
    return f"[{ext[0]}-{end}]"


def peer_address(peer: str) -> str:
    """gRPC's "ipv4:127.0.0.1:40000" / "ipv6:[::1]:40000" as host:port."""
    for prefix in ("ipv4:", "ipv6:"):
        if peer.startswith(prefix):
            return peer[len(prefix):]
    return peer


def _lock(m: lpb.LockState) -> LockRow:
    d = m.lock
    ext = (d.extent.start, d.extent.end) if d.HasField("extent") else None
    return LockRow(cookie=d.cookie, resource=(d.res.n0, d.res.n1, d.res.n2), mode=mode_name(d.mode),
                   ibits=d.ibits, extent=ext, owner=d.owner, granted=m.granted, age_s=m.age_s,
                   blocking_sent=m.blocking_sent, local=m.local, on_behalf=m.on_behalf)


def _export(m: lpb.ExportState) -> ExportRow:
    return ExportRow(client_id=m.client_id, conn_gen=m.conn_gen, peer=peer_address(m.peer),
                     callback_stream=m.callback_stream, granted_locks=m.granted_locks, connected_s=m.connected_s,
                     idle_s=m.idle_s, evicted=m.evicted)


def list_locks(server: Server, client_id: str = "") -> Listing:
    """Server's locks and exports (only client_id's, when given). ServerError when it does not answer."""
    rep = server_call(server, lgrpc.LdlmStub,
                      unary("List", lpb.LockListRequest(hdr=cpb.ReqHdr(xid=1), client_id=client_id)), "list")
    return Listing(server=server, locks=tuple(_lock(m) for m in rep.locks),
                   exports=tuple(_export(m) for m in rep.exports), evictions=rep.evictions,
                   callbacks_sent=rep.callbacks_sent)


def evict(server: Server, client_id: str) -> None:
    """Evict client_id from server. ServerError (errno ENOENT: no such client there) otherwise."""
    server_call(server, lgrpc.LdlmStub,
                unary("Evict", lpb.EvictRequest(hdr=cpb.ReqHdr(xid=1), client_id=client_id)), "evict")
