"""`lustrepy-oss`: the object storage server daemon (one per OST).

Reads its settings from --config FILE (TOML, keys as in oss/params.py) and
the command line, which wins. Opens (or formats, once) the OST directory,
serves the Oss and Ldlm services (with the tunables of oss/params.py, run-time
settings kept in the OST directory applied over the configuration) on one
gRPC server, writes the port it listens on to --port-file, then announces
itself to the MDS every heartbeat_interval seconds until SIGTERM/SIGINT (and
to every other MDT that MDS lists, at the period each asks: announcers.py).
Bad input ends it with one line on stderr and exit code 1 (2 for usage
errors); it never shows a traceback for those. Holds no object logic itself.
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import logging
import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any

import grpc

from lustrepy.common import config, daemon, logs, nids
from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.params import Registry
from lustrepy.ldlm.lockd import LockServer
from lustrepy.ldlm.service import LdlmService
from lustrepy.oss.replica import Replicas
from lustrepy.oss.announcers import Announcers
from lustrepy.oss import params as oss_params
from lustrepy.oss import scrub
from lustrepy.oss.identity import IDENTITY_FILE, LOCK_FILE, OstIdentity, load_or_format
from lustrepy.oss.ofd import Ofd
from lustrepy.oss.osd import Osd
from lustrepy.oss.recovery import DEFAULT_WINDOW, open_window
from lustrepy.oss.service import OssService
from lustrepy.oss.tgt import DEFAULT_INTERVAL, Tgt
from lustrepy.rpc.channel import bind, make_server
from lustrepy.rpc import tls
from lustrepy.rpc.lane import LaneServer
from lustrepy.rpc.v1 import ldlm_pb2_grpc, oss_pb2, oss_pb2_grpc

log = logging.getLogger(__name__)

PROG = "lustrepy-oss"
MKFS_FILE = "mkfs.json"             # {"mgs": "HOST:PORT"}: the MDS given to lfsctl mkfs
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
    log_levels: tuple[tuple[str, str], ...] = ()    # subsystem -> level, beyond log_level
    lane: bool = True               # serve bulk data on the request lane beside gRPC
    recovery_window: float = DEFAULT_WINDOW     # clients that wrote since the last commit get this long to replay
    commit_interval: float = DEFAULT_INTERVAL   # seconds between commits of written objects
    node: str = ""                  # the host as mirror placement sees it ("" = advertise)
    failure_domain: str = ""
    checksums: bool = True          # keep and check a crc32c per block of every object
    scrub_rate: float = scrub.DEFAULT_RATE          # MiB/s of the background scrub (0: off)
    scrub_interval: float = scrub.DEFAULT_INTERVAL  # seconds between scrub passes

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"


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
    return config_of(settings(argv)[1])


def settings(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The command line, and every option and tunable: command line over configuration files over default."""
    p = daemon.ArgParser(prog=PROG, description="lustrepy object storage server (one OST)",
                epilog="Options given here override the configuration file; values set at run time "
                       "with `lfsctl set-param` override both until reset.")
    p.add_argument("--config", metavar="FILE", action="append", default=[],
                   help="TOML configuration file (example: systemd/etc/lustrepy/oss.toml); "
                        "may be repeated, a later file wins")
    p.add_argument("--dir", help="OST data directory (formatted on first start)")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (port 0 = any)")
    p.add_argument("--mds", metavar="HOST:PORT[,HOST:PORT]",
                   help="the MDS to announce to (several: the failover addresses of the MDT)")
    p.add_argument("--index", type=_index, help="OST index (needed to format)")
    p.add_argument("--fsname", help="file system name (needed to format)")
    p.add_argument("--capacity", type=_size, metavar="BYTES", help="cap the space this OST reports and accepts")
    p.add_argument("--port-file", metavar="FILE", help="write the port actually listened on here")
    p.add_argument("--heartbeat", type=_seconds, metavar="S", help="seconds between announces (default 1)")
    p.add_argument("--callback-timeout", type=_seconds, metavar="S",
                   help="seconds a lock holder has to answer a callback before eviction (default 10)")
    p.add_argument("--advertise", metavar="HOST", help="host to announce when listening on a wildcard address")
    p.add_argument("--node", metavar="NAME",
                   help="the host this OSS runs on, for mirror placement (default: the announced host)")
    p.add_argument("--failure-domain", metavar="NAME",
                   help="what fails together with this OSS (a rack): mirrors go to different domains")
    p.add_argument("--recovery-window", type=_seconds, metavar="S",
                   help="seconds the clients that wrote since the last commit get to replay after a restart "
                        "(default 60)")
    p.add_argument("--commit-interval", type=_seconds, metavar="S",
                   help="seconds between commits of written objects (default 1)")
    p.add_argument("--no-checksums", dest="checksums", action="store_false", default=None,
                   help="keep no checksums at rest (for measurements; the next start with them recomputes them)")
    p.add_argument("--no-lane", dest="lane", action="store_false", default=None,
                   help="serve clients on gRPC only, without the request lane for bulk data")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
                   help="the daemon's log level (default INFO)")
    tls.arguments(p)
    p.add_argument("--format-only", action="store_true",
                   help="format the empty --dir for --fsname and --index (recording --mds as the MDS to "
                        "announce to), print its identity as JSON and exit (lfsctl mkfs runs this)")
    a = p.parse_args(argv)
    if a.listen is not None:
        _host_port(a.listen, "--listen")
    cli = {k: v for k, v in vars(a).items() if k not in ("config", "format_only")}
    cli["heartbeat_interval"] = cli.pop("heartbeat")
    cli["log.level"] = cli.pop("log_level")
    from_files: dict[str, Any] = {}
    for path in a.config:
        from_files.update(config.load(path, oss_params.OPTIONS))
    return a, config.resolve(oss_params.OPTIONS, from_files, cli)


