"""`lustrepy`: the client mount program (run directly or by mount.fuse3 for `mount -t fuse.lustrepy`).

    lustrepy HOST:PORT:/FSNAME MOUNTPOINT [-o OPTS] [-f]

This version checks the mount source, the mount point and the options, and
that the MDS serves the named file system, each with a one-line error; the
FUSE file system itself is not part of this version yet, so it then stops
with a one-line error and mounts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from lustrepy.common.errors import LpError, QuietError

# Options mount.fuse3 and mount(8) pass along, accepted and ignored here.
GENERIC_OPTS = {"rw", "ro", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "auto", "noauto", "user",
                "nouser", "users", "defaults", "_netdev", "nofail", "async", "sync", "atime", "noatime",
                "relatime", "norelatime", "strictatime", "diratime", "nodiratime"}
OWN_OPTS = {"debug", "allow_other", "default_permissions", "timeout", "client_id"}


@dataclass(frozen=True, slots=True)
class Source:
    address: str
    fsname: str


def parse_source(src: str) -> Source:
    """'HOST:PORT:/FSNAME' -> Source; QuietError naming what is wrong."""
    head, sep, fs = src.rpartition(":/")
    host, _, port = head.rpartition(":")
    if not sep or not host or not port.isdigit() or not fs or "/" in fs:
        raise QuietError(f"bad mount source {src!r}: expected HOST:PORT:/FSNAME", 2)
    return Source(f"{host}:{int(port)}", fs)


def parse_opts(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, (text or "").split(",")):
        k, _, v = item.partition("=")
        if k not in GENERIC_OPTS and k not in OWN_OPTS and not k.startswith("x-"):
            raise QuietError(f"unknown mount option {k!r}", 2)
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="lustrepy", description="mount a lustrepy file system")
    ap.add_argument("source", help="HOST:PORT:/FSNAME")
    ap.add_argument("mountpoint")
    ap.add_argument("-o", dest="opts", help="comma-separated mount options")
    ap.add_argument("-f", action="store_true", help="stay in the foreground")
    ns = ap.parse_args(argv)
    try:
        src = parse_source(ns.source)
        parse_opts(ns.opts)
        if not os.path.isdir(ns.mountpoint):
            raise QuietError(f"mount point {ns.mountpoint} is not a directory")
        from lustrepy.client.mdc import Mdc

        m = Mdc(src.address, src.fsname, timeout=5)
        try:
            m.connect()
        except LpError as e:
            raise QuietError(f"cannot mount {ns.source}: {e.message}") from None
        finally:
            m.close()
        raise QuietError("this version has no FUSE client yet: nothing mounted")
    except QuietError as e:
        print(f"lustrepy: {e}", file=sys.stderr)
        return e.exitcode


if __name__ == "__main__":
    sys.exit(main())
