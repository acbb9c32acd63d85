"""`lfsctl mkdir -i IDX DIR` and `lfsctl getdirstripe DIR`: directories placed on an MDT.

`mkdir -i` makes DIR with its inode and entries on MDT IDX (a remote directory, Lustre's
`lfs mkdir -i`) while its name stays in the parent's MDT: the parent's FID comes from the
mount's virtual attribute `lustrepy.lmv`, the MDT holding the parent from the FID location
database, and the directory is made by that MDT (Mds.MkdirAt, an admin call, with the
caller's uid and gids) as one operation across the two MDTs. `getdirstripe` shows where a
directory's entries live, in `lfs getdirstripe`'s words.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

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
    _mdt_address(mgs, args.mdt_index)           # the MDT asked for exists
    owner = _mdt_address(mgs, int(where["mdt"]))
    op = mpb.MkdirOp(parent=fid_to_pb(Fid.parse(where["fid"])), name=os.fsencode(name), mode=args.mode,
                     remote=True, mdt_index=args.mdt_index)
    hdr = cpb.ReqHdr(xid=1, uid=os.getuid(), gid=os.getgid(), groups=list(os.getgroups()))
    rep = query.mds_rpc(owner, lambda stub: call(stub.MkdirAt, mpb.MkdirAtRequest(hdr=hdr, op=op), timeout=TIMEOUT),
                        TIMEOUT)
    try:
        check_rep(rep.hdr)
    except LpError as e:
        raise QuietError(f"{path}: {e.message}") from None


def run_mkdir(args: argparse.Namespace) -> int:
    status = 0
    for p in args.paths:
        try:
            make(args, p)
        except QuietError as e:
            print(f"lfsctl: {e}", file=sys.stderr)
            status = 1
    return status


def run_getdirstripe(args: argparse.Namespace) -> int:
    states = [(p, placement(p)) for p in args.paths]
    if args.json:
        out = [{"path": p, "fid": d["fid"], "lmv_stripe_count": 0, "lmv_stripe_offset": d["mdt"],
                "lmv_hash_type": "none", "mdt_count": d.get("mdt_count", 1)} for p, d in states]
        sys.stdout.write(output.to_json(out[0] if len(out) == 1 else out))
        return 0
    for p, d in states:
        if len(states) > 1:
            print(p)
        print(f"lmv_stripe_count: 0 lmv_stripe_offset: {d['mdt']} lmv_hash_type: none")
    return 0


def _mode(text: str) -> int:
    try:
        v = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None
    if not 0 <= v <= 0o7777:
        raise argparse.ArgumentTypeError(f"mode {text} out of range")
    return v


def _index(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an MDT index: {text!r}") from None
    if not 0 <= v <= 255:
        raise argparse.ArgumentTypeError(f"MDT index {v} out of range 0..255")
    return v


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("mkdir", parents=parents, help="make a directory on a chosen MDT",
                       description="Make each DIR on a lustrepy mount with its inode and entries on MDT IDX "
                                   "(a remote directory); its name stays with its parent's MDT. Needs the "
                                   "admin certificate; the directory is made with the caller's uid and groups.")
    m.add_argument("-i", "--mdt-index", dest="mdt_index", type=_index, required=True, metavar="IDX",
                   help="the MDT to hold the directory")
    m.add_argument("-m", "--mode", type=_mode, default=0o755, help="permission bits, octal (default 755)")
    m.add_argument("paths", nargs="+", metavar="DIR")
    m.set_defaults(func=run_mkdir)
    g = sub.add_parser("getdirstripe", parents=parents, help="show which MDT holds a directory",
                       description="Show, for each directory DIR on a lustrepy mount, the MDT that holds its "
                                   "entries (lmv_stripe_offset) and its FID.")
    g.add_argument("paths", nargs="+", metavar="DIR")
    g.set_defaults(func=run_getdirstripe)
