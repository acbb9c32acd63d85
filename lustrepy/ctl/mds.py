"""`lfsctl mds`: status of the metadata servers (address, uuid, uptime, clients, transaction numbers).

Asks MDT0's MDS (Mds.Info, and Mds.Fld for the other MDTs), then each other
active MDT (Mds.Info); changes nothing anywhere. With one MDT the output is
MDT0's alone. With several, one block per MDT (an inactive one is listed as
not asked), and --json adds the list `mdts` beside MDT0's own keys. An MDT
that does not answer is one line on stderr, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from lustrepy.ctl import locks, mdtq, multi, output, query, servers, target
from lustrepy.ctl.servers import Server

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mds", parents=parents, help="MDS status: address, uuid, uptime, clients, transnos",
                       description="Status of the metadata server of each MDT, from Mds.Info.")
    p.add_argument("-c", "--counters", action="store_true", help="also list the MDS's RPC and event counters")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)


def render(infos: list[tuple[Server, query.MdsInfo]], skipped: list[Server], counters: bool) -> str:
    blocks = [output.render_mds(info, counters=counters) for _, info in infos]
    blocks += [f"{s.name} ({s.address or 'no address'}): inactive, not asked\n" for s in skipped]
    return "\n".join(blocks)


def as_json(infos: list[tuple[Server, query.MdsInfo]], skipped: list[Server],
            failures: tuple[servers.ServerError, ...]) -> dict[str, Any]:
    """MDT0's keys as with one MDT, and every MDT's under `mdts`."""
    d = output.mds_json(infos[0][1])
    d["mdts"] = [{"index": s.index, "name": s.name, **output.mds_json(info)} for s, info in infos]
    d["skipped"] = [locks.server_json(s) for s in skipped]
    d["errors"] = [{**locks.server_json(e.server), "error": str(e)} for e in failures]
    return d


def run(args: argparse.Namespace) -> int:
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    info = query.mds_info(t.address)
    mdts = servers.mdt_servers(t.address, info.fsname)
    if len(mdts) == 1:
        if args.json:
            sys.stdout.write(output.to_json(output.mds_json(info)))
        else:
            sys.stdout.write(output.render_mds(info, counters=args.counters))
        return 0
    skipped = [s for s in mdts if not s.active]
    got = multi.gather([s for s in mdts if s.active and s.index != 0], mdtq.info)
    infos = [(mdts[0], info), *got.answers]
    if args.json:
        sys.stdout.write(output.to_json(as_json(infos, skipped, got.failures)))
    else:
        sys.stdout.write(render(infos, skipped, args.counters))
    multi.say_failures(got.failures)
    return got.exitcode
