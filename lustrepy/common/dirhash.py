"""Striped directories' name placement (Lustre's LMV hashes): which stripe of a directory
striped over several MDTs holds a name, and the record of such a directory's stripes.

A striped directory is its master inode (stripe 0, on the MDT of its name) and one shard
directory per further stripe, each on another MDT. A name lives in stripe `stripe_of(name)`;
the hash is chosen when the directory is made and never changes. Shared by the MDS (which
refuses a name sent to the wrong stripe) and the client (which sends it to the right one).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1

HASHES = ("fnv_1a_64", "all_char")
DEFAULT_HASH = "fnv_1a_64"
MAX_STRIPES = 64
DMV_XATTR = b"lustrepy.dmv"     # a directory's default striping of new subdirectories: b"COUNT HASH"


def fnv_1a_64(name: bytes) -> int:
    h = _FNV_OFFSET
    for b in name:
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h


def all_char(name: bytes) -> int:
    return sum(name)


def stripe_index(hash_type: str, count: int, name: bytes) -> int:
    """The stripe (0 .. count-1) that holds `name`."""
    if count <= 1:
        return 0
    if hash_type == "fnv_1a_64":
        return fnv_1a_64(name) % count
    if hash_type == "all_char":
        return all_char(name) % count
    raise LpError(errno.EINVAL, f"unknown directory hash {hash_type!r} (known: {', '.join(HASHES)})")


def check_hash(hash_type: str) -> str:
    """`hash_type`, or the default for an empty one; EINVAL for one not known."""
    h = hash_type or DEFAULT_HASH
    if h not in HASHES:
        raise LpError(errno.EINVAL, f"unknown directory hash {h!r} (known: {', '.join(HASHES)})")
    return h


@dataclass(frozen=True)
class Stripes:
    """A striped directory's layout: its hash and, per stripe, the directory's FID and MDT
    (stripe 0 is the master itself)."""

    hash_type: str
    fids: tuple[Fid, ...]
    mdts: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.fids)

    def index_of(self, name: bytes) -> int:
        return stripe_index(self.hash_type, self.count, name)

    def shard(self, name: bytes) -> tuple[Fid, int]:
        """The stripe directory that holds `name`, and its MDT."""
        i = self.index_of(name)
        return self.fids[i], self.mdts[i]


@dataclass(frozen=True)
class Place:
    """What a directory's MDT knows of its place in a striped directory."""

    index: int          # this directory's stripe
    count: int
    hash_type: str
    dying: bool         # being removed: no new names

    def check(self, name: bytes) -> None:
        """EREMCHG when `name` belongs to another stripe; ENOENT when the directory is going."""
        if self.dying:
            raise LpError(errno.ENOENT, "the striped directory is being removed")
        i = stripe_index(self.hash_type, self.count, name)
        if i != self.index:
            raise LpError(errno.EREMCHG, f"{name!r} belongs to stripe {i}, not {self.index}")


def encode_default(count: int, hash_type: str) -> bytes:
    return f"{count} {check_hash(hash_type)}".encode()


def decode_default(value: bytes) -> tuple[int, str]:
    """(stripe count, hash) from a default's value; EINVAL for anything else."""
    parts = value.decode("ascii", "replace").split()
    if not 1 <= len(parts) <= 2 or not parts[0].isdigit() or not 1 <= int(parts[0]) <= MAX_STRIPES:
        raise LpError(errno.EINVAL, f"a default directory striping is 'COUNT [HASH]', COUNT 1..{MAX_STRIPES}")
    return int(parts[0]), check_hash(parts[1] if len(parts) == 2 else "")
