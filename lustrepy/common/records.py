"""Typed frozen records that cross module boundaries (attributes, entries, stats).

The wire forms live in lustrepy/rpc; lustrepy/rpc/convert.py maps between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from lustrepy.common.fid import Fid


DIR_SIZE = 4096         # what a directory reports as its size (as ext4's first block)
DIR_BLOCKS = 8


@dataclass(frozen=True, slots=True)
class Attr:
    fid: Fid
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    rdev: int = 0
    generation: int = 0

    @property
    def ino(self) -> int:
        return self.fid.ino()


@dataclass(frozen=True, slots=True)
class DirEntry:
    name: bytes
    fid: Fid
    type: int           # S_IFMT bits
    cookie: int


@dataclass(frozen=True, slots=True)
class Statfs:
    bsize: int = 4096
    blocks: int = 0
    bfree: int = 0
    bavail: int = 0
    files: int = 0
    ffree: int = 0


@dataclass(frozen=True, slots=True)
class Lvb:
    """Lock value block of an OSS object: what its extent locks tell of it."""

    size: int = 0
    blocks: int = 0
    mtime_ns: int = 0
    atime_ns: int = 0
    ctime_ns: int = 0


@dataclass(frozen=True, slots=True)
class Cred:
    """The caller of an operation, for permission checks."""

    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()

    def in_group(self, gid: int) -> bool:
        return gid == self.gid or gid in self.groups
