"""`lfsctl stats`: operations per second per server and per client, with service-time percentiles.

Asks every active MDT's MDS (Info for its counters and write-back cache
figures, added up over the MDTs; Stats for per-op and per-client histograms)
and every active OST (Oss.Stats: per-op counts, bytes and histograms).
Without --interval it prints totals since each server started (rates
averaged over its uptime). With --interval S it samples every S seconds and
shows the rates over each interval: redrawn in place when stdout is a
terminal, as successive blocks otherwise, until interrupted or --count N
views were shown (--json alone shows one view; with --count N it
prints one JSON object per line). The `ops`, `wbc` and `interval_s` keys of
--json are kept from the first version of this command; new keys only grow.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from lustrepy.common.errors import QuietError
from lustrepy.ctl import multi, output, statsq, target

WBC_KEYS = ("wbc_grants", "wbc_refused", "wbc_revocations", "wbc_conflicts", "wbc_contended", "wbc_held",
            "batch_records", "batch_skipped", "batch_refused", "batch_gaps")
CLEAR = "\x1b[H\x1b[2J"       # cursor home, clear screen


def collect(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, Any]:
    """Per-kind RPC figures and WBC counters from two snapshots of the MDS's Info counters."""
    ops: dict[str, dict[str, Any]] = {}
    for k, n in sorted(after.items()):
        if k.endswith("_us") or k.startswith(("lock_", "wbc_", "batch_")) or k == "commits":
            continue
        us = after.get(f"{k}_us")
        if us is None:
            continue
        d = n - before.get(k, 0)
        dus = us - before.get(f"{k}_us", 0)
        ops[k] = {"count": n, "per_s": round(d / seconds, 1) if seconds > 0 else 0.0,
                  "mean_us": round((dus / d) if d else (us / n if n else 0.0), 1)}
    return {"interval_s": seconds, "ops": ops, "wbc": {k: after.get(k, 0) for k in WBC_KEYS}}


def view(cur: statsq.Sample, prev: statsq.Sample | None, interval: float | None) -> dict[str, Any]:
    """The figures of one view: per server, per client, and the MDSs' op table and WBC counters
    (over every MDT of a file system of several)."""
    d = statsq.figures(cur, prev, interval)
    mdt = next((s for s in d["servers"] if s["type"] == "MDT"), None)
    if sum(s["type"] == "MDT" for s in d["servers"]) > 1:
        merged = statsq.merged_mdts(cur)
        assert merged is not None
        mdt = statsq.server_figures(merged, statsq.merged_mdts(prev) if prev else None, d["measured_s"])
    seconds = d["measured_s"] or (mdt["uptime_s"] if mdt else 0.0)
    legacy = collect(dict(prev.counters) if prev else {}, dict(cur.counters), seconds)
    for k, v in legacy["ops"].items():
        if mdt is not None and k in mdt["ops"]:
            v.update({f"p{q}_us": mdt["ops"][k][f"p{q}_us"] for q in statsq.PERCENTILES})
    return {**d, "ops": legacy["ops"], "wbc": legacy["wbc"]}


# ---- rendering -------------------------------------------------------------------------------------

def fmt_us(us: float | None) -> str:
    if us is None:
        return "-"
    if us < 1000:
        return f"{us:.0f}us"
    if us < 1e6:
        return f"{us / 1000:.1f}ms"
    return f"{us / 1e6:.2f}s"


def fmt_rate(bps: float) -> str:
    return f"{output.human_bytes(int(bps))}/s" if bps >= 1 else "0/s"


