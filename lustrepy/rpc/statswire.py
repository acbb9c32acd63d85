"""Server statistics (lustrepy.common.opstats records) as Stats replies (stats.proto).

Only shapes change here; the servers' Stats handlers and nothing else use it.
"""

from __future__ import annotations

import lustrepy
from lustrepy.common.opstats import OpTotals, StatsSnapshot
from lustrepy.rpc.convert import rep_ok
from lustrepy.rpc.v1 import stats_pb2 as spb


def _op(o: OpTotals) -> spb.OpStats:
    return spb.OpStats(op=o.op, count=o.count, errors=o.errors, total_us=o.total_us, bytes=o.bytes, hist=o.hist)


def stats_reply(name: str, snap: StatsSnapshot, connected: int) -> spb.StatsReply:
    return spb.StatsReply(
        hdr=rep_ok(), name=name, uptime_s=snap.uptime_s, version=lustrepy.__version__, connected=connected,
        ops=[_op(o) for o in snap.ops],
        clients=[spb.ClientStats(client_id=c.client_id, idle_s=c.idle_s, ops=[_op(o) for o in c.ops])
                 for c in snap.clients])
