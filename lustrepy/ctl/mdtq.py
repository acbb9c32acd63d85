"""lfsctl's calls to each MDT of a file system of several: its own Statfs and Info.

MDT0 answers for the whole file system (OSTs, the MDT registry); each other
MDT is asked, at the address MDT0 lists for it, only what it alone knows:
its inodes and space (Statfs) and its status and counters (Info). Failures
are ServerErrors naming the MDT, so a command can show what the others said.
Renders nothing and never imports a server package.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from lustrepy.common.records import Statfs
from lustrepy.ctl import multi, query
from lustrepy.ctl.servers import MDT, Server, ServerError, server_call, unary
from lustrepy.rpc.convert import statfs_from_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc as mgrpc

log = logging.getLogger(__name__)


def statfs(server: Server, timeout: float = query.DEFAULT_TIMEOUT_S) -> Statfs:
    """The MDT's own space and inodes (the `mdt` part of its Statfs reply)."""
    rep = server_call(server, mgrpc.MdsStub, unary("Statfs", mpb.StatfsRequest(hdr=query.anonymous_hdr())),
                      "statfs", timeout)
    return statfs_from_pb(rep.mdt)


def info(server: Server, timeout: float = query.DEFAULT_TIMEOUT_S) -> query.MdsInfo:
    rep = server_call(server, mgrpc.MdsStub, unary("Info", mpb.MdsInfoRequest(hdr=query.anonymous_hdr())),
                      "info", timeout)
    return query.mds_info_from_pb(rep, server.address)


def mdt_status(st: query.FsStatus, mdts: Iterable[Server]) -> tuple[query.FsStatus, tuple[ServerError, ...]]:
    """`st` (MDT0's Statfs) with every MDT's own figures, asking each active MDT but MDT0 (already
    answered in `st`); an MDT inactive or not answering has none. With MDT0 alone, `st` itself."""
    mdts = [s for s in mdts if s.kind == MDT]
    if len(mdts) <= 1:
        return st, ()
    others = [s for s in mdts if s.index != 0 and s.active]
    got = multi.gather(others, statfs)
    figures = {s.index: sf for s, sf in got.answers}
    figures[0] = st.mdt
    states = tuple(query.MdtState(s.index, f"{s.name}_UUID", figures.get(s.index)) for s in mdts)
    return replace(st, mdts=states), got.failures
