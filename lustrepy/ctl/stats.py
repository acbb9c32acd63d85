"""`lfsctl stats`: the MDS's operation counters and rates, and its write-back cache statistics.

Reads Mds.Info twice, `--interval` seconds apart (once without it), and shows
per RPC kind the count, the rate over the interval and the mean service
time; then the WBC counters (grants, refusals, revocations, conflicts,
contended directories, locks held, update records applied, skipped and
refused). `--json` prints the same as one object.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from lustrepy.common.errors import QuietError
from lustrepy.ctl import output, query, target

WBC_KEYS = ("wbc_grants", "wbc_refused", "wbc_revocations", "wbc_conflicts", "wbc_contended", "wbc_held",
            "batch_records", "batch_skipped", "batch_refused", "batch_gaps")


def collect(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, Any]:
    """Per-kind RPC figures and WBC counters from two counter snapshots."""
    ops: dict[str, dict[str, float]] = {}
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


def render(st: dict[str, Any]) -> str:
    lines = [f"{'operation':<16}{'count':>12}{'per s':>10}{'mean us':>10}"]
    for k, v in st["ops"].items():
        lines.append(f"{k:<16}{v['count']:>12}{v['per_s']:>10}{v['mean_us']:>10}")
    lines.append("")
    lines.append("write-back cache")
    lines += [f"  {k:<24}{v}" for k, v in st["wbc"].items()]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.interval is not None and args.interval <= 0:
        raise QuietError("--interval must be positive", 2)
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    first = dict(query.mds_info(t.address).counters)
    seconds = 0.0
    after = first
    if args.interval:
        time.sleep(args.interval)
        after = dict(query.mds_info(t.address).counters)
        seconds = args.interval
    st = collect(first if seconds else {}, after, seconds)
    sys.stdout.write(output.to_json(st) if args.json else render(st))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stats", parents=parents, help="MDS operation rates and write-back cache statistics",
                       description="The MDS's RPCs by kind (count, rate over --interval, mean service time) "
                                   "and its metadata write-back cache counters.")
    p.add_argument("--interval", type=float, metavar="S", help="measure rates over S seconds")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)
