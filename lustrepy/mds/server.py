"""`lustrepy-mds`: the metadata server daemon (also the management service).

Reads its settings from --config FILE (TOML, keys as in mds/params.py) and
the command line, which wins. Opens (or, given fsname on an empty directory,
formats) the MDT database, serves the Mds and Ldlm services on one gRPC
server with the tunables of mds/params.py (run-time settings kept in the MDT
applied over the configuration), writes --port-file once serving, and stops
cleanly on SIGTERM/SIGINT. Bad input ends in one line on stderr and exit
code 1 (2 for usage), never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from pathlib import Path
from typing import Any

from lustrepy.common import config, daemon, logs
from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.fld import mdt_name
from lustrepy.ldlm.service import LdlmService
from lustrepy.mds import params as mds_params
from lustrepy.mds import replay_apply
from lustrepy.mds.mdt import MdsConfig, Mdt
from lustrepy.mds.service import MdsService
from lustrepy.mds.store import Store
from lustrepy.mds.wbc import ContentionPolicy
from lustrepy.rpc.channel import bind, make_server
from lustrepy.rpc import tls
from lustrepy.rpc.lane import LaneServer
from lustrepy.rpc.v1 import ldlm_pb2_grpc, mds_pb2, mds_pb2_grpc

log = logging.getLogger("lustrepy.mds")

PROG = "lustrepy-mds"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = daemon.ArgParser(prog=PROG, description="lustrepy metadata server",
                 epilog="Options given here override the configuration file; values set at run time "
                        "with `lfsctl set-param` override both until reset.")
    ap.add_argument("--config", metavar="FILE", help="TOML configuration file (example: systemd/etc/lustrepy/mds.toml)")
    ap.add_argument("--dir", help="MDT data directory (formatted on first start with --fsname)")
    ap.add_argument("--listen", help="HOST:PORT to serve on (port 0 = any free port; default 127.0.0.1:0)")
    ap.add_argument("--fsname", help="file system name; formats an empty --dir, must match a formatted one")
    ap.add_argument("--index", help="this MDT's index (default 0: MDT0, which holds the root; 1..: more MDTs)")
    ap.add_argument("--mdt0", metavar="HOST:PORT", help="MDT0's MDS, where MDT1.. register")
    ap.add_argument("--dne-wait", help="seconds a request across MDTs waits for the other MDT (default 30)")
    ap.add_argument("--port-file", help="write the port here once serving")
    ap.add_argument("--no-lane", dest="lane", action="store_false", default=None,
                    help="serve clients on gRPC only, without the request lane")
    ap.add_argument("--lane-port", help="the request lane's port on the listen host (default 0: any free port)")
    ap.add_argument("--heartbeat-interval", help="OSS heartbeat period, seconds (default 1)")
    ap.add_argument("--ost-timeout", help="an OST without heartbeat this long is inactive (default 5)")
    ap.add_argument("--callback-timeout",
                    help="a lock holder not cancelling within this after a blocking callback is evicted (default 10)")
    ap.add_argument("--ost-reserved",
                    help="an OST with less free space than this (bytes, or with K/M/G) gets no new objects "
                         "while others have more (default 64M)")
    ap.add_argument("--commit-interval", help="WAL sync period, seconds (default 1)")
    ap.add_argument("--reserve",
                    help="disk space (bytes, or with K/M/G) held back so that a full disk still lets opens, closes "
                         "and unlinks through (default 16M; 0: none)")
    ap.add_argument("--start-check", choices=("quick", "full", "none"),
                    help="check the database at start: quick (PRAGMA quick_check, the default), full "
                         "(integrity_check) or none")
    ap.add_argument("--recovery-window",
                    help="seconds the clients known at a restart get to come back and replay (default 60)")
    ap.add_argument("--contention-threshold",
                    help="conflicts on a directory within the window that stop WBC grants there (default 16)")
    ap.add_argument("--contention-window", help="contention counting window, seconds (default 4)")
    ap.add_argument("--contention-hold",
                    help="seconds without conflicts before a contended directory gets WBC grants again (default 30)")
    ap.add_argument("--log-level", help="the daemon's log level (default INFO)")
    tls.arguments(ap)
    ap.add_argument("--format-only", action="store_true",
                    help="format the empty --dir for --fsname, print its identity as JSON and exit "
                         "(lfsctl mkfs runs this)")
    return ap.parse_args(argv)


_CLI_NAMES = {"contention_threshold": "wbc.contention_threshold", "contention_window": "wbc.contention_window",
              "contention_hold": "wbc.contention_hold", "log_level": "log.level"}


def settings(ns: argparse.Namespace) -> dict[str, Any]:
    """Every option and tunable: command line over configuration file over default."""
    cli = {_CLI_NAMES.get(k, k): v for k, v in vars(ns).items() if k not in ("config", "format_only")}
    values = config.resolve(mds_params.OPTIONS, config.load(ns.config, mds_params.OPTIONS), cli)
    if not values["dir"]:
        raise QuietError("no MDT directory: give --dir DIR or dir in the configuration file", exitcode=2)
    return values


def format_dir(values: dict[str, Any]) -> int:
    """--format-only: format an empty MDT directory and print its identity."""
    d = Path(values["dir"])
    if not values["fsname"]:
        raise QuietError("--format-only needs --fsname", exitcode=2)
    uuid = Store.format(d, values["fsname"], index=values["index"])
    print(json.dumps({"role": "mds", "dir": str(d), "fsname": values["fsname"], "uuid": uuid,
                      "index": values["index"]}))
    return 0


def run(ns: argparse.Namespace, values: dict[str, Any]) -> int:
    d = Path(values["dir"])
    listen = values["listen"]
    try:
        host, port = daemon.split_hostport(listen)
    except ValueError as e:
        raise QuietError(f"listen: {e}") from None
    try:
        contention = ContentionPolicy(values["wbc.contention_threshold"], values["wbc.contention_window"],
                                      values["wbc.contention_hold"])
    except ValueError as e:
        raise QuietError(f"wbc.contention_*: {e}") from None
    daemon.check_listen(host, port)
    fsname = values["fsname"]
    if values["index"] and not values["mdt0"]:
        raise QuietError(f"MDT {values['index']} needs --mdt0 HOST:PORT (MDT0's MDS) to register with", exitcode=2)
    if not (d / "mdt.db").exists():
        if not fsname:
            raise QuietError(f"{d} holds no MDT; format it with `lfsctl mkfs --mds --fsname NAME {d}` "
                             "or give --fsname NAME")
        d.mkdir(parents=True, exist_ok=True)
        uuid = Store.format(d, fsname, index=values["index"])
        log.info("formatted %s as %s", d, uuid)
    cfg = MdsConfig(dir=d, fsname=fsname, contention=contention, resync_delay=values["mirror.resync_delay"],
                    resync_bandwidth=values["mirror.resync_bandwidth"], mdt0=values["mdt0"],
                    dne_wait=values["dne_wait"],
                    **{f: values[f] for f in ("heartbeat_interval", "ost_timeout", "callback_timeout",
                                              "commit_interval", "precreate_batch", "precreate_low", "ost_reserved",
                                              "pool_wait", "recovery_window", "start_check", "reserve")})
    mdt = Mdt(cfg)
    if mdt.index != values["index"]:
        mdt.store.close()
        raise QuietError(f"{d} holds MDT {mdt.index} ({mdt.uuid}), not MDT {values['index']}")
    server = make_server(max_workers=256)
    started = False
    try:
        reg = mds_params.registry(mdt, values)
        reg.apply_saved()
        service = MdsService(mdt)
        service.params = reg
        mdt.replay_one = functools.partial(replay_apply.apply, mdt, service.replay_handlers())
        mds_pb2_grpc.add_MdsServicer_to_server(service, server)
        ldlm_pb2_grpc.add_LdlmServicer_to_server(LdlmService(mdt.lockd, service.stats), server)
        try:
            port = bind(server, listen)
        except LpError as e:
            raise QuietError(e.message) from None
        address = f"{host}:{port}"
        mdt.address = mdt.mdts.address = address
        if values["lane"]:
            lane = LaneServer(mdt_name(mdt.fsname, mdt.index), mds_pb2.DESCRIPTOR.services_by_name["Mds"],
                              service.lane_handlers())
            try:
                lane.start(host, values["lane_port"])
            except LpError as e:
                raise QuietError(e.message) from None
            mdt.lane = lane
        mdt.start()
        started = True
        server.start()
        wait_for_stop = daemon.catch_stop_signals()
        daemon.write_port_file(values["port_file"], port)
        log.info("%s serving %s at %s", mdt.uuid, mdt.fsname, address)
        daemon.notify_ready(f"serving {mdt.fsname} at {address}")
        wait_for_stop()
        log.info("stopping")
    finally:
        server.stop(grace=2).wait(5)
        if mdt.lane is not None:
            mdt.lane.stop()
        if started:
            mdt.stop()
        else:
            mdt.store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        ns = parse_args(argv)
        values = settings(ns)
        if ns.format_only:
            return format_dir(values)
        logs.setup(values["log.level"], prog=PROG,
                   levels={k.removeprefix("log."): v for k, v in values.items()
                           if k.startswith("log.") and k != "log.level" and v != "NOTSET"})
        daemon.tune_interpreter()
        tls.use_values(values, "mds")
        return run(ns, values)
    except QuietError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exitcode
    except LpError as e:
        print(f"{PROG}: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