def render(v: dict[str, Any]) -> str:
    if v["since_start"]:
        head = f"{v['fsname']}: totals since each server started (rates over its uptime)"
    else:
        head = f"{v['fsname']}: rates over the last {v['measured_s']:.1f}s ({time.strftime('%H:%M:%S')})"
    lines = [head, "",
             f"{'SERVER':<16}{'OPERATION':<16}{'OPS/S':>9}{'COUNT':>10}{'ERR':>6}{'BYTES/S':>11}"
             f"{'P50':>9}{'P90':>9}{'P99':>9}"]
    for s in v["servers"]:
        active = [(k, o) for k, o in sorted(s["ops"].items()) if o["count"]]
        if not active:
            lines.append(f"{s['name']:<16}{'(idle)':<16}")
        for i, (k, o) in enumerate(active):
            rate = fmt_rate(o["bytes_per_s"]) if "bytes_per_s" in o else "-"
            lines.append(f"{s['name'] if i == 0 else '':<16}{k:<16}{o['per_s']:>9.1f}{o['count']:>10}"
                         f"{o['errors']:>6}{rate:>11}{fmt_us(o['p50_us']):>9}{fmt_us(o['p90_us']):>9}"
                         f"{fmt_us(o['p99_us']):>9}")
        if s["type"] == "OST":
            lines.append(f"{'':<16}{'read':<9}{fmt_rate(s['read_bytes_per_s']):>11}   "
                         f"{'write':<6}{fmt_rate(s['write_bytes_per_s']):>11}")
    for e in v["errors"]:
        lines.append(f"{e['name']:<16}(not answering)")
    for name in v["skipped"]:
        lines.append(f"{name:<16}(inactive, not asked)")
    w = max([len("CLIENT") + 2] + [len(c["client_id"]) + 2 for c in v["clients"]])
    lines += ["", f"{'CLIENT':<{w}}{'MD OPS/S':>10}{'READ/S':>12}{'WRITE/S':>12}{'LAST REQ':>12}"]
    for c in v["clients"]:
        lines.append(f"{c['client_id']:<{w}}{c['md_per_s']:>10.1f}{fmt_rate(c['read_bytes_per_s']):>12}"
                     f"{fmt_rate(c['write_bytes_per_s']):>12}{output.human_duration(c['idle_s']) + ' ago':>12}")
    if not v["clients"]:
        lines.append("(no client has sent a request)")
    lines += ["", "write-back cache"]
    lines += [f"  {k:<24}{n}" for k, n in v["wbc"].items()]
    return "\n".join(lines) + "\n"


def _emit(out: TextIO, v: dict[str, Any], as_json: bool, many: bool, redraw: bool, first: bool) -> None:
    if as_json:
        out.write(json.dumps(v) + "\n" if many else output.to_json(v))
    elif redraw:
        out.write(CLEAR + render(v))
    else:
        out.write(("" if first else "\n") + render(v))
    out.flush()


# ---- the command -----------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    if args.interval is not None and args.interval <= 0:
        raise QuietError("--interval must be positive", 2)
    if args.count is not None and (args.count < 1 or args.interval is None):
        raise QuietError("--count needs --interval and must be at least 1", 2)
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    out = sys.stdout
    if args.interval is None:
        cur = statsq.sample(t.address)
        _emit(out, view(cur, None, None), args.json, False, False, True)
        multi.say_failures(cur.failures)
        return 1 if cur.failures else 0
    count = args.count if args.count is not None else (1 if args.json else None)
    redraw = out.isatty() and not args.json
    failed = False
    prev = statsq.sample(t.address)
    shown = 0
    while count is None or shown < count:
        time.sleep(max(0.0, prev.taken + args.interval - time.monotonic()))
        cur = statsq.sample(t.address)
        _emit(out, view(cur, prev, args.interval), args.json, count != 1, redraw, shown == 0)
        if not redraw:
            multi.say_failures(cur.failures)
        failed = failed or bool(cur.failures)
        prev = cur
        shown += 1
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stats", parents=parents, help="operations per second per server and per client",
                       description="Per server (every active MDT and OST) and per operation: rate, count, "
                                   "errors, bytes per second and p50/p90/p99 service time; per client: metadata "
                                   "ops and bytes read and written per second; the MDS's write-back cache "
                                   "counters. Without --interval: totals since each server started. With "
                                   "--interval S: the rates over each S seconds, redrawn in place on a terminal "
                                   "(Ctrl-C quits), successive blocks otherwise.")
    p.add_argument("--interval", type=float, metavar="S", help="sample every S seconds and show the rates")
    p.add_argument("--count", type=int, metavar="N",
                   help="stop after N views (default: until interrupted; with --json: 1)")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)
