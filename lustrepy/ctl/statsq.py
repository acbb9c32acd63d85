"""lfsctl's client of the servers' Stats RPCs, and the arithmetic of rates between two samples.

A Sample is what every server said at one moment: the MDSs' Info counters
(for the write-back cache figures; summed over the MDTs of a file system of
several) and Stats, and each active OST's Stats.
`figures` turns two samples (or one, for totals since each server started)
into the plain dicts `lfsctl stats` prints and its --json keys: per server and
per op the count, rate, errors, bytes, mean and p50/p90/p99 service time from
the difference of the latency histograms; per client its metadata ops and
bytes read and written. A server that restarted between samples counts from
its restart. Renders nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from lustrepy.common import histogram
from lustrepy.common.opstats import ClientTotals, OpTotals
from lustrepy.ctl import mdtq, multi, query, servers
from lustrepy.ctl.servers import Server, ServerError
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2_grpc as mgrpc
from lustrepy.rpc.v1 import oss_pb2_grpc as ogrpc
from lustrepy.rpc.v1 import stats_pb2 as spb

log = logging.getLogger(__name__)

PERCENTILES = (50, 90, 99)
READ_OPS = frozenset({"read"})
WRITE_OPS = frozenset({"write", "write_many"})


# What a server's Stats reply holds, as the server keeps it.
OpSample = OpTotals
ClientSample = ClientTotals


@dataclass(frozen=True, slots=True)
class ServerSample:
    server: Server
    uptime_s: float
    ops: tuple[OpSample, ...]
    clients: tuple[ClientSample, ...]
    version: str = ""
    connected: int = 0              # clients connected to it now


@dataclass(frozen=True, slots=True)
class Sample:
    taken: float                            # time.monotonic() when taken
    fsname: str
    counters: tuple[tuple[str, int], ...]   # the MDSs' Info counters (summed over the MDTs that answered)
    servers: tuple[ServerSample, ...]
    skipped: tuple[Server, ...]             # inactive OSTs, not asked
    failures: tuple[ServerError, ...]


def _ops(ms: Any) -> tuple[OpSample, ...]:
    return tuple(OpSample(o.op, o.count, o.errors, o.total_us, o.bytes, tuple(o.hist)) for o in ms)


def server_stats(server: Server, timeout: float = query.DEFAULT_TIMEOUT_S) -> ServerSample:
    """One server's Stats. ServerError when it does not answer."""
    stub = mgrpc.MdsStub if server.kind == servers.MDT else ogrpc.OssStub
    rep = servers.server_call(server, stub, servers.unary("Stats", spb.StatsRequest(hdr=cpb.ReqHdr(xid=1))), "stats",
                              timeout)
    return ServerSample(server, rep.uptime_s, _ops(rep.ops),
                        tuple(ClientSample(c.client_id, c.idle_s, _ops(c.ops)) for c in rep.clients),
                        rep.version, rep.connected)


def sample(mds_address: str) -> Sample:
    """Every server's statistics now (MDT0's MDS must answer; other servers that do not are kept as failures)."""
    info = query.mds_info(mds_address)
    fsname, every = servers.fs_servers(mds_address)
    skipped = tuple(s for s in every if not s.active)
    got = multi.gather([s for s in every if s.active], server_stats)
    more = multi.gather([s for s, _ in got.answers if s.kind == servers.MDT and s.index != 0], mdtq.info)
    counters = sum_counters([info.counters, *(i.counters for _, i in more.answers)])
    return Sample(time.monotonic(), fsname, counters, tuple(ss for _, ss in got.answers), skipped,
                  got.failures + more.failures)


def sum_counters(each: list[tuple[tuple[str, int], ...]]) -> tuple[tuple[str, int], ...]:
    """Counters of several MDSs added up by name (one MDS's as they are)."""
    if len(each) == 1:
        return each[0]
    total: dict[str, int] = {}
    for counters in each:
        for k, n in counters:
            total[k] = total.get(k, 0) + n
    return tuple(sorted(total.items()))


def merged_mdts(cur: Sample) -> ServerSample | None:
    """Every MDT's ops added up (counts, times, bytes, histograms) as one server: MDT0's sample
    with one MDT; None when no MDT answered."""
    mdts = [ss for ss in cur.servers if ss.server.kind == servers.MDT]
    if len(mdts) <= 1:
        return mdts[0] if mdts else None
    ops: dict[str, OpSample] = {}
    for ss in mdts:
        for o in ss.ops:
            p = ops.get(o.op)
            ops[o.op] = o if p is None else OpSample(
                o.op, p.count + o.count, p.errors + o.errors, p.total_us + o.total_us, p.bytes + o.bytes,
                _add(p.hist, o.hist))
    first = mdts[0]
    return ServerSample(first.server, first.uptime_s, tuple(ops[k] for k in sorted(ops)), (), first.version,
                        sum(ss.connected for ss in mdts))


