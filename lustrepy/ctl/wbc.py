"""`lfsctl wbc PATH`: a directory's metadata write-back cache state, on a mounted lustrepy path.

Reads the directory's virtual extended attribute `lustrepy.wbc`, which the
client answers with what the MDS knows (wbc-held by a client, server-side, or
contended and for how long; conflicts in the window, grants and revocations)
and what this client knows (whether it holds the grant, its update records
pending and flushed). Like getstripe, it needs a mount and no server address.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lustrepy.ctl import output, vxattr

WBC_XATTR = "lustrepy.wbc"


def get_state(path: str) -> dict[str, Any]:
    return vxattr.read_json(path, WBC_XATTR, "not a directory (the write-back cache state is kept for directories)")


def render(path: str, st: dict[str, Any]) -> str:
    mode = st.get("mode", "?")
    if mode == "contended":
        mode = f"contended-until +{st.get('contended_for_s', 0)}s"
    elif mode == "wbc-held":
        mode = "wbc-held (by this client)" if st.get("held_here") else f"wbc-held by {st.get('holder', '?')}"
    rows = [("path", path), ("mode", mode), ("records pending", st.get("records_pending", 0)),
            ("records flushed", st.get("records_flushed", 0)), ("revocations", st.get("revocations", 0)),
            ("grants", st.get("grants", 0)), ("conflicts (window)", st.get("conflicts", 0)),
            ("client", st.get("client", "")), ("client write-back cache", "on" if st.get("client_wbc") else "off")]
    return "\n".join(f"{k + ':':<26}{v}" for k, v in rows)


def run_wbc(args: argparse.Namespace) -> int:
    states = [(p, get_state(p)) for p in args.paths]
    if args.json:
        out = [dict(st, path=p) for p, st in states]
        sys.stdout.write(output.to_json(out[0] if len(out) == 1 else out))
    else:
        sys.stdout.write("\n\n".join(render(p, st) for p, st in states) + "\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    w = sub.add_parser("wbc", parents=parents, help="show a directory's metadata write-back cache state",
                       description="Show the metadata write-back cache state of each directory PATH on a "
                                   "lustrepy mount: wbc-held (by which client), server-side, or contended "
                                   "(and for how long), with this client's update records pending and "
                                   "flushed and the directory's revocations.")
    w.add_argument("paths", nargs="+", metavar="PATH")
    w.set_defaults(func=run_wbc)
