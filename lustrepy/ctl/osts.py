"""`lfsctl osts`: the OSTs the MDS knows of, whether each is active, and when it was last heard from;
and, from each OSS itself, its uptime, version and connected clients.

The registry comes from the MDS (Mds.Statfs); every OSS is then asked (Oss.Stats, in parallel, a short
deadline). An OSS that does not answer shows "-" there: the listing is a status view, so it still exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lustrepy.ctl import multi, output, query, servers, statsq, target
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc as ogrpc

OSS_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("osts", parents=parents, help="list OSTs: index, uuid, address, state, last heartbeat, uptime, version, clients",
                       description="One row per OST registered with the MDS: index, uuid, address, "
                                   "active/inactive (by heartbeat), how long ago it was last heard from, and "
                                   "what its OSS says of itself: uptime, version, connected clients.")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    st = query.fs_status(t.address)
    osses = [s for s in servers.of_status(t.address, st) if s.kind == servers.OST]
    got = multi.gather(osses, _self)
    selves = {s.index: me for s, me in got.answers}
    if args.json:
        sys.stdout.write(output.to_json(output.osts_json(st, f"{t.address}:/{st.fsname}", selves)))
    else:
        sys.stdout.write(output.render_osts(st.osts, selves))
    return 0


def _self(s: servers.Server) -> output.OssSelf:
    """What one OSS says of itself: its Stats, and its recovery and commits from its Statfs."""
    ss = statsq.server_stats(s, OSS_TIMEOUT_S)
    rep = servers.server_call(s, ogrpc.OssStub, servers.unary("Statfs", opb.OssStatfsRequest(hdr=cpb.ReqHdr(xid=1))),
                              "statfs", OSS_TIMEOUT_S)
    return output.OssSelf(ss.uptime_s, ss.version, ss.connected, query.recovery_from_pb(rep.recovery),
                          int(rep.last_committed))