def config_of(v: dict[str, Any]) -> OssConfig:
    if v["mds"] is None and v["dir"] is not None:
        v = dict(v, mds=recorded_mgs(v["dir"]))
    missing = [n for n in ("dir", "listen", "mds") if v[n] is None]
    if missing:
        raise QuietError(f"the following arguments are required: {', '.join('--' + n for n in missing)} "
                         "(or in the configuration file)", exitcode=2)
    host, port = _host_port(v["listen"], "--listen")
    try:
        nids.split_addresses(v["mds"])
        nids.grpc_target(v["mds"])
    except ValueError as e:
        raise QuietError(f"mds: {e}") from None
    return OssConfig(dir=v["dir"], listen_host=host, listen_port=port, mds=v["mds"], index=v["index"],
                     fsname=v["fsname"], capacity=v["capacity"], port_file=v["port_file"],
                     heartbeat=v["heartbeat_interval"], callback_timeout=v["callback_timeout"],
                     advertise=advertised_host(host, v["advertise"]), log_level=v["log.level"],
                     log_levels=tuple((k.removeprefix("log."), lv) for k, lv in v.items()
                                      if k.startswith("log.") and k != "log.level" and lv != "NOTSET"),
                     lane=bool(v["lane"]), recovery_window=v["recovery_window"],
                     commit_interval=v["commit_interval"], node=_label(v["node"], "node"),
                     failure_domain=_label(v["failure_domain"], "failure_domain"), checksums=bool(v["checksums"]),
                     scrub_rate=v["scrub_rate"], scrub_interval=v["scrub_interval"])


def _label(value: str | None, what: str) -> str:
    """A node or failure domain name: printable, no spaces, at most 64 characters."""
    text = (value or "").strip()
    if len(text) > 64 or not all(c.isprintable() and not c.isspace() for c in text):
        raise QuietError(f"{what} {value!r}: give a name of at most 64 printable characters, no spaces")
    return text


def recorded_mgs(dir: str) -> str | None:
    """The MDS address `lfsctl mkfs --mgs` recorded in the OST directory, if any."""
    try:
        with open(os.path.join(dir, MKFS_FILE), "rb") as f:
            mgs = json.load(f).get("mgs")
    except (OSError, ValueError, AttributeError):
        return None
    return mgs if isinstance(mgs, str) and mgs else None


