"""`lustrepy-oss`: the object storage server daemon (one per OST).

Opens (or formats, once) the OST directory, serves the Oss and Ldlm services
on one gRPC server, writes the port it listens on to --port-file, then
announces itself to the MDS every --heartbeat seconds until SIGTERM/SIGINT.
Bad input ends it with one line on stderr and exit code 1 (2 for usage
errors); it never shows a traceback for those. Holds no object logic itself.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import threading
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

import grpc

from lustrepy.common import daemon, logs
from lustrepy.common.errors import LpError, QuietError
from lustrepy.ldlm.lockd import LockServer
from lustrepy.oss.announce import Announcer
from lustrepy.oss.identity import load_or_format
from lustrepy.oss.ofd import Ofd
from lustrepy.oss.osd import Osd
from lustrepy.oss.service import OssService
from lustrepy.rpc.channel import bind, make_server
from lustrepy.rpc.v1 import ldlm_pb2_grpc, oss_pb2_grpc

log = logging.getLogger(__name__)

PROG = "lustrepy-oss"
STOP_GRACE = 3.0
RPC_THREADS = 256                  # callback streams hold a thread each for a client's lifetime
_WILDCARD = {"0.0.0.0", "::", "[::]", ""}
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True, slots=True)
class OssConfig:
    dir: str
    listen_host: str
    listen_port: int
    mds: str
    index: int | None
    fsname: str | None
    capacity: int | None
    port_file: str | None
    heartbeat: float
    callback_timeout: float
    advertise: str                  # the host announced to the MDS
    log_level: str

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise QuietError(f"{message} (see {PROG} --help)", exitcode=2)


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise QuietError(f"{what} must be HOST:PORT, not {text!r}")
    return host, int(port)


def _size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = _SUFFIX.get(t[-1:], None) if t and not t[-1].isdigit() else 1
    num = t[:-1] if t and not t[-1].isdigit() else t
    if mult is None or not num.isdigit() or int(num) * mult <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (bytes, or with K/M/G/T)")
    return int(num) * mult


def _index(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid OST index {text!r}") from None


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0 < v < 1e6:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}")
    return v


def parse_args(argv: list[str] | None) -> OssConfig:
    p = _Parser(prog=PROG, description="lustrepy object storage server (one OST)")
    p.add_argument("--dir", required=True, help="OST data directory (formatted on first start)")
    p.add_argument("--listen", required=True, metavar="HOST:PORT", help="address to serve on (port 0 = any)")
    p.add_argument("--mds", required=True, metavar="HOST:PORT", help="the MDS to announce to")
    p.add_argument("--index", type=_index, help="OST index (needed to format)")
    p.add_argument("--fsname", help="file system name (needed to format)")
    p.add_argument("--capacity", type=_size, metavar="BYTES", help="cap the space this OST reports and accepts")
    p.add_argument("--port-file", metavar="FILE", help="write the port actually listened on here")
    p.add_argument("--heartbeat", type=_seconds, default=1.0, metavar="S", help="seconds between announces")
    p.add_argument("--callback-timeout", type=_seconds, default=10.0, metavar="S",
                   help="seconds a lock holder has to answer a callback before eviction")
    p.add_argument("--advertise", metavar="HOST", help="host to announce when listening on a wildcard address")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   type=str.upper)
    a = p.parse_args(argv)
    host, port = _host_port(a.listen, "--listen")
    _host_port(a.mds, "--mds")
    return OssConfig(dir=a.dir, listen_host=host, listen_port=port, mds=a.mds, index=a.index, fsname=a.fsname,
                     capacity=a.capacity, port_file=a.port_file, heartbeat=a.heartbeat,
                     callback_timeout=a.callback_timeout, advertise=advertised_host(host, a.advertise),
                     log_level=a.log_level)


def advertised_host(listen_host: str, advertise: str | None) -> str:
    """The host the MDS and clients should dial: never a wildcard address."""
    if advertise:
        if advertise in _WILDCARD:
            raise QuietError(f"--advertise {advertise} is a wildcard address; give a host clients can reach")
        return advertise
    if listen_host in _WILDCARD:
        raise QuietError(f"--listen {listen_host or '(any)'} is a wildcard address; give --advertise HOST "
                         "to announce")
    return listen_host


@dataclass(frozen=True, slots=True)
class Serving:
    """A running gRPC server with the Oss and Ldlm services of one OST."""

    server: grpc.Server
    port: int
    lockd: LockServer
    service: OssService

    def stop(self, grace: float = STOP_GRACE) -> None:
        done = self.server.stop(grace)
        self.lockd.stop()
        done.wait(grace + 1)


def start_serving(ofd: Ofd, listen: str, *, callback_timeout: float = 10.0, boot_id: int = 0,
                  threads: int = RPC_THREADS) -> Serving:
    """Bind `listen` (port 0 = any), register Oss + Ldlm, start; LpError when it cannot bind."""
    boot_id = boot_id or secrets.randbits(63) | 1
    lockd = LockServer(ofd.ident.name, callback_timeout=callback_timeout,
                       lvb_source=lambda res: ofd.lvb(res.n1))
    server = make_server(max_workers=threads)
    service = OssService(ofd, lockd, boot_id)
    oss_pb2_grpc.add_OssServicer_to_server(service, server)
    ldlm_pb2_grpc.add_LdlmServicer_to_server(lockd.servicer(), server)
    port = bind(server, listen)
    lockd.start()
    server.start()
    return Serving(server, port, lockd, service)


def run(cfg: OssConfig) -> int:
    """Serve until a signal or a refusal by the MDS; returns the exit code."""
    osd = Osd(cfg.dir)
    ident = load_or_format(osd, cfg.fsname, cfg.index)
    try:
        ofd = Ofd(osd, ident, cfg.capacity)
    except (LpError, OSError) as e:
        raise QuietError(f"cannot open {osd.root}: {e}") from None
    daemon.check_listen(cfg.listen_host, cfg.listen_port)

    boot_id = secrets.randbits(63) | 1
    try:
        serving = start_serving(ofd, cfg.listen, callback_timeout=cfg.callback_timeout, boot_id=boot_id)
    except LpError as e:
        raise QuietError(f"cannot listen on {cfg.listen}: address in use or not local") from e
    port = serving.port
    host = f"[{cfg.advertise}]" if ":" in cfg.advertise and not cfg.advertise.startswith("[") else cfg.advertise
    address = f"{host}:{port}"

    stop = threading.Event()
    code = [0]

    def refused(reason: str) -> None:
        code[0] = 1
        stop.set()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    announcer = Announcer(cfg.mds, ident, address, boot_id, ofd.statfs, refused, interval=cfg.heartbeat)
    try:
        if cfg.port_file:
            try:
                daemon.write_port_file(cfg.port_file, port)
            except OSError as e:
                raise QuietError(f"cannot write --port-file {cfg.port_file}: {e.strerror or e}") from None
        log.info("%s serving at %s (%d objects, last id %d, capacity %s), MDS %s", ident.uuid, address,
                 ofd.object_count(), ofd.last_id, cfg.capacity if cfg.capacity is not None else "disk",
                 cfg.mds)
        announcer.start()
        daemon.notify_ready(f"{ident.uuid} serving at {address}")
        while not stop.wait(1.0):
            pass
    finally:
        announcer.stop()
        serving.stop(STOP_GRACE)
        log.info("%s stopped", ident.uuid)
    return code[0]


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_args(argv)
        logs.setup(cfg.log_level, prog=PROG)
        daemon.tune_interpreter()
        return run(cfg)
    except QuietError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exitcode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
