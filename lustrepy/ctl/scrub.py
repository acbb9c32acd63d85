"""`lfsctl scrub status [--ost N] [--json]`: checksums at rest and the background scrub of every OST.

Every OSS the MDS knows of is asked (Oss.ScrubStatus, in parallel, a short deadline) for its
scrub's state (running / idle / off), rate, what the current or last pass has checked, the
passes completed and when the last one ended, the mismatches ever found and the blocks known
bad now (the first BAD_SHOWN of them, with their count). An OSS that does not answer is named on
stderr and the exit status is 1; the others are still shown. The rate is set with
`lfsctl set-param ost.N.scrub_rate=MIB_S` (0: off). Rendering here is pure; JSON keys only grow.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

from lustrepy.ctl import multi, output, query, servers, target
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc as ogrpc

OSS_TIMEOUT_S = 5.0
BAD_SHOWN = 100         # bad blocks asked of each OSS
BAD_IN_TABLE = 5        # of them, listed under the table per OST


@dataclass(frozen=True, slots=True)
class ScrubRow:
    """One OST's scrub as its OSS reports it."""

    index: int
    name: str
    address: str
    state: str
    rate_mib: float
    interval: float
    objects: int
    bytes: int
    passes: int
    pass_start: float
    last_pass_end: float
    mismatches: int
    found_by_scrub: int
    read_failures: int
    bad_count: int
    bad: tuple[tuple[int, int], ...]
    block_size: int
    checksums: bool


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("scrub", help="checksums at rest: the background scrub of every OST",
                       description="Checksums at rest and the background scrub that checks them. "
                                   "Set the rate with `lfsctl set-param ost.N.scrub_rate=MIB_S` (0: off).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    st = verbs.add_parser("status", parents=parents, help="per OST: state, rate, progress, passes, bad blocks",
                          description="Per OST: the scrub's state (running/idle/off), its rate in MiB/s, the "
                                      "objects and bytes checked in the current or last pass, passes completed, "
                                      "when the last pass ended, mismatches ever found and the blocks known bad.")
    st.add_argument("--ost", type=int, metavar="N", help="only OST N")
    st.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    st.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    st = query.fs_status(t.address)
    osts = servers.select([s for s in servers.of_status(t.address, st) if s.kind == servers.OST], ost=args.ost)
    got = multi.gather(osts, ask)
    rows = sorted((r for _, r in got.answers), key=lambda r: r.index)
    if args.json:
        sys.stdout.write(output.to_json(to_json(rows, [str(e) for e in got.failures])))
    else:
        sys.stdout.write(render(rows, time.time()))
    multi.say_failures(got.failures)
    return got.exitcode


def ask(s: servers.Server) -> ScrubRow:
    req = opb.ScrubStatusRequest(hdr=cpb.ReqHdr(xid=1), index=s.index, max_bad=BAD_SHOWN)
    rep = servers.server_call(s, ogrpc.OssStub, servers.unary("ScrubStatus", req), "scrub status", OSS_TIMEOUT_S)
    return ScrubRow(s.index, s.name, s.address, rep.state, rep.rate_mib, rep.interval, rep.objects, rep.bytes,
                    rep.passes, rep.pass_start, rep.last_pass_end, rep.mismatches, rep.found_by_scrub,
                    rep.read_failures, rep.bad_count, tuple((b.object_id, b.block) for b in rep.bad),
                    rep.block_size, rep.checksums)


def to_json(rows: list[ScrubRow], unreachable: list[str]) -> dict[str, Any]:
    return {"osts": [{
        "index": r.index, "name": r.name, "address": r.address, "state": r.state, "rate_mib": r.rate_mib,
        "interval": r.interval, "objects": r.objects, "bytes": r.bytes, "passes": r.passes,
        "pass_start": r.pass_start or None, "last_pass_end": r.last_pass_end or None, "mismatches": r.mismatches,
        "found_by_scrub": r.found_by_scrub, "read_failures": r.read_failures, "bad_count": r.bad_count,
        "bad": [{"object_id": o, "block": b, "offset": b * r.block_size} for o, b in r.bad],
        "block_size": r.block_size, "checksums": r.checksums} for r in rows], "unreachable": unreachable}


def render(rows: list[ScrubRow], now: float) -> str:
    head = ("OST", "STATE", "RATE", "PASSES", "OBJECTS", "BYTES", "LAST PASS", "MISMATCHES", "BAD")
    table = [head] + [(
        f"OST{r.index:04x}", r.state if r.checksums else "off (no checksums)", f"{r.rate_mib:g}M/s", str(r.passes),
        str(r.objects), output.human_bytes(r.bytes), _ago(r.last_pass_end, now), str(r.mismatches),
        str(r.bad_count)) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
    for r in rows:
        for o, b in r.bad[:BAD_IN_TABLE]:
            lines.append(f"OST{r.index:04x} bad block: object {o} bytes {b * r.block_size}..{(b + 1) * r.block_size - 1}")
        if r.bad_count > BAD_IN_TABLE:
            lines.append(f"OST{r.index:04x}: {r.bad_count - BAD_IN_TABLE} more bad blocks (--json lists {BAD_SHOWN})")
    return "\n".join(lines) + "\n"


def _ago(t: float, now: float) -> str:
    if not t:
        return "never"
    s = max(0, int(now - t))
    return f"{s}s ago" if s < 120 else f"{s // 60}m ago" if s < 7200 else f"{s // 3600}h ago"
