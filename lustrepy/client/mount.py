"""`lustrepy`: the client mount program (run directly, or by mount.fuse3 for
`mount -t fuse.lustrepy` and /etc/fstab).

    lustrepy HOST:PORT:/FSNAME MOUNTPOINT [-o OPTS] [-f]

Checks the source, the mount point and the options, then forks into the
background BEFORE any gRPC channel or thread exists (grpcio does not survive
a fork); the parent exits 0 only once the child reports the mount ready, or 1
with the child's one-line error, leaving nothing mounted. With -f it stays in
the foreground. At unmount every dirty byte is written to the OSSes before
the process exits.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import select
import signal
import sys
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Callable

from lustrepy.common import daemon, logs, nids
from lustrepy.common.errors import LpError, QuietError
from lustrepy.rpc import tls

log = logging.getLogger("lustrepy.client")

# Options mount(8)/mount.fuse3 pass along: accepted; those that matter are applied.
GENERIC_OPTS = {"rw", "ro", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "auto", "noauto", "user",
                "nouser", "users", "defaults", "_netdev", "nofail", "async", "sync", "atime", "noatime",
                "relatime", "norelatime", "strictatime", "diratime", "nodiratime", "loop"}
OWN_OPTS = {"debug", "allow_other", "default_permissions", "timeout", "client_id", "log", "wbc", "nowbc",
            "journal", "wbc_max", "wbc_age", "wbc_dir_max", "max_unstable_mb", "ca", "cert", "key", "plaintext"}
CERT_NAME = "client"            # the certificate file a mount looks for when none is given: client.crt
JOURNAL_DIR = "/var/lib/lustrepy/wbc"   # default home of the write-back cache journals
WBC_MAX = 65536                         # unflushed update records before writers wait for a flush
READY_TIMEOUT = 60.0
READAHEAD_KB = 8192      # kernel read-ahead on the mount


@dataclass(frozen=True, slots=True)
class Source:
    address: str
    fsname: str


@dataclass(frozen=True, slots=True)
class MountConfig:
    source: Source
    text: str                   # the source as given, for /proc/mounts
    mountpoint: str
    opts: dict[str, str]
    identity: tls.Identity | None = None        # None: plaintext

    @property
    def timeout(self) -> float:
        return float(self.opts.get("timeout") or 30.0)

    @property
    def wbc(self) -> bool:
        """The metadata write-back cache: on with `wbc`, off by default and with `nowbc`/`wbc=0`."""
        return "wbc" in self.opts and self.opts["wbc"] != "0" and "nowbc" not in self.opts


def parse_source(src: str) -> Source:
    """'HOST:PORT[,HOST:PORT...]:/FSNAME' (failover addresses of the MDT) -> Source;
    QuietError naming what is wrong."""
    head, sep, fs = src.rpartition(":/")
    if not sep or not fs or "/" in fs:
        raise QuietError(f"bad mount source {src!r}: expected HOST:PORT[,HOST:PORT...]:/FSNAME", 1)
    try:
        addrs = nids.split_addresses(head)
        nids.grpc_target(head)
    except ValueError as e:
        raise QuietError(f"bad mount source {src!r}: {e}", 1) from None
    return Source(",".join(f"{h}:{p}" if ":" not in h else f"[{h}]:{p}" for h, p in addrs), fs)


def parse_opts(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, (text or "").split(",")):
        k, _, v = item.partition("=")
        if k not in GENERIC_OPTS and k not in OWN_OPTS and not k.startswith("x-"):
            raise QuietError(f"unknown mount option {k!r}", 1)
        out[k] = v
    for key in ("wbc_max", "wbc_dir_max", "max_unstable_mb"):
        if key in out and not (out[key].isdigit() and int(out[key]) > 0):
            raise QuietError(f"mount option {key}={out[key]!r}: expected a positive count", 1)
    for key in ("wbc_age", "timeout"):
        if key in out:
            _positive_seconds(key, out[key])
    if out.get("wbc", "1") not in ("0", "1", ""):
        raise QuietError(f"mount option wbc={out['wbc']!r}: expected wbc, wbc=1 or wbc=0", 1)
    return out


def _positive_seconds(key: str, value: str) -> None:
    try:
        if float(value) > 0:
            return
    except ValueError:
        pass
    raise QuietError(f"mount option {key}={value!r}: expected seconds > 0", 1)


def config(ns: argparse.Namespace) -> MountConfig:
    src = parse_source(ns.source)
    opts = parse_opts(ns.opts)
    mnt = os.path.abspath(ns.mountpoint)
    if not os.path.isdir(mnt):
        raise QuietError(f"mount point {ns.mountpoint} is not a directory", 1)
    if os.path.ismount(mnt):
        raise QuietError(f"{ns.mountpoint} is already a mount point", 1)
    return MountConfig(src, ns.source, mnt, opts, identity(opts))


def identity(opts: dict[str, str]) -> tls.Identity | None:
    """The certificate a mount presents: ca=, cert= and key=, or plaintext, or else client.crt in
    $LUSTREPY_CERTS, /etc/lustrepy/certs or the local cluster's certs directory."""
    try:
        if any(k in opts for k in ("ca", "cert", "key", "plaintext")):
            return tls.explicit(opts.get("ca"), opts.get("cert"), opts.get("key"), "plaintext" in opts,
                                "mount options")
        root = os.environ.get("LUSTREPY_ROOT") or "/tmp/lustrepy"
        found = tls.search(CERT_NAME, [os.environ.get(tls.ENV_CERTS), tls.ETC_CERTS, os.path.join(root, "certs")])
        if found is None:
            raise QuietError("no client certificate: mount with ca=,cert=,key= (lfsctl ca issue --role client), "
                             f"put client.crt beside ca.crt in {tls.ETC_CERTS}, or mount with plaintext", 1)
        return tls.Identity.load(found)
    except LpError as e:
        raise QuietError(e.message, 1) from None


