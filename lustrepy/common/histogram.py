"""Latency histograms with fixed log-scale buckets, cheap enough to fill on every RPC.

A value in microseconds goes to a bucket found with one bit_length: values
0-7 have a bucket each, above that every power of two is split in four, so a
bucket is at most 25% wide and 128 buckets reach past two hours. Servers
ship the raw counts (trailing zeros trimmed); readers subtract two snapshots
to get the histogram of an interval and take percentiles from it. The bucket
layout is part of the wire contract (OpStats.hist): change it only together
with a new field. Pure functions and lists; no locking, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

SUB_BITS = 2                    # 4 buckets per power of two
SUB = 1 << SUB_BITS
NBUCKETS = 128
_EXACT = 2 * SUB                # values below this have a bucket each


def bucket(us: int) -> int:
    """The bucket of a value (microseconds; negative counts as 0)."""
    if us < _EXACT:
        return us if us > 0 else 0
    e = us.bit_length() - SUB_BITS - 1
    i = (e << SUB_BITS) + (us >> e)
    return i if i < NBUCKETS else NBUCKETS - 1


def bounds(i: int) -> tuple[int, int]:
    """The values bucket i holds, inclusive."""
    if i < _EXACT:
        return i, i
    e = (i >> SUB_BITS) - 1
    m = (i & (SUB - 1)) + SUB
    return m << e, ((m + 1) << e) - 1


def new() -> list[int]:
    return [0] * NBUCKETS


def trimmed(counts: Sequence[int]) -> list[int]:
    """Counts without trailing empty buckets (what goes on the wire)."""
    n = len(counts)
    while n and not counts[n - 1]:
        n -= 1
    return list(counts[:n])


def subtract(after: Sequence[int], before: Sequence[int]) -> list[int]:
    """The histogram of what happened between two snapshots (a restart in between: `after` alone)."""
    n = max(len(after), len(before))
    a = list(after) + [0] * (n - len(after))
    b = list(before) + [0] * (n - len(before))
    d = [x - y for x, y in zip(a, b, strict=True)]
    return a if any(x < 0 for x in d) else d


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-th percentile (0 < q <= 100), interpolated inside its bucket; None when empty."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q / 100 * total
    seen = 0
    for i, c in enumerate(counts):
        if c and seen + c >= rank:
            lo, hi = bounds(i)
            return lo + (hi - lo) * max(0.0, min(1.0, (rank - seen) / c))
        seen += c
    return float(bounds(len(counts) - 1)[1])
