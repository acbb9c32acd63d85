"""`lfsctl mirror`: mirrored layouts (Lustre's `lfs mirror`).

  mirror create -N COUNT [-c N] [-S SIZE] PATH...   a directory: new files under it get COUNT mirrors;
                                                    a new path: an empty file with COUNT mirrors
  mirror extend -N COUNT [--no-wait] FILE...        add COUNT mirrors to existing files (an unmirrored one too)
                                                    and wait until the MDS has copied the data into them
  mirror split --mirror-id ID [-d] FILE...          take a mirror out of each file: -d destroys its objects,
                                                    else they become the file FILE.mirror~ID beside it
  mirror resync [--timeout S] FILE...                have the MDS copy each stale mirror from an in-sync one
                                                    now, and wait until the file is in sync
  mirror verify FILE...                              compare the mirrors' bytes (crc32c per MiB, computed
                                                    by each OSS): exit 1 when in-sync mirrors differ
  mirror status                                      the MDS's resync: files degraded, copies under way

A mirrored file keeps the same bytes in several mirrors, each striped over
OSTs of its own on different OSS nodes (and failure domains while there are
enough); writes go to every in-sync mirror, reads to any. Like getstripe and
setstripe, `create` works through the layout extended attribute on a mounted
path, with the caller's permissions; `resync` and `status` ask the MDS, and
`verify` the OSSes, found as every lfsctl command finds them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from lustrepy.common import layout as lo
from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.fid import Fid
from lustrepy.ctl import output, query, servers, stripe, target
from lustrepy.rpc.channel import call
from lustrepy.rpc.convert import check_rep, fid_from_pb, fid_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc as ogrpc

BLOCK = 1 << 20             # bytes per checksum in verify
OSS_TIMEOUT_S = 30.0


def _count(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from low to high."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = low - 1
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"bad mirror count {text!r}: {low} to {high}{what}")
        return n
    return parse


_mirrors = _count(2, lo.MAX_MIRRORS, "")
_more = _count(1, lo.MAX_MIRRORS - 1, " more")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mirror", help="mirrored layouts: create, resync, verify, status",
                       description=__doc__.split("\n\n")[0])
    msub = p.add_subparsers(dest="mirror_command", metavar="ACTION", required=True)
    c = msub.add_parser("create", parents=parents, help="mirror new files under a directory, or a new file",
                        description="On a directory: new files created under it get COUNT mirrors. On a path "
                                    "that does not exist: create an empty file with COUNT mirrors. On an "
                                    "existing file only while it has no objects. Values not given come from "
                                    "the directory the layout is inherited from.")
    c.add_argument("-N", "--mirror-count", dest="mirrors", type=_mirrors, required=True, metavar="COUNT",
                   help=f"number of mirrors (2 to {lo.MAX_MIRRORS})")
    c.add_argument("-c", "--stripe-count", dest="count", type=stripe._count, metavar="COUNT",
                   help="OSTs each mirror stripes over (-1: all, shared out between the mirrors)")
    c.add_argument("-S", "--stripe-size", dest="size", type=stripe._size, metavar="SIZE",
                   help="bytes per stripe, a multiple of 64K (suffixes K, M, G)")
    c.add_argument("paths", nargs="+", metavar="PATH")
    c.set_defaults(func=run_create)
    e = msub.add_parser("extend", parents=parents, help="add mirrors to existing files",
                        description="Add COUNT mirrors to each FILE (an unmirrored file becomes mirror 1), on OSS "
                                    "nodes its objects are not on; the MDS copies the data into them, OSS to OSS. "
                                    "Waits until every mirror is in sync unless --no-wait.")
    e.add_argument("-N", "--mirror-count", dest="mirrors", type=_more, default=1, metavar="COUNT",
                   help="mirrors to add (default 1)")
    e.add_argument("--no-wait", action="store_true", help="return once the mirrors are added")
    e.add_argument("--timeout", type=float, default=600.0, metavar="S", help="give up waiting after S seconds")
    e.add_argument("paths", nargs="+", metavar="FILE")
    e.set_defaults(func=run_extend)
    sp = msub.add_parser("split", parents=parents, help="take a mirror out of files",
                         description="Take mirror ID out of each FILE's layout: with -d its objects are "
                                     "destroyed, else they become a new file FILE.mirror~ID in the same "
                                     "directory, owned as FILE is. The last in-sync mirror is never taken out.")
    sp.add_argument("--mirror-id", dest="mirror_id", type=int, required=True, metavar="ID")
    sp.add_argument("-d", "--destroy", action="store_true", help="destroy the split mirror's objects")
    sp.add_argument("paths", nargs="+", metavar="FILE")
    sp.set_defaults(func=run_split)
    r = msub.add_parser("resync", parents=parents, help="copy stale mirrors from an in-sync one now",
                        description="Have the MDS resync each FILE's stale mirrors (OSS to OSS) now and wait "
                                    "until every mirror is in sync.")
    r.add_argument("--timeout", type=float, default=600.0, metavar="S", help="give up waiting after S seconds")
    r.add_argument("paths", nargs="+", metavar="FILE")
    r.set_defaults(func=run_resync)
    v = msub.add_parser("verify", parents=parents, help="compare the bytes of a file's mirrors",
                        description="Compare each FILE's mirrors, object by object, by the crc32c of every MiB "
                                    "as each OSS computes it. Exit 1 when in-sync mirrors differ.")
    v.add_argument("paths", nargs="+", metavar="FILE")
    v.set_defaults(func=run_verify)
    s = msub.add_parser("status", parents=parents, help="mirrors being resynced and files degraded",
                        description="What the MDS's resync does: files with a mirror to rebuild, the copy under "
                                    "way (bytes done, rate), copies done and failed.")
    s.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    s.set_defaults(func=run_status)


def run_create(args: argparse.Namespace) -> int:
    stripe.requested(None, args.count, args.size, None, args.mirrors)   # bad values: usage errors first
    failed = False
    done: list[dict[str, Any]] = []
    for path in args.paths:
        try:
            stripe.setstripe_one(path, args.count, args.size, None, False, args.mirrors)
            if args.json:
                is_dir, d = stripe.getstripe_one(path)
                done.append(stripe.as_json(path, is_dir, d or {}))
        except QuietError as e:
            if e.exitcode == 2:
                raise
            stripe._say(str(e))
            failed = True
    if args.json and done:
        sys.stdout.write(output.to_json(done[0] if len(args.paths) == 1 else done))
    return 1 if failed else 0


# ---- resync, verify, status --------------------------------------------------------------

def _mirrored(path: str) -> dict[str, Any]:
    d = stripe.read_layout(path)
    if d is None or not d.get("mirrors"):
        raise QuietError(f"{path}: not a mirrored file")
    return d


def _mds(args: argparse.Namespace, path: str | None) -> str:
    return target.resolve(mgs=args.mgs, root=args.root, path=path).address


def run_resync(args: argparse.Namespace) -> int:
    def one(path: str) -> None:
        d = _mirrored(path)
        if "fid" not in d:
            raise QuietError(f"{path}: the mount did not say the file's FID")
        _ask_resync(_mds(args, path), Fid.parse(d["fid"]))
        _wait_in_sync(path, args.timeout)
    return _each(args, one)


def _change(args: argparse.Namespace, path: str, action: mpb.MirrorOp.Action, *, count: int = 0,
            mirror_id: int = 0, destroy: bool = False) -> None:
    d = stripe.read_layout(path)
    if d is None or "fid" not in d:
        raise QuietError(f"{path}: a file with objects is needed (write it first)")
    op = mpb.MirrorOp(fid=fid_to_pb(Fid.parse(d["fid"])), action=action, count=count, mirror_id=mirror_id,
                      destroy=destroy)
    rep = query.mds_rpc(_mds(args, path), lambda stub: call(stub.MirrorChange, mpb.MirrorChangeRequest(
        hdr=cpb.ReqHdr(xid=1), op=op), timeout=120.0), 120.0)
    try:
        check_rep(rep.hdr)
    except LpError as e:
        raise QuietError(f"{path}: {e.message}") from None


def _each(args: argparse.Namespace, fn: Callable[[str], None]) -> int:
    """fn on every path; a path that fails is one line on stderr, and the status is 1. With --json,
    the layouts of the paths done as getstripe --json shows them."""
    failed = False
    done: list[dict[str, Any]] = []
    for path in args.paths:
        try:
            fn(path)
            if args.json:
                is_dir, d = stripe.getstripe_one(path)
                done.append(stripe.as_json(path, is_dir, d or {}))
        except QuietError as e:
            stripe._say(str(e))
            failed = True
    if args.json and done:
        sys.stdout.write(output.to_json(done[0] if len(args.paths) == 1 else done))
    return 1 if failed else 0


def run_extend(args: argparse.Namespace) -> int:
    def one(path: str) -> None:
        _change(args, path, mpb.MirrorOp.EXTEND, count=args.mirrors)
        if not args.no_wait:
            _wait_in_sync(path, args.timeout)
    return _each(args, one)


def run_split(args: argparse.Namespace) -> int:
    def one(path: str) -> None:
        _mirrored(path)
        _change(args, path, mpb.MirrorOp.SPLIT, mirror_id=args.mirror_id, destroy=args.destroy)
    return _each(args, one)


def _ask_resync(address: str, fid: Fid) -> None:
    req = mpb.MirrorResyncRequest(hdr=cpb.ReqHdr(xid=1), fid=fid_to_pb(fid))
    rep = query.mds_rpc(address, lambda stub: call(stub.MirrorResync, req, timeout=query.DEFAULT_TIMEOUT_S),
                        query.DEFAULT_TIMEOUT_S)
    check_rep(rep.hdr)


def _wait_in_sync(path: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while True:
        states = {m["mirror_id"]: m["state"] for m in _mirrored(path)["mirrors"]}
        if all(s == "in_sync" for s in states.values()):
            return
        if time.monotonic() > end:
            raise QuietError(f"{path}: mirrors not in sync after {timeout:g}s: "
                             + ", ".join(f"{i} {s}" for i, s in sorted(states.items()))
                             + " (lfsctl mirror status tells why)")
        time.sleep(0.2)


def verify_one(path: str, addresses: dict[int, str]) -> dict[str, Any]:
    """Each mirror's checksums per object; `agree` when every in-sync mirror has the same bytes."""
    d = _mirrored(path)
    sums: dict[int, list[tuple[int, list[int]]]] = {}
    for m in d["mirrors"]:
        sums[m["mirror_id"]] = [_checksums(addresses, ost, oid) for ost, oid in m["objects"]]
    in_sync = [m["mirror_id"] for m in d["mirrors"] if m["state"] == "in_sync"]
    differ = []
    for a, b in zip(in_sync, in_sync[1:], strict=False):
        for k, (x, y) in enumerate(zip(sums[a], sums[b], strict=True)):
            if x != y:
                at = next((i for i, (p, q) in enumerate(zip(x[1], y[1], strict=False)) if p != q),
                          min(len(x[1]), len(y[1])))
                differ.append({"mirrors": [a, b], "stripe": k, "sizes": [x[0], y[0]], "first_block": at})
    return {"path": path, "mirrors": [{"mirror_id": m["mirror_id"], "state": m["state"],
                                       "bytes": sum(n for n, _ in sums[m["mirror_id"]])} for m in d["mirrors"]],
            "agree": not differ, "differences": differ}


