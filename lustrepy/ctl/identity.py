"""Which certificate lfsctl presents: the admin certificate it is given or finds by itself.

In order: `--plaintext` (none), `--certs DIR` (DIR/ca.crt, DIR/admin.crt,
DIR/admin.key), $LUSTREPY_CERTS, the local cluster's DIR/certs (`--root`,
$LUSTREPY_ROOT, /tmp/lustrepy), /etc/lustrepy/certs. A directory is taken only
when it holds all three files and belongs to this user with no one else
allowed to write it. With none found lfsctl speaks plaintext, which a
secure cluster refuses: its error then says where certificates were looked for.
"""

from __future__ import annotations

import argparse
import os

from lustrepy.common.errors import LpError, QuietError
from lustrepy.ctl import clustercerts, target
from lustrepy.rpc import tls


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--certs", metavar="DIR",
                   help="admin certificate directory (ca.crt, admin.crt, admin.key; default: "
                        f"${tls.ENV_CERTS}, the local cluster's certs, {tls.ETC_CERTS})")
    p.add_argument("--plaintext", dest="no_tls", action="store_true",
                   help="speak without TLS (to a cluster started with --plaintext)")


def places(args: argparse.Namespace) -> list[str | None]:
    root = getattr(args, "root", None) or target.default_root()
    return [args.certs, os.environ.get(tls.ENV_CERTS), str(clustercerts.certs_dir(root)), tls.ETC_CERTS]


def use(args: argparse.Namespace) -> None:
    """Set this process's identity from the arguments and the places above."""
    if args.no_tls:
        tls.use(None)
        return
    if args.certs and not tls.search(clustercerts.ADMIN, [args.certs]):
        raise QuietError(f"--certs {args.certs}: no ca.crt, admin.crt and admin.key there "
                         "(or the directory is writable by others)")
    found = tls.search(clustercerts.ADMIN, places(args))
    try:
        tls.use(tls.Identity.load(found) if found else None)
    except LpError as e:
        raise QuietError(e.message) from None
