"""`lfsctl mkdir -i IDX | -c N [-H HASH] DIR`, `lfsctl setdirstripe -D -c N [-H HASH] DIR` and
`lfsctl getdirstripe [-D] DIR`: directories placed on an MDT or striped over several.

`mkdir -i` makes DIR with its inode and entries on MDT IDX (a remote directory, Lustre's
`lfs mkdir -i`) while its name stays in the parent's MDT; `mkdir -c N` makes DIR striped over N
MDTs, its first stripe on the parent's MDT and its names spread by HASH. The parent's FID comes
from the mount's virtual attribute `lustrepy.lmv`, the MDT holding the parent from the FID
location database, and the directory is made by that MDT (Mds.MkdirAt, an admin call, with the
caller's uid and gids) as one operation across the MDTs. `setdirstripe -D` sets how new
subdirectories of DIR are striped (the attribute `lustrepy.dmv`, on every stripe of a striped
DIR; subdirectories made striped so inherit it). `getdirstripe` shows where a directory's
entries live, in `lfs getdirstripe`'s words.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Any, Callable

from lustrepy.common.dirhash import DMV_XATTR, HASHES
from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.fid import Fid
from lustrepy.ctl import output, query, target, vxattr
from lustrepy.rpc.channel import call
from lustrepy.rpc.convert import check_rep, fid_to_pb
from lustrepy.rpc.fldwire import view_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

LMV_XATTR = "lustrepy.lmv"
TIMEOUT = 60.0


def placement(path: str) -> dict[str, Any]:
    """What the mount says of a directory: its FID, its MDT, how many MDTs there are."""
    return vxattr.read_json(path, LMV_XATTR, "not a directory")


def _mdt_address(mgs: str, index: int) -> str:
    rep = query.mds_rpc(mgs, lambda stub: call(stub.Fld, mpb.FldRequest(hdr=cpb.ReqHdr(xid=1)), timeout=TIMEOUT),
                        TIMEOUT)
    check_rep(rep.hdr)
    view = view_from_pb(rep.ranges, rep.mdts)
    for m in view.mdts:
        if m.index == index:
            return m.address
    raise QuietError(f"this file system has no MDT {index} (MDTs: {', '.join(str(m.index) for m in view.mdts)})")


def make(args: argparse.Namespace, path: str) -> None:
    path = os.path.abspath(path)
    parent, name = os.path.split(path.rstrip("/"))
    if not name:
        raise QuietError(f"{path}: give the new directory's name")
    where = placement(parent)
    mgs = target.resolve(mgs=args.mgs, root=args.root, path=parent).address
    here = int(where["mdt"])
    op = mpb.MkdirOp(parent=fid_to_pb(Fid.parse(where["fid"])), name=os.fsencode(name), mode=args.mode)
    if args.stripe_count:               # -c 1: a plain directory of the parent's MDT
        if args.mdt_index is not None and args.mdt_index != here:
            raise QuietError(f"{path}: a striped directory starts on its parent's MDT ({here}); "
                             f"make it in a directory of MDT {args.mdt_index}")
        if args.stripe_count > 1:
            op.stripe_count, op.stripe_hash = args.stripe_count, args.hash
    elif args.mdt_index is not None:
        _mdt_address(mgs, args.mdt_index)           # the MDT asked for exists
        op.remote, op.mdt_index = True, args.mdt_index
    owner = _mdt_address(mgs, here)
    hdr = cpb.ReqHdr(xid=1, uid=os.getuid(), gid=os.getgid(), groups=list(os.getgroups()))
    rep = query.mds_rpc(owner, lambda stub: call(stub.MkdirAt, mpb.MkdirAtRequest(hdr=hdr, op=op), timeout=TIMEOUT),
                        TIMEOUT)
    try:
        check_rep(rep.hdr)
    except LpError as e:
        raise QuietError(f"{path}: {e.message}") from None


def run_mkdir(args: argparse.Namespace) -> int:
    if args.mdt_index is None and not args.stripe_count:
        print("lfsctl mkdir: give -i IDX (a remote directory) or -c N (striped over N MDTs)", file=sys.stderr)
        return 2
    status = 0
    for p in args.paths:
        try:
            make(args, p)
        except QuietError as e:
            print(f"lfsctl: {e}", file=sys.stderr)
            status = 1
    return status


def run_getdirstripe(args: argparse.Namespace) -> int:
    if args.default:
        defaults = [(p, _default_of(p)) for p in args.paths]
        if args.json:
            out = [{"path": p, "lmv_stripe_count": dv[0] if dv else 0, "lmv_hash_type": dv[1] if dv else "none"}
                   for p, dv in defaults]
            sys.stdout.write(output.to_json(out[0] if len(out) == 1 else out))
            return 0
        for p, dv in defaults:
            if len(defaults) > 1:
                print(p)
            print(f"lmv_stripe_count: {dv[0] if dv else 0} lmv_stripe_offset: -1 lmv_hash_type: {dv[1] if dv else 'none'}")
        return 0
    states = [(p, placement(p)) for p in args.paths]
    if args.json:
        out = [{"path": p, "fid": d["fid"], "lmv_stripe_count": d.get("stripe_count", 0),
                "lmv_stripe_offset": d["mdt"], "lmv_hash_type": d.get("hash", "none"),
                "mdt_count": d.get("mdt_count", 1), "stripes": d.get("stripes", [])} for p, d in states]
        sys.stdout.write(output.to_json(out[0] if len(out) == 1 else out))
        return 0
    for p, d in states:
        if len(states) > 1:
            print(p)
        print(f"lmv_stripe_count: {d.get('stripe_count', 0)} lmv_stripe_offset: {d['mdt']} "
              f"lmv_hash_type: {d.get('hash', 'none')}")
        if d.get("stripes"):
            print("mdtidx\t\t FID[seq:oid:ver]")
            for st in d["stripes"]:
                print(f"{st['mdt']:6d}\t\t {st['fid']}")
    return 0


def _mode(text: str) -> int:
    try:
        v = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None
    if not 0 <= v <= 0o7777:
        raise argparse.ArgumentTypeError(f"mode {text} out of range")
    return v


def _default_of(path: str) -> tuple[int, str] | None:
    placement(path)                     # one line for what is not a directory of a mount
    try:
        raw = os.getxattr(path, DMV_XATTR)
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise QuietError(f"{path}: {os.strerror(e.errno or errno.EIO)}") from None
    count, h = raw.decode().split()
    return int(count), h


def run_setdirstripe(args: argparse.Namespace) -> int:
    if not args.default:
        return run_mkdir(args)
    status = 0
    for p in args.paths:
        try:
            placement(p)
            if args.delete:
                try:
                    os.removexattr(p, DMV_XATTR)
                except OSError as e:
                    if e.errno != errno.ENODATA:
                        raise
            else:
                if not args.stripe_count:
                    raise QuietError(f"{p}: give -c N for the default striping (or -d to remove it)")
                os.setxattr(p, DMV_XATTR, f"{args.stripe_count} {args.hash}".encode())
        except QuietError as e:
            print(f"lfsctl: {e}", file=sys.stderr)
            status = 1
        except OSError as e:
            print(f"lfsctl: {p}: {os.strerror(e.errno or errno.EIO)}", file=sys.stderr)
            status = 1
    return status


def _int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{what} {v} out of range {lo}..{hi}")
        return v
    return parse


_index = _int_in(0, 255, "an MDT index")
_count = _int_in(1, 64, "a stripe count")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("mkdir", parents=parents, help="make a directory on a chosen MDT, or striped over several",
                       description="Make each DIR on a lustrepy mount with its inode and entries on MDT IDX "
                                   "(-i: a remote directory; its name stays with its parent's MDT), or with "
                                   "its entries striped over N MDTs by a hash of their names (-c). Needs the "
                                   "admin certificate; the directory is made with the caller's uid and groups.")
    m.add_argument("-i", "--mdt-index", dest="mdt_index", type=_index, default=None, metavar="IDX",
                   help="the MDT to hold the directory (a remote directory)")
    m.add_argument("-c", "--stripe-count", dest="stripe_count", type=_count, default=0, metavar="N",
                   help="stripe the directory's entries over N MDTs, the first its parent's")
    m.add_argument("-H", "--hash", choices=HASHES, default=HASHES[0],
                   help="how a striped directory's names pick their stripe (default fnv_1a_64)")
    m.add_argument("-m", "--mode", type=_mode, default=0o755, help="permission bits, octal (default 755)")
    m.add_argument("paths", nargs="+", metavar="DIR")
    m.set_defaults(func=run_mkdir)
    g = sub.add_parser("getdirstripe", parents=parents, help="show which MDT holds a directory",
                       description="Show, for each directory DIR on a lustrepy mount, the MDT that holds its "
                                   "entries (lmv_stripe_offset) and its FID.")
    g.add_argument("-D", "--default", action="store_true", help="show how new subdirectories are striped")
    g.add_argument("paths", nargs="+", metavar="DIR")
    g.set_defaults(func=run_getdirstripe)
    d = sub.add_parser("setdirstripe", parents=parents, help="stripe new subdirectories (-D), or make DIR as mkdir",
                       description="With -D: set how new subdirectories of each DIR are striped (-c N over N MDTs, "
                                   "-H HASH; -d removes it). Without -D: make DIR as `lfsctl mkdir` does.")
    d.add_argument("-D", "--default", action="store_true", help="set the default of new subdirectories")
    d.add_argument("-d", "--delete", action="store_true", help="with -D: remove the default")
    d.add_argument("-i", "--mdt-index", dest="mdt_index", type=_index, default=None, metavar="IDX",
                   help="without -D: the MDT to hold the directory")
    d.add_argument("-c", "--stripe-count", dest="stripe_count", type=_count, default=0, metavar="N",
                   help="stripe over N MDTs")
    d.add_argument("-H", "--hash", choices=HASHES, default=HASHES[0], help="name hash (default fnv_1a_64)")
    d.add_argument("-m", "--mode", type=_mode, default=0o755, help="without -D: permission bits, octal")
    d.add_argument("paths", nargs="+", metavar="DIR")
    d.set_defaults(func=run_setdirstripe)
