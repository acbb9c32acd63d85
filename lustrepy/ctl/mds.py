"""`lfsctl mds`: status of the metadata server (address, uuid, uptime, clients, transaction numbers).

Asks the MDS (Mds.Info) only; changes nothing on it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lustrepy.ctl import output, query, target

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mds", parents=parents, help="MDS status: address, uuid, uptime, clients, transnos",
                       description="Status of the metadata server, from Mds.Info.")
    p.add_argument("-c", "--counters", action="store_true", help="also list the MDS's RPC and event counters")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    info = query.mds_info(t.address)
    if args.json:
        sys.stdout.write(output.to_json(output.mds_json(info)))
    else:
        sys.stdout.write(output.render_mds(info, counters=args.counters))
    return 0
