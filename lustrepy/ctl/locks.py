"""`lfsctl locks`: granted and waiting locks per resource on the MDS and the OSTs.

Asks each server's lock server (Ldlm.List) over RPC: every MDT's with --mds,
one MDT's with --mdt N, one OST's with --ost N, else every active MDT and OST
(inactive ones are listed as not asked). --client ID keeps one client's locks. Per lock: the
cookie, mode, inode bits (MDS) or byte extent (OST), owner client, state, age
and flags (blocking-sent: the holder was asked to cancel; local: taken by the
server itself; wbc: a write-back cache lock). Changes nothing anywhere.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from lustrepy.ctl import ldlmq, multi, output, servers, target
from lustrepy.ctl.ldlmq import Listing, LockRow
from lustrepy.ctl.servers import Server

log = logging.getLogger(__name__)


def resource_str(server: Server, res: tuple[int, int, int]) -> str:
    """An MDS resource is a FID [seq:oid:ver]; an OST resource is (ost index, object id)."""
    if server.kind == servers.MDT:
        return f"fid [{res[0]:#x}:{res[1]:#x}:{res[2]:#x}]"
    return f"object {res[1]} ({res[1]:#x})"


def by_resource(locks: tuple[LockRow, ...]) -> list[tuple[tuple[int, int, int], list[LockRow]]]:
    """Locks grouped per resource (resources in order), granted before waiting, oldest first."""
    groups: dict[tuple[int, int, int], list[LockRow]] = defaultdict(list)
    for lk in locks:
        groups[lk.resource].append(lk)
    return [(res, sorted(ls, key=lambda lk: (not lk.granted, -lk.age_s, lk.cookie)))
            for res, ls in sorted(groups.items())]


def _what(lk: LockRow) -> str:
    if lk.extent is not None:
        return ldlmq.extent_str(lk.extent)
    return ldlmq.bits_str(lk.ibits)


def render(listings: list[Listing], skipped: list[Server]) -> str:
    lines: list[str] = []
    for li in listings:
        granted = sum(lk.granted for lk in li.locks)
        if lines:
            lines.append("")
        lines.append(f"{li.server.name} ({li.server.address}): {granted} granted, "
                     f"{len(li.locks) - granted} waiting")
        if not li.locks:
            continue
        groups = by_resource(li.locks)
        ow = max([5] + [len(lk.owner) for lk in li.locks])
        ww = max([11] + [len(_what(lk)) for lk in li.locks])
        for res, locks in groups:
            lines.append(f"  {resource_str(li.server, res)}")
            lines.append(f"    {'COOKIE':<18} {'MODE':<4} {'BITS/EXTENT':<{ww}} {'OWNER':<{ow}} {'STATE':<7} "
                         f"{'AGE':>8}  FLAGS")
            for lk in locks:
                lines.append(f"    {lk.cookie:#018x} {lk.mode:<4} {_what(lk):<{ww}} {lk.owner:<{ow}} "
                             f"{'granted' if lk.granted else 'waiting':<7} {output.human_duration(lk.age_s):>8}  "
                             f"{','.join(lk.flags) or '-'}")
    for s in skipped:
        if lines:
            lines.append("")
        lines.append(f"{s.name} ({s.address or 'no address'}): inactive, not asked")
    return "\n".join(lines) + "\n" if lines else ""


def lock_json(server: Server, lk: LockRow) -> dict[str, Any]:
    d: dict[str, Any] = {"cookie": lk.cookie, "resource": list(lk.resource), "mode": lk.mode,
                         "owner": lk.owner, "state": "granted" if lk.granted else "waiting",
                         "granted": lk.granted, "age_s": round(lk.age_s, 3), "flags": list(lk.flags),
                         "on_behalf": lk.on_behalf}
    if server.kind == servers.MDT:
        d["fid"] = f"[{lk.resource[0]:#x}:{lk.resource[1]:#x}:{lk.resource[2]:#x}]"
        d["ibits"] = lk.ibits
        d["bits"] = ldlmq.bits_str(lk.ibits)
    else:
        d["object_id"] = lk.resource[1]
    d["extent"] = {"start": lk.extent[0], "end": lk.extent[1]} if lk.extent is not None else None
    return d


def server_json(s: Server) -> dict[str, Any]:
    return {"name": s.name, "type": s.kind, "index": s.index, "address": s.address, "active": s.active}


def as_json(fsname: str, listings: list[Listing], skipped: list[Server],
            failures: tuple[servers.ServerError, ...]) -> dict[str, Any]:
    out = []
    for li in listings:
        locks = [lk for _, ls in by_resource(li.locks) for lk in ls]
        out.append({**server_json(li.server), "granted": sum(lk.granted for lk in locks),
                    "waiting": sum(not lk.granted for lk in locks), "evictions": li.evictions,
                    "callbacks_sent": li.callbacks_sent, "locks": [lock_json(li.server, lk) for lk in locks]})
    return {"fsname": fsname, "servers": out, "skipped": [server_json(s) for s in skipped],
            "errors": [{**server_json(e.server), "error": str(e)} for e in failures]}


def run(args: argparse.Namespace) -> int:
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    fsname, every = servers.fs_servers(t.address)
    chosen = servers.select(every, mds=args.mds, ost=args.ost, mdt=args.mdt)
    explicit = args.mds or args.ost is not None or args.mdt is not None
    skipped = [s for s in chosen if not s.active and not explicit]
    asked = [s for s in chosen if s not in skipped]
    got = multi.gather(asked, lambda s: ldlmq.list_locks(s, args.client or ""))
    listings = [li for _, li in got.answers]
    if args.json:
        sys.stdout.write(output.to_json(as_json(fsname, listings, skipped, got.failures)))
    else:
        sys.stdout.write(render(listings, skipped))
    multi.say_failures(got.failures)
    return got.exitcode


def _index(kind: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            n = int(text, 0)
        except ValueError:
            n = -1
        if n < 0:
            raise argparse.ArgumentTypeError(f"bad {kind} index {text!r}: a number from 0")
        return n
    return parse


_ost_index = _index("OST")
mdt_index = _index("MDT")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("locks", parents=parents, help="granted and waiting locks per resource, per server",
                       description="The locks each lock server holds, grouped per resource: mode, inode "
                                   "bits (MDS) or byte extent (OST), owner client, granted or waiting, age "
                                   "and flags. Without --mds, --mdt or --ost: every active MDT and OST.")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--mds", action="store_true", help="only the MDSs' lock servers (every MDT)")
    which.add_argument("--mdt", type=mdt_index, metavar="N", help="only MDT N's lock server")
    which.add_argument("--ost", type=_ost_index, metavar="N", help="only OST N's lock server")
    p.add_argument("--client", metavar="ID", help="only locks owned by this client id")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)
