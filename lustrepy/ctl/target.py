"""How an lfsctl command finds the MDS it talks to.

In order: `--mgs HOST:PORT`, then $LUSTREPY_MGS, then `--root DIR`
(DIR/cluster.json), then a PATH argument on a lustrepy mount (the source
HOST:PORT:/FSNAME of its fuse.lustrepy entry in /proc/self/mountinfo), then
the running cluster recorded in $LUSTREPY_ROOT, or in /tmp/lustrepy when
$LUSTREPY_ROOT is unset (a set $LUSTREPY_ROOT names the only root looked at, as
it is the default `--root` of `lfsctl cluster`). Resolution reads files only: it never contacts a server and never touches
the PATH itself (a hung mount cannot hang it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from lustrepy.common import nids
from lustrepy.common.errors import QuietError
from lustrepy.ctl import clusterfile, mounts, procs

log = logging.getLogger(__name__)

DEFAULT_ROOT = "/tmp/lustrepy"
ENV_MGS = "LUSTREPY_MGS"
ENV_ROOT = "LUSTREPY_ROOT"


@dataclass(frozen=True, slots=True)
class Target:
    """The MDS to ask, and what is known of the file system without asking it."""

    address: str              # host:port
    how: str                  # where the address came from, for messages
    fsname: str | None = None
    mount: str | None = None  # a mount point of this file system, when one is known


def default_root(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get(ENV_ROOT) or DEFAULT_ROOT


def check_address(address: str, how: str) -> str:
    """host:port (host may be [v6]), or the MDT's failover list of them; a malformed one is a
    QuietError naming where it came from."""
    try:
        nids.split_addresses(address)
    except ValueError:
        raise QuietError(f"bad MDS address {address!r} from {how}: expected HOST:PORT[,HOST:PORT...]") from None
    return address


def _with_mount(address: str, fsname: str | None, entries: list[mounts.MountEntry]) -> str | None:
    """A lustrepy mount of this file system, if one is mounted here."""
    for e in entries:
        if e.fstype != mounts.FSTYPE:
            continue
        try:
            src = mounts.parse_source(e.source)
        except QuietError:
            continue
        if src.address == address and (fsname is None or src.fsname == fsname):
            return e.point
    return None


def from_cluster(root: str, how: str, entries: list[mounts.MountEntry]) -> Target:
    rec = clusterfile.load(root)
    if rec is None:
        raise QuietError(f"no cluster recorded at {root} ({clusterfile.CLUSTER_FILE} missing)")
    if not rec.mds.address:
        raise QuietError(f"the cluster at {root} never started (no MDS address recorded)")
    mount = rec.mount.point if rec.mount and mounts.lustrepy_mount_at(rec.mount.point, entries) else None
    return Target(address=rec.mds.address, how=how, fsname=rec.fsname,
                  mount=mount or _with_mount(rec.mds.address, rec.fsname, entries))


def from_path(path: str, entries: list[mounts.MountEntry]) -> Target:
    m = mounts.mount_of(path, entries)
    if m is None or m.fstype != mounts.FSTYPE:
        kind = f" ({m.fstype} on {m.point})" if m else ""
        raise QuietError(f"{path} is not on a lustrepy file system{kind}")
    src = mounts.parse_source(m.source)
    return Target(address=src.address, how=f"the mount {m.point}", fsname=src.fsname, mount=m.point)


def running_cluster_root(env: Mapping[str, str]) -> str | None:
    """The default root ($LUSTREPY_ROOT, else /tmp/lustrepy) if its recorded MDS is still running."""
    root = default_root(env)
    rec = clusterfile.load(root)
    if rec and rec.state != clusterfile.STATE_STOPPED and procs.is_ours(rec.mds.pid, rec.mds.argv,
                                                                        rec.mds.starttime):
        return root
    return None


def resolve(mgs: str | None = None, root: str | None = None, path: str | None = None,
            env: Mapping[str, str] | None = None, mountinfo: str = mounts.MOUNTINFO) -> Target:
    """Find the MDS for a command, in the documented order."""
    env = os.environ if env is None else env
    entries = mounts.read_mounts(mountinfo)
    if mgs:
        addr = check_address(mgs, "--mgs")
        return Target(address=addr, how="--mgs", mount=_mount_for(path, addr, entries))
    if env.get(ENV_MGS):
        addr = check_address(env[ENV_MGS], f"${ENV_MGS}")
        return Target(address=addr, how=f"${ENV_MGS}", mount=_mount_for(path, addr, entries))
    if root:
        return from_cluster(root, f"--root {root}", entries)
    if path:
        return from_path(path, entries)
    running = running_cluster_root(env)
    if running is not None:
        return from_cluster(running, f"the cluster at {running}", entries)
    raise QuietError(f"no MDS given and no running cluster at {default_root(env)}: "
                     f"use --mgs HOST:PORT, ${ENV_MGS}, --root DIR or a PATH on a lustrepy mount")


def _mount_for(path: str | None, address: str, entries: list[mounts.MountEntry]) -> str | None:
    if path:
        m = mounts.mount_of(path, entries)
        if m is not None and m.fstype == mounts.FSTYPE:
            return m.point
    return _with_mount(address, None, entries)
