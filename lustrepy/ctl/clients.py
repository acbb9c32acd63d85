"""`lfsctl clients`: the clients connected to the file system, with the locks each holds on each server.

Asks the lock server of the MDS and of every active OST for its exports
(Ldlm.List) and merges them per client id: its address (as the MDS saw the
connection), when it connected to the MDS, how long since its last request
to any server, whether a server evicted it, and its granted locks per server.
Changes nothing anywhere.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

from lustrepy.ctl import ldlmq, locks, multi, output, servers, target
from lustrepy.ctl.ldlmq import ExportRow, Listing
from lustrepy.ctl.servers import Server

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientRow:
    """One client as the servers know it."""

    client_id: str
    address: str                     # from the MDS's export, else the first server's
    connected_s: float               # since it connected to the MDS (else the longest-known server)
    idle_s: float                    # since its last request to any server
    evicted_on: tuple[str, ...]      # servers (names) that evicted it and still refuse it
    locks: tuple[tuple[Server, int], ...]   # granted locks per server that knows it

    @property
    def total_locks(self) -> int:
        return sum(n for _, n in self.locks)


def merge(listings: list[Listing]) -> list[ClientRow]:
    """Exports from every server merged per client id, sorted by id."""
    per: dict[str, list[tuple[Server, ExportRow]]] = {}
    for li in listings:
        for e in li.exports:
            per.setdefault(e.client_id, []).append((li.server, e))
    rows = []
    for cid, seen in sorted(per.items()):
        mds = [e for s, e in seen if s.kind == servers.MDT]
        first = mds[0] if mds else max((e for _, e in seen), key=lambda e: e.connected_s)
        rows.append(ClientRow(client_id=cid, address=first.peer, connected_s=first.connected_s,
                              idle_s=min(e.idle_s for _, e in seen),
                              evicted_on=tuple(s.name for s, e in seen if e.evicted),
                              locks=tuple((s, e.granted_locks) for s, e in seen)))
    return rows


def render(rows: list[ClientRow]) -> str:
    if not rows:
        return "(no client is connected)\n"
    cw = max([9] + [len(r.client_id) for r in rows])
    aw = max([7] + [len(r.address) for r in rows])
    lines = [f"{'CLIENT':<{cw}} {'ADDRESS':<{aw}} {'CONNECTED':>10} {'LAST REQ':>10} {'STATE':<8} "
             f"{'LOCKS':>5}  PER SERVER"]
    for r in rows:
        state = "evicted" if r.evicted_on else "active"
        per = " ".join(f"{s.label}:{n}" for s, n in r.locks)
        lines.append(f"{r.client_id:<{cw}} {r.address or '-':<{aw}} {output.human_duration(r.connected_s):>10} "
                     f"{output.human_duration(r.idle_s) + ' ago':>10} {state:<8} {r.total_locks:>5}  {per}")
    return "\n".join(lines) + "\n"


def as_json(fsname: str, rows: list[ClientRow], skipped: list[Server],
            failures: tuple[servers.ServerError, ...]) -> dict[str, Any]:
    now = time.time()
    return {"fsname": fsname, "clients": [
        {"client_id": r.client_id, "address": r.address, "connected_s": round(r.connected_s, 3),
         "connected_since": round(now - r.connected_s, 3), "idle_s": round(r.idle_s, 3),
         "state": "evicted" if r.evicted_on else "active", "evicted_on": list(r.evicted_on),
         "locks": r.total_locks, "locks_per_server": {s.name: n for s, n in r.locks}}
        for r in rows],
        "skipped": [locks.server_json(s) for s in skipped],
        "errors": [{**locks.server_json(e.server), "error": str(e)} for e in failures]}


def run(args: argparse.Namespace) -> int:
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    fsname, every = servers.fs_servers(t.address)
    skipped = [s for s in every if not s.active]
    got = multi.gather([s for s in every if s.active], ldlmq.list_locks)
    rows = merge([li for _, li in got.answers])
    if args.json:
        sys.stdout.write(output.to_json(as_json(fsname, rows, skipped, got.failures)))
    else:
        sys.stdout.write(render(rows))
    multi.say_failures(got.failures)
    return got.exitcode


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("clients", parents=parents, help="connected clients and the locks each holds",
                       description="Every client connected to the MDS or an active OST: its id, address, "
                                   "how long it has been connected, its last request, whether it was "
                                   "evicted, and its granted locks on each server.")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)
