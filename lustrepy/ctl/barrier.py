"""`lfsctl replay-barrier --mds | --ost N`: make a server lose, at its next start, everything after now.

Lustre's `lctl replay_barrier`, for testing recovery: the MDS copies its
database as it stands and stops counting later transactions as durable
(clients therefore keep them for replay); its next start goes back to the copy,
exactly as a power cut on its host would lose what was not yet synced. An OSS
stops committing and keeps each object's bytes as they stood before their first
change after the barrier; its next start puts them back.
"""

from __future__ import annotations

import argparse
import sys

from lustrepy.common.errors import QuietError
from lustrepy.ctl import output, query, target


def run(args: argparse.Namespace) -> int:
    if args.mds == (args.ost is not None):
        raise QuietError("replay-barrier: say which server: --mds or --ost N", 2)
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    if args.mds:
        server, address, transno = "mds", t.address, query.replay_barrier(t.address)
        name = "the MDS"
    else:
        server, name = f"ost{args.ost}", f"OST {args.ost}"
        address, transno = query.ost_replay_barrier(t.address, args.ost)
    if args.json:
        sys.stdout.write(output.to_json({"server": server, "address": address, "transno": transno}))
    else:
        sys.stdout.write(f"replay barrier on {name} at {address}: transactions after {transno} "
                         "are lost at its next start\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay-barrier", parents=parents, help="drop everything after now at the server's next start",
                       description="Set a replay barrier (for recovery tests): the server copies its state as "
                                   "it stands and counts nothing after it as durable; its next start goes back "
                                   "to that copy, as a power cut would, and clients replay what it lost.")
    p.add_argument("--mds", action="store_true", help="the metadata server")
    p.add_argument("--ost", type=int, metavar="N", help="the object storage server of OST N")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)