def _checksums(addresses: dict[int, str], ost: int, oid: int) -> tuple[int, list[int]]:
    srv = servers.Server("OST", ost, f"OST{ost:04x}", addresses.get(ost, ""))
    req = opb.ChecksumRequest(hdr=cpb.ReqHdr(xid=1), object_id=oid, block=BLOCK)
    try:
        rep = servers.server_call(srv, ogrpc.OssStub, servers.unary("Checksum", req), "checksum", OSS_TIMEOUT_S)
    except servers.ServerError as e:
        if "EBADMSG" in str(e):
            return -1, []           # bytes that fail their checksum at rest: this mirror differs
        raise QuietError(f"object {oid} on OST{ost:04x}: {e}") from None
    return int(rep.size), list(rep.crcs)


def run_verify(args: argparse.Namespace) -> int:
    addresses = {o.index: o.address for o in query.fs_status(_mds(args, args.paths[0])).osts}
    results, failed = [], False
    for path in args.paths:
        try:
            r = verify_one(path, addresses)
        except QuietError as e:
            stripe._say(str(e))
            failed = True
            continue
        results.append(r)
        failed = failed or not r["agree"]
        if not args.json:
            states = ", ".join(f"{m['mirror_id']} {m['state']} ({m['bytes']} bytes)" for m in r["mirrors"])
            sys.stdout.write(f"{path}: {'in-sync mirrors agree' if r['agree'] else 'MIRRORS DIFFER'}: {states}\n")
            for x in r["differences"]:
                if -1 in x["sizes"]:
                    bad = x["mirrors"][x["sizes"].index(-1)]
                    sys.stdout.write(f"  mirror {bad} holds bytes that fail their checksum at rest in stripe "
                                     f"{x['stripe']}\n")
                    continue
                sys.stdout.write(f"  mirrors {x['mirrors'][0]} and {x['mirrors'][1]} differ in stripe {x['stripe']} "
                                 f"from MiB {x['first_block']} (object sizes {x['sizes'][0]}, {x['sizes'][1]})\n")
    if args.json:
        sys.stdout.write(output.to_json(results[0] if len(args.paths) == 1 and results else results))
    return 1 if failed else 0


