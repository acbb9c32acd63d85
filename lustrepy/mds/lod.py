"""Object placement for new files (Lustre's lod): which OSTs a layout's stripes go to.

Round-robin from a rotating start over the active, not-full OSTs that have
precreated objects ready; weighted by free space (without replacement) when
the OSTs are unbalanced by more than `qos_threshold` of the largest free
space, as Lustre's QoS allocator does. Pure: it is handed the OST states and
pool sizes and returns indexes; taking the object ids is the caller's job.
"""

from __future__ import annotations

import errno
import random
import threading
from typing import Sequence

from lustrepy.common.errors import LpError
from lustrepy.common.layout import STRIPE_ALL, Layout
from lustrepy.mds.ostreg import OstState


class Allocator:
    def __init__(self, qos_threshold: float = 0.17, rng: random.Random | None = None) -> None:
        self.qos_threshold = qos_threshold
        self._rng = rng or random.Random()
        self._next = 0
        self._lock = threading.Lock()

    def usable(self, osts: Sequence[OstState], pools: dict[int, int]) -> list[OstState]:
        return [s for s in osts if s.active and not s.full and pools.get(s.index, 0) > 0]

    def choose(self, layout: Layout, osts: Sequence[OstState], pools: dict[int, int]) -> list[int]:
        """OST indexes for a new file's stripes (fewer than asked when fewer are usable)."""
        usable = sorted(self.usable(osts, pools), key=lambda s: s.index)
        if not usable:
            raise LpError(errno.ENOSPC, "no active OST with free space and precreated objects")
        want = len(usable) if layout.stripe_count == STRIPE_ALL else min(layout.stripe_count, len(usable))
        if layout.stripe_offset >= 0:
            start = next((k for k, s in enumerate(usable) if s.index >= layout.stripe_offset), 0)
            return [usable[(start + k) % len(usable)].index for k in range(want)]
        if self._unbalanced(usable) and want < len(usable):
            return self._weighted(usable, want)
        with self._lock:
            start = self._next % len(usable)
            self._next = start + 1
        return [usable[(start + k) % len(usable)].index for k in range(want)]

    def _unbalanced(self, usable: Sequence[OstState]) -> bool:
        free = [s.statfs.bavail * s.statfs.bsize for s in usable]
        top = max(free)
        return top > 0 and (top - min(free)) > self.qos_threshold * top

    def _weighted(self, usable: Sequence[OstState], want: int) -> list[int]:
        pool = list(usable)
        out: list[int] = []
        while len(out) < want:
            weights = [max(1, s.statfs.bavail) for s in pool]
            pick = self._rng.choices(range(len(pool)), weights=weights)[0]
            out.append(pool.pop(pick).index)
        return out
