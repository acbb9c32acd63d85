"""The record of a local cluster: DIR/cluster.json, read and written atomically, under a lock.

cluster.json says what `lfsctl cluster up` started under DIR (addresses, pids,
argv, data directories, logs, the mount) and whether the cluster is meant to be
running. It is the only place lfsctl learns which pids it may signal.
This module never starts or signals a process.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lustrepy.common.errors import QuietError

log = logging.getLogger(__name__)

CLUSTER_FILE = "cluster.json"
LOCK_FILE = ".cluster.lock"
FORMAT = 1

STATE_STARTING = "starting"
STATE_RUNNING = "running"
STATE_STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """One server process lfsctl started: `index` is None for MDT0's MDS, the MDT index for
    MDT1.., the OST index for an OSS."""

    role: str                  # "mds" | "oss"
    index: int | None
    address: str               # host:port it serves on ("" until known)
    pid: int                   # 0 when not running
    argv: tuple[str, ...]
    dir: str
    log: str
    starttime: int = 0         # /proc/PID/stat start time (clock ticks): guards against pid reuse

    @property
    def name(self) -> str:
        if self.role == "mds":
            return "mds" if not self.index else f"mdt{self.index}"
        return f"ost{self.index}"

    @property
    def port(self) -> int:
        _, _, port = self.address.rpartition(":")
        return int(port) if port.isdigit() else 0


@dataclass(frozen=True, slots=True)
class MountRecord:
    point: str
    source: str                # HOST:PORT:/FSNAME


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """Settings chosen at first `cluster up` and reused on every restart."""

    capacity: int | None = None          # bytes per OST (--capacity), None = the OSS default
    heartbeat: float | None = None       # OSS heartbeat interval, None = server default
    ost_timeout: float | None = None     # MDS: OST inactive after this many seconds of silence
    host: str = "127.0.0.1"
    plaintext: bool = False              # no TLS, no certificates (--plaintext)


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    root: str
    fsname: str
    state: str
    mds: ServerRecord                       # MDT0's MDS (the MGS every node asks first)
    osts: tuple[ServerRecord, ...] = ()
    mount: MountRecord | None = None
    options: ClusterOptions = field(default_factory=ClusterOptions)
    mdts: tuple[ServerRecord, ...] = ()     # the MDSs of MDT1.., by index

    @property
    def mdt_count(self) -> int:
        return 1 + len(self.mdts)

    @property
    def mgs_source(self) -> str:
        return f"{self.mds.address}:/{self.fsname}"

    def ost(self, index: int) -> ServerRecord:
        for o in self.osts:
            if o.index == index:
                return o
        known = ", ".join(str(o.index) for o in self.osts) or "none"
        raise QuietError(f"no OST with index {index} in the cluster at {self.root} (indexes: {known})")

    def with_ost(self, rec: ServerRecord) -> ClusterRecord:
        osts = [rec if o.index == rec.index else o for o in self.osts]
        if not any(o.index == rec.index for o in self.osts):
            osts.append(rec)
        return replace(self, osts=tuple(sorted(osts, key=lambda o: o.index or 0)))

    def with_mdt(self, rec: ServerRecord) -> ClusterRecord:
        mdts = [rec if m.index == rec.index else m for m in self.mdts]
        if not any(m.index == rec.index for m in self.mdts):
            mdts.append(rec)
        return replace(self, mdts=tuple(sorted(mdts, key=lambda m: m.index or 0)))

    def servers(self) -> tuple[ServerRecord, ...]:
        return (self.mds, *self.mdts, *self.osts)


def path_of(root: str | os.PathLike[str]) -> Path:
    return Path(root) / CLUSTER_FILE


def to_json(rec: ClusterRecord) -> dict[str, Any]:
    """The JSON form (also what `lfsctl cluster ... --json` prints)."""
    def server(s: ServerRecord) -> dict[str, Any]:
        d = asdict(s)
        d["argv"] = list(s.argv)
        del d["role"]
        if s.index is None:
            del d["index"]
        return d

    d: dict[str, Any] = {
        "format": FORMAT,
        "root": rec.root,
        "fsname": rec.fsname,
        "state": rec.state,
        "mgs": rec.mgs_source,
        "mds": server(rec.mds),
        "osts": [server(o) for o in rec.osts],
        "mount": asdict(rec.mount) if rec.mount else None,
        "options": asdict(rec.options),
    }
    if rec.mdts:        # MDT1..: a cluster of one MDT is written as it always was
        d["mdts"] = [server(m) for m in rec.mdts]
    return d


def from_json(d: dict[str, Any]) -> ClusterRecord:
    def server(role: str, s: dict[str, Any], indexed: bool = True) -> ServerRecord:
        return ServerRecord(role=role, index=s.get("index") if indexed else None,
                            address=str(s.get("address", "")), pid=int(s.get("pid") or 0),
                            argv=tuple(str(a) for a in s.get("argv", ())), dir=str(s["dir"]),
                            log=str(s.get("log", "")), starttime=int(s.get("starttime") or 0))

    m = d.get("mount")
    o = d.get("options") or {}
    return ClusterRecord(
        root=str(d["root"]), fsname=str(d["fsname"]), state=str(d.get("state", STATE_STOPPED)),
        mds=server("mds", d["mds"], indexed=False), osts=tuple(server("oss", x) for x in d.get("osts", ())),
        mdts=tuple(server("mds", x) for x in d.get("mdts", ())),
        mount=MountRecord(point=str(m["point"]), source=str(m["source"])) if m else None,
        options=ClusterOptions(plaintext=bool(o.get("plaintext", False)), capacity=o.get("capacity"),
                               heartbeat=o.get("heartbeat"),
                               ost_timeout=o.get("ost_timeout"), host=o.get("host", "127.0.0.1")),
    )


def load(root: str | os.PathLike[str]) -> ClusterRecord | None:
    """The record under root, None when there is none; a damaged file is a QuietError."""
    p = path_of(root)
    try:
        text = p.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise QuietError(f"cannot read {p}: {e.strerror}") from None
    try:
        return from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as e:
        raise QuietError(f"{p} is damaged ({e.__class__.__name__}: {e}); move it away to start afresh") from None


def save(rec: ClusterRecord) -> None:
    """Write cluster.json atomically (write a temporary file, fsync, rename)."""
    p = path_of(rec.root)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    data = json.dumps(to_json(rec), indent=2) + "\n"
    with open(tmp, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    log.debug("wrote %s (state %s)", p, rec.state)


@contextmanager
def locked(root: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the cluster's lock file: one lfsctl at a time changes a cluster."""
    Path(root).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(root) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise QuietError(f"another lfsctl is changing the cluster at {root}; try again when it is done") from None
        yield
    finally:
        os.close(fd)
