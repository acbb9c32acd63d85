"""`lfsctl df`: space and inode usage per MDT and OST, in the shape of Lustre's `lfs df`.

Asks MDT0's MDS (Mds.Statfs: its MDT and every OST; Mds.Fld: the other MDTs)
and each other active MDT for its own inodes and space (Mds.Statfs); never
contacts an OSS and never reads the mount. An MDT that does not answer shows
as inactive, with one line on stderr, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lustrepy.ctl import mdtq, multi, output, query, servers, target

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("df", parents=parents, add_help=False,
                       help="space and inode usage per MDT and OST",
                       description="Space (or, with -i, inode) usage of every MDT and OST, then the file "
                                   "system's totals over active OSTs, as `lfs df` prints them.")
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("-h", "--human-readable", dest="human", action="store_true",
                   help="print sizes in powers of 1024 (K, M, G, ...)")
    p.add_argument("-i", "--inodes", action="store_true", help="show inode usage instead of space")
    p.add_argument("path", nargs="?", metavar="PATH", help="a path on a lustrepy mount (selects the file system)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t = target.resolve(mgs=args.mgs, root=args.root, path=args.path)
    st = query.fs_status(t.address)
    st, failures = mdtq.mdt_status(st, servers.mdt_servers(t.address, st.fsname))
    mounted_on = t.mount or f"{t.address}:/{st.fsname}"
    if args.json:
        sys.stdout.write(output.to_json(output.df_json(st, f"{t.address}:/{st.fsname}", t.mount)))
    else:
        sys.stdout.write(output.render_df(st, mounted_on, inodes=args.inodes, human=args.human))
    multi.say_failures(failures)
    return 1 if failures else 0
