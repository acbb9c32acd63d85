"""The extent lock policy (as Lustre's ldlm_extent.c), used by the OSS.

An OSS lock names an object and an inclusive byte range [start, end]; end ==
EOF means "to the end of the object, whatever its size". A granted PR/PW lock
is grown past what was asked when nothing incompatible lies beyond it, so a
streaming writer takes one lock. Pure rules; never touches resources or queues.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Iterable

from lustrepy.common.errors import LpError
from lustrepy.ldlm.modes import LockMode, compatible

EOF = 2**64 - 1

GROWABLE = frozenset({LockMode.PR, LockMode.PW})


@dataclass(frozen=True, slots=True)
class Extent:
    start: int
    end: int        # inclusive

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end <= EOF:
            raise ValueError(f"bad extent [{self.start}, {self.end}]")

    def overlaps(self, other: Extent) -> bool:
        return self.start <= other.end and other.start <= self.end

    def contains(self, other: Extent) -> bool:
        return self.start <= other.start and other.end <= self.end

    def __str__(self) -> str:
        return f"[{self.start}, {'EOF' if self.end == EOF else self.end}]"


WHOLE = Extent(0, EOF)


def parse_extent(extent: tuple[int, int] | Extent) -> Extent:
    """An Extent from a (start, end) pair; LpError(EINVAL) when it is not a valid one."""
    if isinstance(extent, Extent):
        return extent
    try:
        start, end = extent
        return Extent(int(start), int(end))
    except (TypeError, ValueError) as e:
        raise LpError(errno.EINVAL, f"bad extent {extent!r}: {e}") from None


def conflict(mode_a: LockMode, ext_a: Extent, mode_b: LockMode, ext_b: Extent) -> bool:
    """Two extent locks conflict when their ranges overlap and their modes do."""
    return ext_a.overlaps(ext_b) and not compatible(mode_a, mode_b)


def grow(mode: LockMode, want: Extent, others: Iterable[tuple[LockMode, Extent]]) -> Extent:
    """The extent to grant for `want`: its end pushed as far as possible.

    `others` are every other lock on the resource, granted or waiting. The
    part added beyond `want.end` never overlaps one whose mode is incompatible
    with `mode`. Only PR and PW locks grow; the start never moves.
    """
    if mode not in GROWABLE or want.end == EOF:
        return want
    end = EOF
    for other_mode, other in others:
        if other.end <= want.end or compatible(mode, other_mode):
            continue
        # `other` reaches past the request: stop just before it (or not grow at all).
        end = min(end, max(want.end, other.start - 1))
        if end == want.end:
            break
    return Extent(want.start, end)
