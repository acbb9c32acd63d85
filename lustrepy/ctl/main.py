"""lfsctl: the entry point. Builds the command line from the command-group modules and runs one command.

Exit codes scripts can trust: 0 success, 1 error, 2 bad usage, 130
interrupted. A QuietError or LpError prints one line on stderr, never a
traceback. This module holds no command logic of its own.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

# lfsctl says what went wrong in one line of its own: gRPC's core keeps quiet (before it is imported)
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from lustrepy import __version__
from lustrepy.common import logs
from lustrepy.common.errors import LpError, QuietError
from lustrepy.ctl import (barrier, ca, clients, cluster, df, dirstripe, evict, find, identity, lfsck, locks, mds,
                          mirror, mkfs, osts, params, scrub, stats, stripe, target, wbc)

log = logging.getLogger(__name__)

PROG = "lfsctl"
GROUPS = (cluster, ca, df, osts, mds, stats, stripe, dirstripe, mirror, wbc, locks, clients, evict, find, params, mkfs,
          barrier, lfsck, scrub)


def build_parser() -> argparse.ArgumentParser:
    json_opt = argparse.ArgumentParser(add_help=False)
    json_opt.add_argument("--json", action="store_true", help="print the result as JSON")
    tgt = argparse.ArgumentParser(add_help=False)
    tgt.add_argument("--mgs", metavar="HOST:PORT",
                     help=f"the MDS to ask (default: ${target.ENV_MGS}, --root, PATH's mount, "
                          f"or the running cluster in ${target.ENV_ROOT}, unset: {target.DEFAULT_ROOT})")
    tgt.add_argument("--root", metavar="DIR", help="ask the MDS of the local cluster recorded in DIR")

    p = argparse.ArgumentParser(prog=PROG, description="Administer a lustrepy file system.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    p.add_argument("--log-level", default="WARNING", metavar="LEVEL",
                   help="logging level on stderr (default %(default)s; INFO shows what the launcher does)")
    identity.add_arguments(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        # cluster, stripe and wbc find no MDS: they act on a local directory or a mounted path (as does
        # mirror create; the other mirror actions find it as every command does)
        group.register(sub, [json_opt] if group in (cluster, ca, stripe, wbc) else [json_opt, tgt])
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    try:
        logs.setup(args.log_level, prog=PROG)
    except ValueError:
        parser.error(f"unknown log level {args.log_level!r}")
    try:
        identity.use(args)
        return int(args.func(args))
    except QuietError as e:
        _say(str(e))
        return e.exitcode
    except LpError as e:
        _say(str(e))
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:
        return 1


def _say(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