def _setup_logging(cfg: MountConfig, foreground: bool) -> None:
    level = "DEBUG" if "debug" in cfg.opts else "INFO"
    logs.setup(level, prog="lustrepy")
    root = logging.getLogger()
    if cfg.opts.get("log"):
        h: logging.Handler = logging.FileHandler(cfg.opts["log"])
    elif foreground:
        return
    elif os.path.exists("/dev/log"):
        h = logging.handlers.SysLogHandler("/dev/log")
    else:
        h = logging.NullHandler()
    h.setFormatter(logging.Formatter(f"lustrepy[%(process)d] {cfg.mountpoint}: %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [h]


def set_readahead(mountpoint: str, kb: int = READAHEAD_KB) -> None:
    """Let the kernel read ahead `kb` on this mount (its default, 128 KiB, means many small
    reads). Best effort (needs root). Called from its own thread once the FUSE loop runs:
    the kernel sets a mount's read-ahead at FUSE INIT, and the stat below waits for that."""
    try:
        os.stat(mountpoint)
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                if parts[4] == mountpoint:
                    with open(f"/sys/class/bdi/{parts[2]}/read_ahead_kb", "w") as ra:
                        ra.write(str(kb))
                    return
    except OSError as e:
        log.debug("cannot set read-ahead of %s: %s", mountpoint, e)


def serve(cfg: MountConfig, ready: Callable[[str | None], None]) -> int:
    """Connect, mount, and run the FUSE loop until unmounted; `ready` hears the outcome of mounting."""
    import pyfuse3
    import trio

    from lustrepy.client.fs import LustreOperations
    from lustrepy.client.notify import Notifier
    from lustrepy.client.stack import build
    from lustrepy.client.wbc import DIR_MAX, open_journal

    from lustrepy.rpc import authz

    journal = None
    tls.use(cfg.identity)
    name = cfg.identity.subject.name if cfg.identity is not None else ""
    client_id = cfg.opts.get("client_id") or ""
    if name and client_id and not authz.owns(name, client_id):
        client_id = f"{name}:{client_id}"       # a client speaks only as its certificate's name
    new_id = f"{name}:{uuidlib.uuid4()}" if name else f"{os.uname().nodename}-{uuidlib.uuid4()}"
    if cfg.wbc:
        try:
            journal, client_id = open_journal(cfg.opts.get("journal") or JOURNAL_DIR, cfg.source.fsname,
                                              cfg.mountpoint, client_id or None, new_id=new_id,
                                              max_records=int(cfg.opts.get("wbc_max") or WBC_MAX))
        except (LpError, OSError) as e:
            ready(f"cannot mount {cfg.text}: write-back cache journal: {getattr(e, 'message', None) or e}")
            return 1
    client_id = client_id or new_id
    notifier = Notifier()
    try:
        stack = build(cfg.source.address, cfg.source.fsname, client_id, notifier, timeout=cfg.timeout,
                      journal=journal, wbc_age=float(cfg.opts.get("wbc_age") or 1.0),
                      wbc_dir_max=int(cfg.opts.get("wbc_dir_max") or DIR_MAX),
                      max_unstable=int(cfg.opts.get("max_unstable_mb") or 256) << 20)
    except LpError as e:
        ready(f"cannot mount {cfg.text}: {e.message}")
        return 1
    ll = stack.ll
    # a failover list's commas would split the option: libfuse reads a backslash-escaped comma as a comma
    options = {"fsname=" + cfg.text.replace(",", "\\,"), "subtype=lustrepy", "default_permissions"}
    if "allow_other" in cfg.opts:
        options.add("allow_other")
    if "ro" in cfg.opts:
        options.add("ro")
    for o in ("nodev", "nosuid", "noexec", "noatime"):
        if o in cfg.opts:
            options.add(o)
    try:
        pyfuse3.init(LustreOperations(ll), cfg.mountpoint, options)
    except Exception as e:  # pyfuse3 raises RuntimeError/OSError when the kernel refuses the mount
        stack.close(cfg.timeout)
        ready(f"cannot mount on {cfg.mountpoint}: {e}")
        return 1
    notifier.start()
    threading.Thread(target=set_readahead, args=(cfg.mountpoint,), name="readahead", daemon=True).start()
    log.info("mounted %s on %s as client %s", cfg.text, cfg.mountpoint, client_id)
    ready(None)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            async def on_signals() -> None:
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
                    async for sig in sigs:
                        log.info("signal %d: unmounting", sig)
                        pyfuse3.terminate()
                        return
            nursery.start_soon(on_signals)
            await pyfuse3.main(min_tasks=4, max_tasks=64)
            nursery.cancel_scope.cancel()

    code = 0
    try:
        trio.run(main)
    except Exception:
        log.exception("the FUSE loop failed")
        code = 1
    finally:
        try:
            trio.run(ll.flush_all)          # files the kernel never released (lazy unmount)
        except Exception:
            log.exception("writing back dirty data at unmount failed")
            code = 1
        pyfuse3.close(unmount=True)
        code = stack.close(cfg.timeout) or code
        notifier.stop()
        log.info("unmounted %s", cfg.mountpoint)
    return code


def _background(cfg: MountConfig) -> int:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the child: becomes the mount daemon
        os.close(r)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        _setup_logging(cfg, foreground=False)

        def ready(err: str | None) -> None:
            try:
                os.write(w, (f"error {err}" if err else "ok").encode()[:4000])
                os.close(w)
            except OSError:
                pass
        try:
            code = serve(cfg, ready)
        except Exception as e:
            log.exception("mount daemon failed")
            ready(f"internal error: {e}")
            code = 1
        os._exit(code)
    os.close(w)                                     # the parent: wait for the verdict
    msg = b""
    end = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < end:
        rl, _, _ = select.select([r], [], [], 0.5)
        if rl:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            msg += chunk
    os.close(r)
    text = msg.decode(errors="replace")
    if text == "ok":
        os.stat(cfg.mountpoint)                    # returns once the mount answers
        return 0
    if not text:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        raise QuietError(f"mounting {cfg.text} on {cfg.mountpoint} did not finish in {READY_TIMEOUT:.0f}s", 1)
    raise QuietError(text.removeprefix("error "), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="lustrepy", description="mount a lustrepy file system")
    ap.add_argument("source", help="HOST:PORT:/FSNAME of the MDS and the file system")
    ap.add_argument("mountpoint")
    ap.add_argument("-o", dest="opts", help="comma-separated mount options "
                    "(allow_other, ro, debug, timeout=SECONDS, client_id=ID, log=FILE, ca=FILE, cert=FILE, "
                    "key=FILE, plaintext, and mount(8)'s)")
    ap.add_argument("-f", action="store_true", help="stay in the foreground")
    ns = ap.parse_args(argv)
    daemon.tune_interpreter()
    try:
        cfg = config(ns)
        if ns.f:
            _setup_logging(cfg, foreground=True)
            errs: list[str] = []
            code = serve(cfg, lambda err: errs.append(err) if err else None)
            if errs:
                raise QuietError(errs[0], 1)
            return code
        return _background(cfg)
    except QuietError as e:
        print(f"lustrepy: {e}", file=sys.stderr)
        return e.exitcode


if __name__ == "__main__":
    sys.exit(main())
