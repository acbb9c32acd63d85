"""`lfsctl lfsck`: check (and with --repair, fix) the layouts across the MDT and every OST, online.

Reads the MDT's snapshot of every file's objects (with its own invariant checks), then every
OST's objects, and reports, one line each: objects no file uses (orphans), files whose objects
are missing from their OST, files whose recorded size is not what their objects say, problems
inside the MDT, and OSTs that could not be checked. Exit status 0 when clean, 1 when anything
was found (also when --repair fixed it all: run it again to see it clean). Progress goes to
stderr when that is a terminal. The reasoning is lfsck_check's, the repairs lfsck_fix's.
A file system of several MDTs is refused (MDT0's scan would take the other MDTs' objects for
orphans).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

from lustrepy.common.errors import QuietError
from lustrepy.ctl import lfsck_check, lfsck_fix, lfsckq, multi, output, servers, target
from lustrepy.ctl.lfsck_check import MDT, MISSING, ORPHAN, SIZE, UNCHECKED, Finding

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 600.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lfsck", parents=parents, help="check layouts across the MDT and every OST (online)",
                       description="Check the file system online: objects no file uses (orphans), files whose "
                                   "objects are missing, sizes the MDT records that the objects contradict, and "
                                   "the MDT's own invariants. Reports only, unless --repair. Exit status 0 when "
                                   "clean, 1 when problems were found.")
    p.add_argument("--repair", action="store_true",
                   help="destroy orphans older than the grace period, recreate missing objects empty, "
                        "set recorded sizes to what the objects say")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, metavar="SECONDS",
                   help="--repair leaves orphans modified within this long alone (default %(default)g)")
    p.add_argument("--keep-orphans", action="store_true",
                   help="--repair links orphans under /.lustre/lost+found instead of destroying them")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.grace < 0 or args.grace != args.grace:
        raise QuietError(f"lfsck: --grace must be a number of seconds >= 0, not {args.grace:g}", 2)
    if args.keep_orphans and not args.repair:
        raise QuietError("lfsck: --keep-orphans goes with --repair", 2)
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    fsname, found = servers.fs_servers(t.address)
    mdts = [s for s in found if s.kind == servers.MDT]
    if len(mdts) > 1:       # the objects of MDT1.. would look like orphans to MDT0's scan
        raise QuietError(f"lfsck: {fsname} has {len(mdts)} MDTs; lfsck checks a file system of one MDT only")
    osts = [s for s in found if s.kind == servers.OST]
    progress = _Progress(sys.stderr.isatty())
    try:
        mdt = lfsckq.scan_mdt(t.address, progress.counter("MDT0000", "files"))
        got = multi.gather(osts, lambda s: lfsckq.list_ost(s, progress.counter(s.label, "objects")))
        views = {s.index: v for s, v in got.answers}
        sus = lfsck_check.suspects(mdt, views)
        objects, fids = sus.objects(), sus.fids()
        states = lfsckq.verify(t.address, objects, fids) if objects or fids else ({}, {})
    finally:
        progress.done()
    findings = lfsck_check.confirm(sus, *states)
    if args.repair and findings:
        findings = lfsck_fix.apply(t.address, {s.index: s for s in osts}, findings, grace_s=args.grace,
                                   keep=args.keep_orphans, now_ns=time.time_ns())
    findings = lfsck_check.mdt_findings(mdt) + [
        Finding(UNCHECKED, ost=e.server.index, detail=str(e)) for e in got.failures] + findings
    if args.json:
        sys.stdout.write(output.to_json(_json(fsname, t.address, mdt, views, findings, args.repair)))
    else:
        sys.stdout.write("".join(line(f, fsname) + "\n" for f in findings))
    if sys.stderr.isatty():
        sys.stderr.write(f"lfsck: {len(mdt.files)} files, {sum(len(v.objects) for v in views.values())} objects "
                         f"on {len(views)} of {len(osts)} OSTs: {len(findings) or 'no'} problems\n")
    return 1 if findings else 0


def line(f: Finding, fsname: str) -> str:
    """One finding as one line of text."""
    ost = f"{fsname}-OST{f.ost or 0:04x}"
    name = f"{f.path or '(no name left)'} {f.fid}"
    if f.kind == ORPHAN:
        text = (f"orphan {ost} object {f.object_id}: {f.size} bytes, modified {_when(f.mtime_ns)}, "
                "no file uses it")
    elif f.kind == MISSING:
        text = f"missing {ost} object {f.object_id}: stripe {f.stripe} of {name}"
    elif f.kind == SIZE:
        text = f"size {name}: the MDT records {f.mdt_size} bytes, its objects say {f.size}"
    elif f.kind == MDT:
        text = f"mdt {fsname}-MDT0000: {f.detail}"
    else:
        text = f"unchecked {f.detail}; its objects were not checked"
    if f.repaired is not None:
        text += f": {'repaired' if f.repaired else 'not repaired'}: {f.repair}"
    return text


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ns / 1e9))


def _json(fsname: str, mds: str, mdt: lfsckq.MdtView, views: dict[int, lfsckq.OstView],
          findings: list[Finding], repair: bool) -> dict[str, Any]:
    return {"fsname": fsname, "mds": mds, "repair": repair, "clean": not findings,
            "checked": {"files": len(mdt.files),
                        "osts": {f"OST{i:04x}": len(v.objects) for i, v in sorted(views.items())}},
            "findings": [_finding_json(f) for f in findings]}


def _finding_json(f: Finding) -> dict[str, Any]:
    d = asdict(f)
    d["fid"] = str(f.fid) if f.fid is not None else None
    return d


class _Progress:
    """Counts on one redrawn stderr line, for a terminal only; safe from several threads."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._counts: dict[str, str] = {}
        self._lock = threading.Lock()
        self._drawn = 0.0

    def counter(self, label: str, unit: str) -> lfsckq.Progress:
        def tick(n: int) -> None:
            if not self.enabled:
                return
            with self._lock:
                self._counts[label] = f"{label} {n} {unit}"
                now = time.monotonic()
                if now - self._drawn >= 0.1:
                    self._drawn = now
                    sys.stderr.write("\r\x1b[Klfsck: " + ", ".join(self._counts.values()))
                    sys.stderr.flush()
        return tick

    def done(self) -> None:
        if self.enabled and self._drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
