"""`lfsctl ca init|issue|show`: the cluster's certificate authority and the certificates of its nodes.

`lfsctl ca init DIR` makes DIR/ca.key and DIR/ca.crt; `lfsctl ca issue
--role mds|oss|client|admin --name NAME [--host H ...] DIR` signs
DIR/NAME.crt with a new DIR/NAME.key; `lfsctl ca show FILE` says what a
certificate states. Keys are made by the `cryptography` package (common.certs).
Copy ca.crt and a node's NAME.crt and NAME.key to that node only; ca.key
stays with the administrator.
"""

from __future__ import annotations

import argparse
import errno
import sys

from lustrepy.common import certs
from lustrepy.common.errors import LpError, QuietError
from lustrepy.ctl import output


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ca", help="the cluster's certificate authority: init, issue, show",
                       description="Make the cluster CA and sign node certificates.")
    csub = p.add_subparsers(dest="ca_command", metavar="ACTION", required=True)
    i = csub.add_parser("init", parents=parents, help="make a new CA in DIR (ca.crt, ca.key)")
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--name", default="lustrepy", help="the CA's name (default %(default)s)")
    i.add_argument("--force", action="store_true", help="replace an existing CA (every certificate must be issued again)")
    i.set_defaults(func=run_init)
    s = csub.add_parser("issue", parents=parents, help="sign a certificate for a node: DIR/NAME.crt, DIR/NAME.key")
    s.add_argument("dir", metavar="DIR", help="the CA's directory")
    s.add_argument("--role", required=True, choices=certs.ROLES, help="what the node may do")
    s.add_argument("--name", required=True, help="the node's name (a client's id starts with it)")
    s.add_argument("--host", action="append", default=[], metavar="HOST",
                   help="a host name or address the node serves on (repeatable; servers are also "
                        "checked as <role>.lustrepy whatever address is dialled)")
    s.add_argument("--days", type=int, default=certs.CERT_DAYS, help="validity (default %(default)s days)")
    s.add_argument("--force", action="store_true", help="replace an existing certificate and key of that name")
    s.set_defaults(func=run_issue)
    w = csub.add_parser("show", parents=parents, help="what a certificate states")
    w.add_argument("file", metavar="FILE")
    w.set_defaults(func=run_show)


def run_init(args: argparse.Namespace) -> int:
    path = certs.init_ca(args.dir, args.name, force=args.force)
    _out(args, {"ca": str(path)}, f"CA made: {path} (keep {args.dir}/ca.key to the administrator)\n")
    return 0


def run_issue(args: argparse.Namespace) -> int:
    p = certs.issue(args.dir, args.role, args.name, hosts=args.host, days=args.days, force=args.force)
    _out(args, {"role": args.role, "name": args.name, "cert": str(p.cert), "key": str(p.key), "ca": str(p.ca)},
         f"{args.role} {args.name}: {p.cert} and {p.key} (with {p.ca})\n")
    return 0


def run_show(args: argparse.Namespace) -> int:
    try:
        d = certs.describe(args.file)
    except OSError as e:
        raise QuietError(f"cannot read {args.file}: {e.strerror}") from None
    except ValueError as e:
        raise LpError(errno.EINVAL, f"{args.file} is not a PEM certificate: {e}") from None
    _out(args, d, "".join(f"{k}: {v}\n" for k, v in d.items()))
    return 0


def _out(args: argparse.Namespace, d: dict[str, str], text: str) -> None:
    sys.stdout.write(output.to_json(d) if args.json else text)
