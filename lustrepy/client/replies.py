"""Plain records the client's POSIX layer (llite) takes and answers with.

llite never sees a FUSE type: the FUSE adapter (fs.py) turns a request's
context into a `Caller`, a setattr's fields into a `SetAttrRequest`, and
llite's `Entry`, `Opened` and `FsStat` into pyfuse3's replies. Tests drive
llite with these records directly, without a kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lustrepy.common.records import Attr, Cred

TTL = 86400.0          # kernel caching under a lock: until the lock is called back
BLKSIZE = 1 << 20      # st_blksize of a file without objects


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the calling thread's id (FUSE's pid is the thread id) and credentials."""

    pid: int = 0
    cred: Cred = Cred()


OWN = Caller()          # the client itself (no process asked)


@dataclass(frozen=True, slots=True)
class Entry:
    """A name's inode and attributes, with how long the kernel may cache each; `ino` 0 is an
    absent name the kernel may cache for `entry_ttl` (a negative entry)."""

    ino: int
    attr: Attr | None = None
    attr_ttl: float = 0.0
    entry_ttl: float = 0.0
    blksize: int = BLKSIZE


NEGATIVE = Entry(0, entry_ttl=TTL)     # absent, until the parent's UPDATE lock is called back


@dataclass(frozen=True, slots=True)
class Opened:
    """An open file handle; `keep_cache`: the kernel may keep the pages it has."""

    fh: int
    keep_cache: bool = False


@dataclass(frozen=True, slots=True)
class SetAttrRequest:
    """A setattr as the kernel asks it: `valid` holds SA bits (common.records.SA) of the
    fields given; a time is as the kernel sends it (its clock for UTIME_NOW too)."""

    valid: int
    mode: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    atime_ns: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0


@dataclass(frozen=True, slots=True)
class FsStat:
    bsize: int
    blocks: int
    bfree: int
    bavail: int
    files: int
    ffree: int
    namemax: int = 255


# One directory entry handed to the kernel: (name, entry, cookie of the next); False when
# the kernel's buffer is full (the entry was not taken).
Emit = Callable[[bytes, Entry, int], bool]
