"""The FID location database as every node sees it (Lustre's FLDB): which MDT holds the inodes
of a FID sequence, and the MDTs of a file system.

MDT0 keeps the database (mds/fld.py) and hands each MDT its ranges; clients, OSSes and lfsctl
hold a copy (`FldView`) fetched from any MDT and look FIDs up in it. The root's sequence
(ROOT_SEQ) and everything below FIRST_SEQ is MDT0's.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from lustrepy.common.fid import FIRST_SEQ, Fid

SUPER_SEQ = 1 << 32         # sequences in one range an MDT gets (2**49 files at SEQ_WIDTH oids each)
_UUID_RE = re.compile(r"^(?P<fs>[A-Za-z0-9_]{1,8})-MDT(?P<idx>[0-9a-f]{4})_UUID$")


@dataclass(frozen=True, slots=True)
class SeqRange:
    """Sequences [start, end) live on MDT `mdt`."""

    start: int
    end: int
    mdt: int

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and self.start <= seq < self.end


@dataclass(frozen=True, slots=True)
class MdtInfo:
    """One MDT of a file system, as MDT0 knows it."""

    index: int
    uuid: str
    address: str
    active: bool = True


def mdt_uuid(fsname: str, index: int) -> str:
    return f"{fsname}-MDT{index:04x}_UUID"


def mdt_name(fsname: str, index: int) -> str:
    return f"{fsname}-MDT{index:04x}"


def index_of_uuid(uuid: str) -> int | None:
    """The MDT index a uuid like `fs-MDT0001_UUID` names (None: not an MDT uuid)."""
    m = _UUID_RE.match(uuid)
    return int(m.group("idx"), 16) if m else None


def first_range() -> SeqRange:
    """MDT0's own range: where a file system of one MDT always named its files."""
    return SeqRange(FIRST_SEQ, FIRST_SEQ + SUPER_SEQ, 0)


class FldView:
    """Ranges sorted by start: which MDT a sequence lives on. Immutable once made."""

    def __init__(self, ranges: list[SeqRange] | tuple[SeqRange, ...], mdts: tuple[MdtInfo, ...] = ()) -> None:
        self.ranges = tuple(sorted(ranges, key=lambda r: r.start))
        self._starts = [r.start for r in self.ranges]
        self.mdts = tuple(sorted(mdts, key=lambda m: m.index))

    def mdt_of_seq(self, seq: int) -> int | None:
        """The MDT of this sequence; None when no range known here holds it (fetch again)."""
        if seq < FIRST_SEQ:
            return 0
        i = bisect.bisect_right(self._starts, seq) - 1
        if i >= 0 and seq in self.ranges[i]:
            return self.ranges[i].mdt
        return None

    def mdt_of(self, fid: Fid) -> int | None:
        return self.mdt_of_seq(fid.seq)

    def count(self) -> int:
        """MDTs known (at least 1: MDT0)."""
        return max(1, len(self.mdts))