def run_status(args: argparse.Namespace) -> int:
    address = _mds(args, args.path)
    rep = query.mds_rpc(address, lambda stub: call(stub.MirrorStatus, mpb.MirrorStatusRequest(
        hdr=cpb.ReqHdr(xid=1)), timeout=query.DEFAULT_TIMEOUT_S), query.DEFAULT_TIMEOUT_S)
    check_rep(rep.hdr)
    copying = [{"fid": str(fid_from_pb(c.fid)), "mirror_id": c.mirror_id, "why": c.why, "bytes_total": c.bytes_total,
                "bytes_done": c.bytes_done, "bytes_left": max(0, c.bytes_total - c.bytes_done), "rate": round(c.rate)}
               for c in rep.copying]
    waiting = [{"fid": str(fid_from_pb(w.fid)), "why": w.why} for w in rep.waiting]
    out = {"degraded_files": rep.degraded_files, "copying": copying, "waiting": waiting,
           "copied_files": rep.copied_files, "copied_bytes": rep.copied_bytes, "failures": rep.failures,
           "resync_delay_s": rep.resync_delay_s, "bandwidth": rep.bandwidth}
    if args.json:
        sys.stdout.write(output.to_json(out))
        return 0
    lines = [f"degraded files:  {rep.degraded_files}",
             f"copied:          {rep.copied_files} files, {rep.copied_bytes} bytes; {rep.failures} copies failed",
             f"resync delay:    {rep.resync_delay_s:g}s   bandwidth: "
             f"{'unbounded' if not rep.bandwidth else f'{rep.bandwidth / (1 << 20):g} MiB/s'}"]
    lines += [f"copying:         {c['fid']} mirror {c['mirror_id']} ({c['why']}): {c['bytes_done']} of "
              f"{c['bytes_total']} bytes, {c['bytes_left']} left, {c['rate'] / (1 << 20):.1f} MiB/s" for c in copying]
    lines += [f"waiting:         {w['fid']}: {w['why']}" for w in waiting]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