def _add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    n = max(len(a), len(b))
    return tuple((a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(n))


# ---- figures -------------------------------------------------------------------------------------

def _rate(n: float, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def op_figures(cur: OpSample, prev: OpSample | None, seconds: float) -> dict[str, Any]:
    """One op over the interval (prev None: since start, rates over `seconds` of uptime)."""
    count = cur.count - (prev.count if prev else 0)
    total_us = cur.total_us - (prev.total_us if prev else 0)
    nbytes = cur.bytes - (prev.bytes if prev else 0)
    hist = histogram.subtract(cur.hist, prev.hist) if prev else list(cur.hist)
    d: dict[str, Any] = {"count": count, "total": cur.count, "per_s": _rate(count, seconds),
                         "errors": cur.errors - (prev.errors if prev else 0),
                         "mean_us": round(total_us / count, 1) if count else None}
    for q in PERCENTILES:
        v = histogram.percentile(hist, q)
        d[f"p{q}_us"] = round(v, 1) if v is not None else None
    if nbytes or cur.op in READ_OPS | WRITE_OPS:
        d["bytes"] = nbytes
        d["bytes_per_s"] = _rate(nbytes, seconds)
    return d


def _by_op(ops: tuple[OpSample, ...]) -> dict[str, OpSample]:
    return {o.op: o for o in ops}


def server_figures(cur: ServerSample, prev: ServerSample | None, seconds: float | None) -> dict[str, Any]:
    if prev is not None and cur.uptime_s < prev.uptime_s:     # restarted in between: count from its start
        prev = None
    over = seconds if prev is not None and seconds else cur.uptime_s
    before = _by_op(prev.ops) if prev else {}
    ops = {o.op: op_figures(o, before.get(o.op), over) for o in cur.ops}
    d: dict[str, Any] = {"name": cur.server.name, "type": cur.server.kind, "index": cur.server.index,
                         "address": cur.server.address, "uptime_s": round(cur.uptime_s, 1), "over_s": round(over, 3),
                         "ops": ops}
    if cur.server.kind == servers.OST:
        rd = sum(v.get("bytes", 0) for k, v in ops.items() if k in READ_OPS)
        wr = sum(v.get("bytes", 0) for k, v in ops.items() if k in WRITE_OPS)
        d.update(read_bytes=rd, write_bytes=wr, read_bytes_per_s=_rate(rd, over), write_bytes_per_s=_rate(wr, over))
    return d


def client_figures(cur: Sample, prev: Sample | None, seconds: float | None) -> list[dict[str, Any]]:
    """Per client, over all servers: metadata ops (by type) on the MDS, bytes read and written on OSTs."""
    before = {ss.server.name: ss for ss in prev.servers} if prev else {}
    out: dict[str, dict[str, Any]] = {}
    for ss in cur.servers:
        p = before.get(ss.server.name)
        if p is not None and ss.uptime_s < p.uptime_s:
            p = None
        over = seconds if p is not None and seconds else ss.uptime_s
        pclients = {c.client_id: _by_op(c.ops) for c in p.clients} if p else {}
        for c in ss.clients:
            row = out.setdefault(c.client_id, {"client_id": c.client_id, "idle_s": c.idle_s, "md_ops": 0,
                                               "md_per_s": 0.0, "md_by_op": {}, "read_bytes": 0, "write_bytes": 0,
                                               "read_bytes_per_s": 0.0, "write_bytes_per_s": 0.0, "osts": {}})
            row["idle_s"] = round(min(row["idle_s"], c.idle_s), 3)
            pops = pclients.get(c.client_id, {})
            for o in c.ops:
                po = pops.get(o.op)
                n = o.count - (po.count if po else 0)
                b = o.bytes - (po.bytes if po else 0)
                if ss.server.kind == servers.MDT:
                    row["md_ops"] += n
                    row["md_per_s"] = round(row["md_per_s"] + n / over, 1) if over > 0 else 0.0
                    if n:
                        row["md_by_op"][o.op] = n
                elif o.op in READ_OPS | WRITE_OPS:
                    key = "read" if o.op in READ_OPS else "write"
                    row[f"{key}_bytes"] += b
                    row[f"{key}_bytes_per_s"] = round(row[f"{key}_bytes_per_s"] + (b / over if over > 0 else 0), 1)
                    per = row["osts"].setdefault(ss.server.name, {"read_bytes": 0, "write_bytes": 0})
                    per[f"{key}_bytes"] += b
    return [out[k] for k in sorted(out)]


def figures(cur: Sample, prev: Sample | None, interval: float | None) -> dict[str, Any]:
    """Everything `lfsctl stats` shows from one sample (totals since start) or two (the interval)."""
    seconds = (cur.taken - prev.taken) if prev is not None else None
    before = {ss.server.name: ss for ss in prev.servers} if prev else {}
    return {"fsname": cur.fsname, "interval_s": interval or 0, "measured_s": round(seconds, 3) if seconds else None,
            "since_start": prev is None,
            "servers": [server_figures(ss, before.get(ss.server.name), seconds) for ss in cur.servers],
            "clients": client_figures(cur, prev, seconds),
            "skipped": [s.name for s in cur.skipped],
            "errors": [{"name": e.server.name, "address": e.server.address, "error": str(e)} for e in cur.failures]}
