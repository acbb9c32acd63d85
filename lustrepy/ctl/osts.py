"""`lfsctl osts`: the OSTs the MDS knows of, whether each is active, and when it was last heard from.

Asks the MDS (Mds.Statfs) only; never contacts an OSS.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lustrepy.ctl import output, query, target

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("osts", parents=parents, help="list OSTs: index, uuid, address, state, last heartbeat",
                       description="One row per OST registered with the MDS: index, uuid, address, "
                                   "active/inactive (by heartbeat), and how long ago it was last heard from.")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    st = query.fs_status(t.address)
    if args.json:
        sys.stdout.write(output.to_json(output.osts_json(st, f"{t.address}:/{st.fsname}")))
    else:
        sys.stdout.write(output.render_osts(st.osts))
    return 0
