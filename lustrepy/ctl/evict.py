"""`lfsctl evict CLIENT`: evict a client from the MDS and from every OST.

Each server's lock server (Ldlm.Evict) drops the client's locks, tells it
over its callback stream, and refuses its requests until it connects again.
A client no server knows is a one-line error (exit 1). A server that does not
answer is reported on its own line (exit 1) after the others are done; an
inactive OST that does not answer is only noted, since it holds no export of
the client once it restarts.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from typing import Any

from lustrepy.common.errors import QuietError
from lustrepy.ctl import ldlmq, locks, multi, output, servers, target

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    if not args.client.strip():
        raise QuietError("evict: empty client id", 2)
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    fsname, every = servers.fs_servers(t.address)
    got = multi.gather(every, lambda s: ldlmq.evict(s, args.client))
    evicted = [s for s, _ in got.answers]
    unknown = [e.server for e in got.failures if e.errno == errno.ENOENT]
    down_inactive = [e for e in got.failures if e.errno != errno.ENOENT and not e.server.active]
    failed = tuple(e for e in got.failures if e.errno != errno.ENOENT and e.server.active)
    if not evicted and not failed:
        raise QuietError(f"no client {args.client!r} is known to any server of {fsname}")
    if args.json:
        d: dict[str, Any] = {
            "fsname": fsname, "client_id": args.client, "evicted": [s.name for s in evicted],
            "unknown": [s.name for s in unknown],
            "not_answering_inactive": [s.name for s in (e.server for e in down_inactive)],
            "errors": [{**locks.server_json(e.server), "error": str(e)} for e in failed]}
        sys.stdout.write(output.to_json(d))
    elif evicted:
        sys.stdout.write(f"evicted {args.client} from {', '.join(s.name for s in evicted)}\n")
    multi.say_failures(failed)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("evict", parents=parents, help="evict a client from the MDS and every OST",
                       description="Evict CLIENT (an id as `lfsctl clients` lists it) from the MDS and every "
                                   "OST: its locks are dropped and its requests refused until it "
                                   "reconnects. Exit 1 when no server knows the client or a server did not "
                                   "answer.")
    p.add_argument("client", metavar="CLIENT", help="the client id")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)
