"""Glimpse collection, sans-I/O: which glimpse callbacks are out for which request,
and the LVBs that came back.

A glimpse asks the PW/EX holders of an object for their current view of it
(size, times) without revoking their locks, as Lustre's OSS does for a stat.
One lock per holder is asked (the one reaching furthest). Holders that have
not answered when the asker stops waiting are skipped, never evicted.

Pure bookkeeping: this module never does I/O, never reads a clock and never
waits (lockd waits, with its own deadline); it is not thread-safe (lockd
serialises calls through core.LockCore).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Iterable

from lustrepy.common.records import Lvb
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import Lock

GLIMPSE_MODES = frozenset({LockMode.PW, LockMode.EX})


def merge_lvb(a: Lvb, b: Lvb) -> Lvb:
    """The newest view of an object from two LVBs: the max of each field."""
    return Lvb(max(a.size, b.size), max(a.blocks, b.blocks), max(a.mtime_ns, b.mtime_ns),
               max(a.atime_ns, b.atime_ns), max(a.ctime_ns, b.ctime_ns))


def writers(granted: Iterable[Lock]) -> list[Lock]:
    """The locks to glimpse among `granted`: one PW/EX lock per client owner, the one reaching furthest."""
    best: dict[str, Lock] = {}
    for lk in granted:
        if lk.local or lk.mode not in GLIMPSE_MODES:
            continue
        cur = best.get(lk.owner)
        end = lk.extent.end if lk.extent is not None else 0
        if cur is None or (cur.extent is not None and cur.extent.end < end):
            best[lk.owner] = lk
    return list(best.values())


@dataclass(frozen=True, slots=True)
class GlimpseResult:
    """What one glimpse gathered: the merged LVB and how many holders stayed silent."""

    lvb: Lvb
    silent: int


@dataclass(slots=True)
class _Glimpse:
    pending: set[int] = field(default_factory=set)
    answers: list[Lvb] = field(default_factory=list)


class Glimpses:
    """The glimpses of one lock server that are still collecting answers."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._open: dict[int, _Glimpse] = {}
        self._by_callback: dict[int, int] = {}      # callback id -> glimpse id

    def open(self) -> int:
        """A new glimpse with nothing asked yet: its id."""
        gid = next(self._ids)
        self._open[gid] = _Glimpse()
        return gid

    def asked(self, gid: int, callback_id: int) -> None:
        """Callback `callback_id` went out for glimpse `gid`."""
        self._open[gid].pending.add(callback_id)
        self._by_callback[callback_id] = gid

    def complete(self, gid: int) -> bool:
        """True when glimpse `gid` waits for no answer (or is unknown)."""
        g = self._open.get(gid)
        return g is None or not g.pending

    def answer(self, callback_id: int, lvb: Lvb | None) -> int | None:
        """A holder answered (lvb None: it had nothing to say). The glimpse this completes, if any.

        An answer to no glimpse that is still open (late, or unknown) is ignored.
        """
        gid = self._by_callback.pop(callback_id, None)
        if gid is None:
            return None
        g = self._open[gid]
        g.pending.discard(callback_id)
        if lvb is not None:
            g.answers.append(lvb)
        return gid if not g.pending else None

    def close(self, gid: int, base: Lvb) -> GlimpseResult:
        """End glimpse `gid`: `base` merged with every answer; later answers are ignored."""
        g = self._open.pop(gid, None)
        if g is None:
            return GlimpseResult(base, 0)
        for cb in g.pending:
            self._by_callback.pop(cb, None)
        lvb = base
        for other in g.answers:
            lvb = merge_lvb(lvb, other)
        return GlimpseResult(lvb, len(g.pending))

    def open_ids(self) -> list[int]:
        return list(self._open)

    def __len__(self) -> int:
        return len(self._open)