def format_dir(v: dict[str, Any]) -> int:
    """--format-only: format an empty OST directory, record the MDS to announce to, print the identity."""
    if v["dir"] is None or v["fsname"] is None or v["index"] is None:
        raise QuietError("--format-only needs --dir, --fsname and --index", exitcode=2)
    osd = Osd(v["dir"])
    if os.path.exists(os.path.join(osd.root, IDENTITY_FILE)):
        raise QuietError(f"{osd.root} is already formatted")
    ident = load_or_format(osd, v["fsname"], v["index"])
    if v["mds"]:
        try:
            osd.write_meta(MKFS_FILE, (json.dumps({"mgs": v["mds"]}) + "\n").encode())
        except OSError as e:
            raise QuietError(f"cannot write {os.path.join(osd.root, MKFS_FILE)}: {e.strerror or e}") from None
    print(json.dumps({"role": "ost", "dir": osd.root, "fsname": ident.fsname, "index": ident.index,
                      "uuid": ident.uuid, "mgs": v["mds"]}))
    return 0


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
    lane: LaneServer | None = None
    scrub: scrub.Scrubber | None = None

    def stop(self, grace: float = STOP_GRACE) -> None:
        if self.scrub is not None:
            self.scrub.stop()
        done = self.server.stop(grace)
        if self.lane is not None:
            self.lane.stop()
        self.lockd.stop()
        done.wait(grace + 1)
        self.service.tgt.stop()
        if self.service.replicas is not None:
            self.service.replicas.close()


def start_serving(ofd: Ofd, listen: str, *, callback_timeout: float = 10.0, boot_id: int = 0,
                  threads: int = RPC_THREADS, lane: bool = True, recovery_window: float = DEFAULT_WINDOW,
                  commit_interval: float = DEFAULT_INTERVAL, scrub_rate: float = scrub.DEFAULT_RATE,
                  scrub_interval: float = scrub.DEFAULT_INTERVAL) -> Serving:
    """Bind `listen` (port 0 = any), register Oss + Ldlm, start; LpError when it cannot bind.
    With `lane`, the request lane listens on any free port of the same host too. The OST's
    transactions start counting (and committing) here; recovery waits for the clients the last
    start recorded as writers. The background scrub starts here too."""
    boot_id = boot_id or secrets.randbits(63) | 1
    lockd = LockServer(ofd.ident.name, callback_timeout=callback_timeout,
                       lvb_source=lambda res: ofd.lvb(res.n1))
    server = make_server(max_workers=threads)
    tgt = Tgt(ofd.osd, ofd.sync_objects, commit_interval)
    service = OssService(ofd, lockd, boot_id, tgt, open_window(ofd, tgt, recovery_window))
    service.replicas = Replicas(ofd, lockd)
    oss_pb2_grpc.add_OssServicer_to_server(service, server)
    ldlm_pb2_grpc.add_LdlmServicer_to_server(LdlmService(lockd, service.stats), server)
    port = bind(server, listen)
    lane_server = None
    if lane:
        lane_server = LaneServer(ofd.ident.name, oss_pb2.DESCRIPTOR.services_by_name["Oss"],
                                 service.lane_handlers())
        try:
            lane_server.start(_host_port(listen, "listen")[0].strip("[]"))
        except LpError:
            server.stop(0)
            raise
        service.lane = lane_server
    scrubber = scrub.Scrubber(ofd.integrity, ofd.object_ids, scrub_rate, scrub_interval)
    service.scrub = scrubber
    lockd.start()
    tgt.start()
    server.start()
    scrubber.start()
    return Serving(server, port, lockd, service, lane_server, scrubber)


def run(cfg: OssConfig) -> int:
    """Serve until a signal or a refusal by the MDS; returns the exit code."""
    osd = Osd(cfg.dir)
    try:
        os.makedirs(osd.root, exist_ok=True)
    except OSError as e:
        raise QuietError(f"cannot use {osd.root}: {e.strerror or e}") from None
    dir_lock = daemon.lock_dir(osd.root, LOCK_FILE, "OST")     # before formatting: one server formats it
    try:
        ident = load_or_format(osd, cfg.fsname, cfg.index)
        return _serve(cfg, osd, ident)
    finally:
        os.close(dir_lock)


