"""What every lustrepy daemon does the same way: the port file, readiness for
systemd (sd_notify READY=1 over $NOTIFY_SOCKET), waiting for SIGTERM/SIGINT,
and the lock that keeps two processes from serving one data directory.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import fcntl
import os
import sys
import signal
import socket
import threading

from types import FrameType
from typing import Callable, NoReturn

from lustrepy.common.errors import QuietError


SWITCH_INTERVAL = 0.0005


def tune_interpreter() -> None:
    """Daemons are many threads handing small requests to each other: a short GIL switch
    interval keeps a thread that has a reply ready from waiting up to 5 ms behind one
    that is computing."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    keep_freed_memory()


# glibc mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 8 << 20        # above the largest message (4 MiB) with room for its envelope
TRIM_THRESHOLD = 64 << 20
TOP_PAD = 8 << 20
ARENA_MAX = 2                   # freed memory kept per arena: few arenas bound what is kept


def keep_freed_memory() -> None:
    """Bulk data moves as 1 MiB buffers that are allocated and freed thousands of times a
    second. By default glibc serves each from fresh mmap()ed pages and returns them at once,
    so every MiB costs 256 page faults and zeroing in the kernel; keeping freed memory in the
    heap for reuse halves the system time of a streaming client or OSS. A no-op off glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for param, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                         (_M_TOP_PAD, TOP_PAD), (_M_ARENA_MAX, ARENA_MAX)):
        mallopt(param, value)


def write_port_file(path: str | None, port: int) -> None:
    """Atomically record the port a server listens on, once it serves."""
    if not path:
        return
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_listen(host: str, port: int) -> None:
    """Fail early, in one line, when the port is taken or the host is not local
    (grpc would otherwise log its own multi-line noise)."""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except OSError as e:
        raise QuietError(f"cannot listen on {where}: {e.strerror or e}") from None
    family, stype, proto, _, sockaddr = infos[0]
    with socket.socket(family, stype, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(sockaddr)
        except OSError as e:
            raise QuietError(f"cannot listen on {where}: {e.strerror or e}") from None


def notify_ready(status: str = "") -> None:
    """Tell systemd (Type=notify) that the daemon serves; a no-op outside systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    msg = "READY=1" + (f"\nSTATUS={status}" if status else "")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            s.sendall(msg.encode())
        except OSError:
            pass


def catch_stop_signals() -> Callable[[], int]:
    """SIGTERM and SIGINT caught from now on (install before the daemon says where it serves, so
    one sent as soon as it does stops it cleanly); returns the wait: it blocks until one came and
    returns its number."""
    got: list[int] = []
    ev = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        got.append(signum)
        ev.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)

    def wait() -> int:
        while not ev.wait(1.0):
            pass
        return got[0]
    return wait


def split_hostport(addr: str) -> tuple[str, int]:
    """'host:port' -> (host, port); ValueError with a readable message when malformed."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {addr!r}")
    return host.strip("[]"), int(port)


def lock_dir(directory: str, name: str, what: str) -> int:
    """Hold an flock on DIR/name (with our pid in it) for as long as the process serves DIR;
    QuietError naming the holder when another process has it. Returns the fd (closing it unlocks)."""
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise QuietError(f"{directory}: cannot open {name}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise QuietError(f"{directory}: the {what} is in use by process {holder}") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass                # a full disk: the flock holds all the same; only the holder's pid goes unrecorded
    return fd


class ArgParser(argparse.ArgumentParser):
    """A daemon's command line: a usage error is one line (exit code 2), no usage dump."""

    def error(self, message: str) -> NoReturn:
        raise QuietError(f"{message} (see {self.prog} --help)", exitcode=2)

