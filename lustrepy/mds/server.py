"""`lustrepy-mds`: the metadata server daemon (also the management service).

Opens (or, given --fsname on an empty directory, formats) the MDT database,
serves the Mds and Ldlm services on one gRPC server, writes --port-file once
serving, and stops cleanly on SIGTERM/SIGINT. Bad input ends in one line on
stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lustrepy.common import daemon, logs
from lustrepy.common.errors import LpError, QuietError
from lustrepy.mds.mdt import MdsConfig, Mdt
from lustrepy.mds.service import MdsService
from lustrepy.mds.store import Store
from lustrepy.mds.wbc import ContentionPolicy
from lustrepy.rpc.channel import bind, make_server
from lustrepy.rpc.v1 import ldlm_pb2_grpc, mds_pb2_grpc

log = logging.getLogger("lustrepy.mds")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="lustrepy-mds", description="lustrepy metadata server")
    ap.add_argument("--dir", required=True, help="MDT data directory (formatted on first start with --fsname)")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to serve on (port 0 = any free port)")
    ap.add_argument("--fsname", help="file system name; formats an empty --dir, must match a formatted one")
    ap.add_argument("--port-file", help="write the port here once serving")
    ap.add_argument("--heartbeat-interval", type=float, default=1.0, help="OSS heartbeat period, seconds")
    ap.add_argument("--ost-timeout", type=float, default=5.0, help="an OST without heartbeat this long is inactive")
    ap.add_argument("--callback-timeout", type=float, default=10.0,
                    help="a lock holder not cancelling within this after a blocking callback is evicted")
    ap.add_argument("--commit-interval", type=float, default=1.0, help="WAL sync period, seconds")
    ap.add_argument("--contention-threshold", type=int, default=16,
                    help="conflicts on a directory within the window that stop WBC grants there")
    ap.add_argument("--contention-window", type=float, default=4.0, help="contention counting window, seconds")
    ap.add_argument("--contention-hold", type=float, default=30.0,
                    help="seconds without conflicts before a contended directory gets WBC grants again")
    ap.add_argument("--log-level", default="INFO")
    return ap.parse_args(argv)


def run(ns: argparse.Namespace) -> int:
    d = Path(ns.dir)
    try:
        host, port = daemon.split_hostport(ns.listen)
    except ValueError as e:
        raise QuietError(f"--listen: {e}") from None
    for name in ("heartbeat_interval", "ost_timeout", "callback_timeout", "commit_interval"):
        if getattr(ns, name) <= 0:
            raise QuietError(f"--{name.replace('_', '-')} must be positive")
    try:
        contention = ContentionPolicy(ns.contention_threshold, ns.contention_window, ns.contention_hold)
    except ValueError as e:
        raise QuietError(f"--contention-*: {e}") from None
    daemon.check_listen(host, port)
    if not (d / "mdt.db").exists():
        if not ns.fsname:
            raise QuietError(f"{d} holds no MDT; give --fsname NAME to format it")
        d.mkdir(parents=True, exist_ok=True)
        uuid = Store.format(d, ns.fsname)
        log.info("formatted %s as %s", d, uuid)
    cfg = MdsConfig(dir=d, fsname=ns.fsname, heartbeat_interval=ns.heartbeat_interval,
                    ost_timeout=ns.ost_timeout, callback_timeout=ns.callback_timeout,
                    commit_interval=ns.commit_interval, contention=contention)
    mdt = Mdt(cfg)
    server = make_server(max_workers=256)
    started = False
    try:
        mds_pb2_grpc.add_MdsServicer_to_server(MdsService(mdt), server)
        ldlm_pb2_grpc.add_LdlmServicer_to_server(mdt.lockd.servicer(), server)
        try:
            port = bind(server, ns.listen)
        except LpError as e:
            raise QuietError(e.message) from None
        address = f"{host}:{port}"
        mdt.address = address
        mdt.start()
        started = True
        server.start()
        daemon.write_port_file(ns.port_file, port)
        log.info("%s serving %s at %s", mdt.uuid, mdt.fsname, address)
        daemon.notify_ready(f"serving {mdt.fsname} at {address}")
        daemon.wait_for_stop_signal()
        log.info("stopping")
    finally:
        server.stop(grace=2).wait(5)
        if started:
            mdt.stop()
        else:
            mdt.store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    logs.setup(ns.log_level, prog="lustrepy-mds")
    daemon.tune_interpreter()
    try:
        return run(ns)
    except QuietError as e:
        print(f"lustrepy-mds: {e}", file=sys.stderr)
        return e.exitcode
    except LpError as e:
        print(f"lustrepy-mds: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