def _serve(cfg: OssConfig, osd: Osd, ident: OstIdentity) -> int:
    try:
        ofd = Ofd(osd, ident, cfg.capacity, checksums=cfg.checksums)
    except (LpError, OSError) as e:
        raise QuietError(f"cannot open {osd.root}: {e}") from None
    daemon.check_listen(cfg.listen_host, cfg.listen_port)

    boot_id = secrets.randbits(63) | 1
    try:
        serving = start_serving(ofd, cfg.listen, callback_timeout=cfg.callback_timeout, boot_id=boot_id,
                                lane=cfg.lane, recovery_window=cfg.recovery_window,
                                commit_interval=cfg.commit_interval, scrub_rate=cfg.scrub_rate,
                                scrub_interval=cfg.scrub_interval)
    except LpError as e:
        if e.errno == errno.EIO:
            raise QuietError(f"cannot open {osd.root}: {e.message}") from None
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
    announcer = Announcers(cfg.mds, ident, address, boot_id, ofd.statfs, refused, interval=cfg.heartbeat,
                           node=cfg.node or cfg.advertise, failure_domain=cfg.failure_domain,
                           keys=serving.service.capas.keys)
    serving.service.other_mdts = lambda: announcer.others().values()
    try:
        serving.service.params = _tunables(cfg, ident, osd, serving, announcer, address)
        if cfg.port_file:
            try:
                daemon.write_port_file(cfg.port_file, port)
            except OSError as e:
                raise QuietError(f"cannot write --port-file {cfg.port_file}: {e.strerror or e}") from None
        log.info("%s serving at %s (%d objects, last ids %s, capacity %s), MDS %s", ident.uuid, address,
                 ofd.object_count(), ofd.last_ids.all() or "none",
                 cfg.capacity if cfg.capacity is not None else "disk", cfg.mds)
        announcer.start()
        daemon.notify_ready(f"{ident.uuid} serving at {address}")
        while not stop.wait(1.0):
            pass
    finally:
        announcer.stop()
        serving.stop(STOP_GRACE)
        log.info("%s stopped", ident.uuid)
    return code[0]


def _tunables(cfg: OssConfig, ident: OstIdentity, osd: Osd, serving: Serving,
              announcer: Announcers, address: str) -> Registry:
    """The OSS's tunables bound to the running lock server and announcer, with kept settings applied."""
    def set_heartbeat(v: float) -> None:
        announcer.interval = v          # MDT0's; the other MDTs' announcers beat as their MDT asks

    def set_callback_timeout(v: float) -> None:
        serving.lockd.callback_timeout = v

    scrubber = serving.scrub
    assert scrubber is not None

    values = {"dir": cfg.dir, "mds": cfg.mds, "capacity": cfg.capacity, "listen": address,
              "recovery_window": cfg.recovery_window}
    reg = oss_params.registry(ident, osd, values, {
        "heartbeat_interval": (lambda: announcer.interval, set_heartbeat),
        "callback_timeout": (lambda: serving.lockd.callback_timeout, set_callback_timeout),
        "commit_interval": (lambda: serving.service.tgt.interval, functools.partial(setattr, serving.service.tgt,
                                                                                     "interval")),
        "scrub_rate": (lambda: scrubber.rate, functools.partial(setattr, scrubber, "rate")),
        "scrub_interval": (lambda: scrubber.interval, functools.partial(setattr, scrubber, "interval"))})
    reg.apply_saved()
    return reg


def main(argv: list[str] | None = None) -> int:
    try:
        a, values = settings(argv)
        if a.format_only:
            return format_dir(values)
        cfg = config_of(values)
        logs.setup(cfg.log_level, prog=PROG, levels=dict(cfg.log_levels))
        daemon.tune_interpreter()
        tls.use_values(values, "oss")
        return run(cfg)
    except QuietError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exitcode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
