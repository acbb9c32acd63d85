"""`lfsctl get-param PATTERN...` and `lfsctl set-param NAME=VALUE...`: server tunables in the `lctl get_param` shape.

Names are scoped by the server that owns them: `mds.<name>` on the MDS,
`ost.<index>.<name>` on each OSS (patterns are shell globs over the full
names). In a file system of several MDTs every MDS names its tunables
`mds.<name>`: they are shown as `mds.<index>.<name>`, and a NAME or PATTERN
`mds.<name>` means that tunable on every MDT, `mds.<index>.<name>` on that
MDT only. MDT0's MDS is found as for every lfsctl command; the other MDSs are
the MDTs it lists (Mds.Fld), the OSSes the OSTs it knows, each reached at the
address it announced. A server is asked only when a pattern can match its scope. set-param first asks the servers
which names the arguments mean, refuses before changing anything when a name
matches no tunable or one that is fixed while the server runs, then sends
each server its settings in one call (a server checks all of them before it
applies any). Output: `name=value` lines, or --json. Exit codes: 0 done, 1
any server refused or could not be reached (what the others answered is
still printed), 2 bad usage. Reaches servers over RPC only.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from lustrepy.common.errors import LpError, QuietError, from_wire
from lustrepy.common.params import ParamValue, split_setting
from lustrepy.ctl import fldq, output, query, target
from lustrepy.ctl.servers import MDT, of_status
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc, oss_pb2_grpc

TIMEOUT_S = 5.0
_GLOB = set("*?[")
_MDT_NAME = re.compile(r"^mds\.(\d+)\.")      # mds.<index>. : one MDT of several


@dataclass(frozen=True, slots=True)
class Server:
    scope: str          # "mds" or "ost.<index>"
    address: str
    is_mds: bool
    mdt: int | None = None      # an MDT of a file system of several (its names are shown as mds.<mdt>.NAME)


class ServerError(Exception):
    """One server could not answer or refused: the message is one line naming it and the key."""


def _hdr() -> cpb.ReqHdr:
    return cpb.ReqHdr(xid=1, uid=os.getuid(), gid=os.getgid())


def _rpc(server: Server, method: str, request: Any, timeout: float) -> list[ParamValue]:
    channel = make_channel(server.address)
    try:
        stub = mds_pb2_grpc.MdsStub(channel) if server.is_mds else oss_pb2_grpc.OssStub(channel)
        try:
            rep = call(getattr(stub, method), request, timeout=timeout)
        except LpError as e:
            raise ServerError(f"{server.scope} at {server.address}: cannot reach: "
                              f"{query.unreachable_reason(e, timeout)}") from None
    finally:
        channel.close()
    err = from_wire(rep.hdr.errno)
    if err:
        if server.mdt is not None:          # one of several MDTs: say which refused
            raise ServerError(f"{server.scope}.{server.mdt}: {rep.hdr.message or os.strerror(err)}")
        raise ServerError(rep.hdr.message or f"{server.scope}: {os.strerror(err)}")
    return [ParamValue(name=p.name, value=p.value, kind=p.kind, settable=p.settable, default=p.default,
                       help=p.help) for p in rep.params]


def get(server: Server, patterns: list[str], timeout: float = TIMEOUT_S) -> list[ParamValue]:
    return _rpc(server, "GetParam", mpb.ParamGetRequest(hdr=_hdr(), patterns=patterns), timeout)


def put(server: Server, settings: list[tuple[str, str | None]], timeout: float = TIMEOUT_S) -> list[ParamValue]:
    req = mpb.ParamSetRequest(hdr=_hdr(), settings=[
        mpb.ParamSetting(name=n, value=v or "", reset=v is None) for n, v in settings])
    return _rpc(server, "SetParam", req, timeout)


def servers(mds_address: str) -> list[Server]:
    """Every MDT's MDS, then every OST MDT0 knows (by index)."""
    st = query.fs_status(mds_address)
    found = of_status(mds_address, st, fldq.mdt_list(mds_address))
    several = sum(s.kind == MDT for s in found) > 1
    return [Server("mds", s.address, True, s.index if several else None) for s in found
            if s.kind == MDT and s.address] + [
        Server(f"ost.{o.index}", o.address, False) for o in st.osts if o.address]


def shown(server: Server, name: str) -> str:
    """A tunable's name as lfsctl shows it: as the server says it, but for an MDT of several."""
    if server.mdt is None:
        return name
    return f"{server.scope}.{server.mdt}.{name.removeprefix(server.scope + '.')}"


def matches(server: Server, name: str, pattern: str) -> bool:
    """Does `pattern` mean the tunable `name` (as the server says it) on this server?"""
    return fnmatch.fnmatchcase(name, pattern) or (
        server.mdt is not None and fnmatch.fnmatchcase(shown(server, name), pattern))


def asks(server: Server, pattern: str) -> bool:
    """Could `pattern` match a tunable of this server (by its scope, and for an MDT of several, its index)?"""
    if not may_match(server.scope, pattern):
        return False
    if server.mdt is None:
        return True
    m = _MDT_NAME.match(literal_prefix(pattern))
    return m is None or int(m.group(1)) == server.mdt


def asked_patterns(server: Server, patterns: list[str]) -> list[str]:
    """What to ask a server for: the patterns for its scope (an MDT of several: all its tunables,
    matched here against both forms of their names)."""
    mine = [p for p in patterns if asks(server, p)]
    return ["*"] if mine and server.mdt is not None else mine


