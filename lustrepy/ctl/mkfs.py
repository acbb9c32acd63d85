"""`lfsctl mkfs --mds|--ost N --fsname NAME [--mgs HOST:PORT] [--reformat] DIR`: format a server's data directory.

The formatting itself is the servers' own (`lustrepy-mds --format-only`,
`lustrepy-oss --format-only`: the MDT database with its root directory, or
the OST identity file), run as a program, so lfsctl imports no server
package. This module decides whether DIR may be formatted: a non-empty or
formatted DIR is refused unless --reformat is given, and then erased only
while no server holds it. For an OST, --mgs names the MDS it will announce
to (recorded in DIR, so `lustrepy-oss --dir DIR --listen ...` needs no
--mds), checked first: the MDS must serve the same file system and must not
already have an OST of that index (unless --reformat). A server started on
the formatted DIR serves it; started with another fsname, it refuses in one
line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

from lustrepy.common import daemon
from lustrepy.common.errors import QuietError
from lustrepy.ctl import output, procs, query, target

MDS_PROG = "lustrepy-mds"
OSS_PROG = "lustrepy-oss"
FSNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,8}$")     # the MDT's rule, the stricter of the two
MAX_INDEX = 0xFFFF
LOCKS = ("mdt.lock", "oss.lock")                    # held by a server while it serves the directory
FORMAT_TIMEOUT_S = 60.0


def describe(d: str) -> str | None:
    """What a formatted directory holds ("an MDT", "OST 1 of testfs"), None when not formatted."""
    if os.path.exists(os.path.join(d, "mdt.db")):
        return "an MDT"
    try:
        with open(os.path.join(d, "ost.json"), "rb") as f:
            doc = json.load(f)
        return f"OST {doc['index']} of file system {doc['fsname']!r}"
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return "an OST (its identity file is damaged)"


def erase(d: str) -> None:
    """Remove everything in d (not d itself: it may be a mount point), refusing while a server holds it."""
    held = []
    try:
        for name in LOCKS:
            if os.path.exists(os.path.join(d, name)):
                held.append(daemon.lock_dir(d, name, "data directory"))
        for entry in os.scandir(d):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    except OSError as e:
        raise QuietError(f"cannot erase {d}: {e.strerror or e}") from None
    finally:
        for fd in held:
            os.close(fd)


def check_dir(d: str, reformat: bool) -> bool:
    """May d be formatted? Returns whether it holds anything (to erase); QuietError when refused."""
    if os.path.exists(d) and not os.path.isdir(d):
        raise QuietError(f"{d} is not a directory")
    try:
        entries = os.listdir(d) if os.path.isdir(d) else []
    except OSError as e:
        raise QuietError(f"cannot read {d}: {e.strerror or e}") from None
    if entries and not reformat:
        what = describe(d)
        if what:
            raise QuietError(f"{d} is already formatted as {what}; give --reformat to erase it")
        raise QuietError(f"{d} is not empty; give --reformat to erase what it holds")
    return bool(entries)


def check_mgs(mgs: str, fsname: str, index: int, reformat: bool) -> None:
    """The MDS must serve `fsname`, and must not have an OST `index` already (unless reformatting)."""
    st = query.fs_status(target.check_address(mgs, "--mgs"))
    if st.fsname != fsname:
        raise QuietError(f"the MDS at {mgs} serves file system {st.fsname!r}, not {fsname!r}")
    known = {o.index: o for o in st.osts}
    if index in known and not reformat:
        o = known[index]
        raise QuietError(f"the MDS at {mgs} already has OST index {index} ({o.uuid} at {o.address}, "
                         f"{'active' if o.active else 'inactive'}); a new OST {index} loses the objects its "
                         "files name: give --reformat if that is meant")


def run_mkfs(args: argparse.Namespace) -> int:
    d = os.path.abspath(args.dir)
    if not FSNAME_RE.match(args.fsname):
        raise QuietError(f"invalid file system name {args.fsname!r}: 1 to 8 characters of A-Z a-z 0-9 _")
    if args.mds and args.mgs:
        raise QuietError("--mgs is for an OST (the MDS is the management service itself)", exitcode=2)
    if args.ost is not None and not 0 <= args.ost <= MAX_INDEX:
        raise QuietError(f"invalid OST index {args.ost} (0..{MAX_INDEX})", exitcode=2)
    holds = check_dir(d, args.reformat)
    if args.ost is not None and args.mgs:
        check_mgs(args.mgs, args.fsname, args.ost, args.reformat)
    if holds:
        erase(d)
    if args.mds:
        argv = [procs.find_program(MDS_PROG), "--format-only", "--dir", d, "--fsname", args.fsname]
    else:
        argv = [procs.find_program(OSS_PROG), "--format-only", "--dir", d, "--fsname", args.fsname,
                "--index", str(args.ost), *(["--mds", args.mgs] if args.mgs else [])]
    ident = _format(argv)
    ident["reformatted"] = holds
    if args.json:
        sys.stdout.write(output.to_json(ident))
    else:
        what = "MDT" if args.mds else f"OST {ident['index']}"
        mgs = f", announcing to the MDS at {ident['mgs']}" if ident.get("mgs") else ""
        sys.stdout.write(f"formatted {d} as {what} of file system {ident['fsname']}: {ident['uuid']}{mgs}\n")
    return 0


def _format(argv: list[str]) -> dict[str, Any]:
    prog = os.path.basename(argv[0])
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise QuietError(f"cannot run {prog}: {e}") from None
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        raise QuietError(lines[-1].removeprefix(f"{prog}: ") if lines else f"{prog} failed ({r.returncode})")
    try:
        return dict(json.loads(r.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        raise QuietError(f"{prog} answered something that is not its identity: {r.stdout[-200:]!r}") from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    # Own options only: --mgs here is the MDS an OST will announce to, not the MDS lfsctl asks.
    p = sub.add_parser("mkfs", help="format a server's data directory (MDT or OST)",
                       description="Format DIR as the MDT (--mds) or as OST N (--ost N) of file system NAME. "
                                   "A non-empty or formatted DIR is refused unless --reformat is given (then "
                                   "erased, once no server holds it). For an OST, --mgs HOST:PORT names the "
                                   "MDS it will announce to, checked first and recorded in DIR.")
    role = p.add_mutually_exclusive_group(required=True)
    role.add_argument("--mds", action="store_true", help="format the metadata target")
    role.add_argument("--ost", type=int, metavar="N", help="format OST index N")
    p.add_argument("--fsname", required=True, metavar="NAME", help="file system name (1-8 of A-Z a-z 0-9 _)")
    p.add_argument("--mgs", metavar="HOST:PORT", help="for an OST: the MDS to announce to (checked and recorded)")
    p.add_argument("--reformat", action="store_true", help="erase a non-empty or formatted DIR first")
    p.add_argument("--json", action="store_true", help="print the new identity as JSON")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(func=run_mkfs)
