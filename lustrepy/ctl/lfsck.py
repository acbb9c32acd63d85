"""`lfsctl lfsck`: check (and with --repair, fix) the layouts across every MDT and every OST, online.

Reads every MDT's snapshot of its files' objects and names across MDTs (with its own invariant
checks), then every OST's objects, and reports, one line each: objects no file of the MDT whose
id range holds them uses (orphans), files whose objects are missing from their OST, files whose
recorded size is not what their objects say, problems inside an MDT, names across MDTs one side
of which is missing (dangling, unnamed), and servers that could not be checked; then a note for
each operation across MDTs still being carried through that explains a disagreement (not a
problem). Exit status 0 when clean, 1 when anything was found (also when --repair fixed it all:
run it again to see it clean). Progress goes to stderr when that is a terminal. The order of the
work is lfsck_run's, the reasoning lfsck_check's and lfsck_names', the repairs lfsck_fix's.
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
from lustrepy.common.fld import mdt_name
from lustrepy.ctl import lfsck_run, lfsckq, output, servers, target
from lustrepy.ctl.lfsck_check import DANGLING, MDT, MISSING, ORPHAN, SIZE, UNNAMED, Finding
from lustrepy.ctl.lfsck_names import Note

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 600.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lfsck", parents=parents, help="check layouts across every MDT and every OST (online)",
                       description="Check the file system online: objects no file uses (orphans), files whose "
                                   "objects are missing, sizes an MDT records that the objects contradict, names "
                                   "across MDTs one side of which is missing, and each MDT's own invariants. "
                                   "Reports only, unless --repair. Exit status 0 when clean, 1 when problems "
                                   "were found.")
    p.add_argument("--repair", action="store_true",
                   help="destroy orphans older than the grace period, recreate missing objects empty, "
                        "set recorded sizes to what the objects say")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, metavar="SECONDS",
                   help="--repair leaves orphans modified within this long alone (default %(default)g)")
    p.add_argument("--keep-orphans", action="store_true",
                   help="--repair links orphans under /.lustre/lost+found (those of MDT1.. under "
                        "/.lustre/lost+found/MDT<index>) instead of destroying them")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.grace < 0 or args.grace != args.grace:
        raise QuietError(f"lfsck: --grace must be a number of seconds >= 0, not {args.grace:g}", 2)
    if args.keep_orphans and not args.repair:
        raise QuietError("lfsck: --keep-orphans goes with --repair", 2)
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    fsname, found = servers.fs_servers(t.address)
    progress = _Progress(sys.stderr.isatty())
    try:
        report = lfsck_run.check(t.address, fsname, found, progress.counter,
                                 lfsck_run.Options(args.repair, args.grace, args.keep_orphans))
    finally:
        progress.done()
    findings = list(report.findings)
    several = report.n_mdts > 1
    if args.json:
        sys.stdout.write(output.to_json(_json(fsname, t.address, report, args.repair)))
    else:
        sys.stdout.write("".join(line(f, fsname, several=several) + "\n" for f in findings))
        sys.stdout.write("".join(note_line(n, fsname) + "\n" for n in report.notes))
    if sys.stderr.isatty():
        files = sum(len(v.files) for v in report.mdts.values())
        objects = sum(len(v.objects) for v in report.osts.values())
        mdts = f" on {len(report.mdts)} of {report.n_mdts} MDTs" if several else ""
        sys.stderr.write(f"lfsck: {files} files{mdts}, {objects} objects on {len(report.osts)} of {report.n_osts} "
                         f"OSTs: {len(findings) or 'no'} problems\n")
    return 1 if findings else 0


def line(f: Finding, fsname: str, several: bool = False) -> str:
    """One finding as one line of text (`several`: the file system has several MDTs)."""
    ost = f"{fsname}-OST{f.ost or 0:04x}"
    mdt = mdt_name(fsname, f.mdt)
    name = f"{f.path or '(no name left)'} {f.fid}"
    if f.kind == ORPHAN:
        text = (f"orphan {ost} object {f.object_id}: {f.size} bytes, modified {_when(f.mtime_ns)}, "
                + (f"no file of {mdt} uses it" if several else "no file uses it"))
    elif f.kind == MISSING:
        text = f"missing {ost} object {f.object_id}: stripe {f.stripe} of {name}"
    elif f.kind == SIZE:
        text = f"size {name}: {mdt if several else 'the MDT'} records {f.mdt_size} bytes, its objects say {f.size}"
    elif f.kind == MDT:
        text = f"mdt {mdt}: {f.detail}"
    elif f.kind == DANGLING:
        text = f"dangling {mdt} {f.path} {f.fid}: {f.detail}"
    elif f.kind == UNNAMED:
        text = f"unnamed {mdt} {f.fid}: named {f.path} {f.detail}"
    elif f.ost is None:
        text = f"unchecked {f.detail}; its files and objects were not checked"
    else:
        text = f"unchecked {f.detail}; its objects were not checked"
    if f.repaired is not None:
        text += f": {'repaired' if f.repaired else 'not repaired'}: {f.repair}"
    return text


def note_line(n: Note, fsname: str) -> str:
    """An operation across MDTs not finished yet, as one line of text (not a problem)."""
    op = n.op
    what = [op.kind]
    if op.names:
        parent, name = op.names[0]
        what.append(f"of {name.decode('utf-8', 'surrogateescape')!r} in {parent}")
    if op.fid is not None:
        what.append(f"({op.fid})" if op.names else f"of {op.fid}")
    return (f"note {mdt_name(fsname, n.mdt)}: {' '.join(what)} across MDTs (operation {op.op_id}, logged "
            f"{_when(op.created_ns)}) is not finished yet; its names may disagree between MDTs until it is")


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ns / 1e9))


def _json(fsname: str, mds: str, report: lfsck_run.Report, repair: bool) -> dict[str, Any]:
    return {"fsname": fsname, "mds": mds, "repair": repair, "clean": not report.findings,
            "checked": {"files": sum(len(v.files) for v in report.mdts.values()),
                        "mdts": {f"MDT{i:04x}": len(v.files) for i, v in sorted(report.mdts.items())},
                        "osts": {f"OST{i:04x}": len(v.objects) for i, v in sorted(report.osts.items())}},
            "findings": [_finding_json(f) for f in report.findings],
            "notes": [_note_json(n) for n in report.notes]}


def _note_json(n: Note) -> dict[str, Any]:
    op = n.op
    return {"mdt": n.mdt, "operation": op.op_id, "kind": op.kind, "fid": str(op.fid) if op.fid else None,
            "names": [{"parent": str(p), "name": name.decode("utf-8", "surrogateescape")} for p, name in op.names],
            "mdts": list(op.mdts), "logged_ns": op.created_ns}


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