def literal_prefix(pattern: str) -> str:
    for i, ch in enumerate(pattern):
        if ch in _GLOB:
            return pattern[:i]
    return pattern


def may_match(scope: str, pattern: str) -> bool:
    """Could `pattern` match a name in `scope`? (Decided from its part before the first glob character.)"""
    lit, pre = literal_prefix(pattern), scope + "."
    return pre.startswith(lit) or lit.startswith(pre)


def _fan_out(targets: list[Server], fn: Callable[[Server], list[ParamValue]]
             ) -> list[tuple[Server, list[ParamValue] | None, str]]:
    """fn on each server at once; (server, result or None, error message) in the servers' order."""
    def one(s: Server) -> tuple[Server, list[ParamValue] | None, str]:
        try:
            return s, fn(s), ""
        except ServerError as e:
            return s, None, str(e)
    if len(targets) <= 1:
        return [one(s) for s in targets]
    with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
        return list(pool.map(one, targets))


def _say(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"lfsctl: {message}\n")
    sys.stderr.flush()


def _shown(results: list[tuple[Server, list[ParamValue] | None, str]], patterns: list[str]) -> list[ParamValue]:
    """The values that answer `patterns` (every one when empty), with their names as shown. A
    server that was asked for the patterns themselves (all but an MDT of several) answered just those."""
    return [replace(v, name=shown(s, v.name)) for s, vals, _ in results for v in vals or ()
            if not patterns or s.mdt is None or any(matches(s, v.name, p) for p in patterns)]


def _print(values: list[ParamValue], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(output.to_json([asdict(v) for v in values]))
    else:
        sys.stdout.write("".join(f"{v.name}={v.value}\n" for v in values))


# ---- get-param ----------------------------------------------------------------------------

def run_get(args: argparse.Namespace) -> int:
    patterns = args.patterns or ["*"]
    t = target.resolve(mgs=args.mgs, root=args.root)
    asked = [s for s in servers(t.address) if any(asks(s, p) for p in patterns)]
    results = _fan_out(asked, lambda s: get(s, asked_patterns(s, patterns)))
    values = _shown(results, patterns)
    failed = False
    for _, _, err in results:
        if err:
            _say(err)
            failed = True
    for p in patterns:
        if not any(matches(s, v.name, p) for s, vals, _ in results for v in vals or ()) and not failed:
            _say(f"{p}: no such tunable")
            failed = True
    _print(values, args.json)
    return 1 if failed else 0


# ---- set-param ----------------------------------------------------------------------------

def parse_settings(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    if args.reset:
        return [(a, None) for a in args.settings]
    try:
        return [split_setting(a) for a in args.settings]
    except ValueError as e:
        raise QuietError(f"set-param: {e} (see lfsctl set-param --help)", exitcode=2) from None


def run_set(args: argparse.Namespace) -> int:
    settings = parse_settings(args)
    t = target.resolve(mgs=args.mgs, root=args.root)
    names = [n for n, _ in settings]
    asked = [s for s in servers(t.address) if any(asks(s, n) for n in names)]
    if not asked:
        raise QuietError(f"{settings[0][0]}: no such tunable (names start with mds. or ost.INDEX.)")
    known = _fan_out(asked, lambda s: get(s, asked_patterns(s, names)))
    plan: dict[Server, list[tuple[str, str | None]]] = {}
    failed = False
    for s, vals, err in known:
        if err:
            _say(err)
            failed = True
            continue
        for name, value in settings:
            for v in vals or ():
                if matches(s, v.name, name):
                    if not v.settable:
                        raise QuietError(f"{shown(s, v.name)}: fixed while the server runs "
                                         "(set it in the configuration file and restart)")
                    plan.setdefault(s, []).append((v.name, value))
    for name in names:
        if not any(matches(s, n, name) for s, todo in plan.items() for n, _ in todo) and not failed:
            raise QuietError(f"{name}: no such tunable")
    done = _fan_out(list(plan), lambda s: put(s, plan[s]))
    values = _shown(done, [])
    for _, _, err in done:
        if err:
            _say(err)
            failed = True
    _print(values, args.json)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("get-param", parents=parents, help="show server tunables as name=value lines",
                       description="Show the tunables of the MDS and of every OST it knows whose names match "
                                   "a PATTERN (shell globs: mds.*, ost.*.callback_timeout, *.log.*). Names: "
                                   "mds.NAME on the MDS, ost.INDEX.NAME on each OSS; with several MDTs, "
                                   "mds.INDEX.NAME on each MDS, and mds.NAME means it on every MDT. With "
                                   "--json, each tunable's type, default, whether it can be set at run time, "
                                   "and help.")
    g.add_argument("patterns", nargs="*", metavar="PATTERN", help="glob over full names (default: all)")
    g.set_defaults(func=run_get)
    s = sub.add_parser("set-param", parents=parents, help="change server tunables at run time (kept over restarts)",
                       description="Set each NAME (a full name or a glob, e.g. ost.*.callback_timeout) to VALUE "
                                   "at once in the running server that owns it; the server keeps the setting "
                                   "across restarts, over its configuration file and command line, until "
                                   "reset with --reset NAME. With several MDTs, mds.NAME is set on every "
                                   "MDT, mds.INDEX.NAME on that one. Nothing is changed when a name matches no "
                                   "tunable or one fixed while the server runs; each server checks all its "
                                   "values before it applies any.")
    s.add_argument("--reset", action="store_true",
                   help="the arguments are NAMEs: forget their run-time settings (back to the configured value)")
    s.add_argument("settings", nargs="+", metavar="NAME=VALUE")
    s.set_defaults(func=run_set)
