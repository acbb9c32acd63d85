"""lustrepy mounts as the kernel lists them (/proc/self/mountinfo), and unmounting them.

Finding the mount of a path works on names only (no stat, no access to the
path), so a hung mount cannot hang lfsctl. Never mounts anything itself.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lustrepy.common import nids
from lustrepy.common.errors import QuietError

log = logging.getLogger(__name__)

FSTYPE = "fuse.lustrepy"
MOUNTINFO = "/proc/self/mountinfo"
UNMOUNT_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class MountEntry:
    point: str
    fstype: str
    source: str


@dataclass(frozen=True, slots=True)
class MgsSource:
    """A mount source HOST:PORT:/FSNAME, split."""

    address: str
    fsname: str

    def __str__(self) -> str:
        return f"{self.address}:/{self.fsname}"


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(s):
        code = s[i + 1:i + 4]
        if s[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if not sep or len(f) < 5 or len(r) < 2:
            continue
        entries.append(MountEntry(point=_unescape(f[4]), fstype=r[0], source=_unescape(r[1])))
    return entries


def read_mounts(mountinfo: str = MOUNTINFO) -> list[MountEntry]:
    try:
        return parse_mountinfo(Path(mountinfo).read_text())
    except OSError:
        return []


def parse_source(source: str) -> MgsSource:
    """HOST:PORT[,HOST:PORT...]:/FSNAME -> MgsSource; QuietError when it is not of that shape."""
    addr, sep, fsname = source.rpartition(":/")
    try:
        nids.split_addresses(addr)
    except ValueError:
        sep = ""
    if not sep or not fsname or "/" in fsname:
        raise QuietError(f"bad mount source {source!r}: expected HOST:PORT[,HOST:PORT...]:/FSNAME")
    return MgsSource(address=addr, fsname=fsname)


def mount_of(path: str, entries: list[MountEntry]) -> MountEntry | None:
    """The mount a path lies on (the last-mounted of the longest matching mount points)."""
    p = os.path.normpath(os.path.abspath(path))
    best: MountEntry | None = None
    for e in entries:
        mp = e.point.rstrip("/") or "/"
        if p == mp or p.startswith(mp.rstrip("/") + "/"):
            if best is None or len(mp) >= len(best.point.rstrip("/") or "/"):
                best = e
    return best


def lustrepy_mount_at(point: str, entries: list[MountEntry] | None = None) -> MountEntry | None:
    """The lustrepy mount whose mount point is exactly point, if any."""
    p = os.path.normpath(os.path.abspath(point))
    for e in reversed(entries if entries is not None else read_mounts()):
        if e.point == p and e.fstype == FSTYPE:
            return e
    return None


def is_mounted(point: str, entries: list[MountEntry] | None = None) -> bool:
    p = os.path.normpath(os.path.abspath(point))
    return any(e.point == p for e in (entries if entries is not None else read_mounts()))


def unmount(point: str) -> None:
    """fusermount3 -u; when that fails, a lazy unmount (-uz) as the last resort."""
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    attempts = [[tool, "-u", point], [tool, "-uz", point]] if tool else [["umount", point], ["umount", "-l", point]]
    last = ""
    for argv in attempts:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=UNMOUNT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            last = str(e)
            continue
        if r.returncode == 0 or not is_mounted(point):
            log.info("unmounted %s with %s", point, " ".join(argv[:-1]))
            return
        last = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        log.warning("%s failed: %s", " ".join(argv), last)
    raise QuietError(f"cannot unmount {point}: {last}")
