"""Object placement for new files (Lustre's lod): which OSTs a layout's stripes go to.

Round-robin from a rotating start over the active, not-full OSTs that have
precreated objects ready; weighted by free space (without replacement) when
the OSTs are unbalanced by more than `qos_threshold` of the largest free
space, as Lustre's QoS allocator does.

Nearly full OSTs are left alone while others have room (Lustre's reserved
space, `reserved_mb_low`): an OST with less than `reserved` bytes available
gets no new objects as long as some active OST has at least that much, and a
file asking for more stripes than there are OSTs with room gets fewer. Only
when every OST is that full do the nearly full ones (not the full ones) take
objects again. A layout that names its first OST (`stripe_offset`, `lfsctl
setstripe -i`) is an explicit choice: any OST that is not full serves it.

Mirrors of one file (`choose_mirrors`) never share an OSS node, and go to
different failure domains while enough domains have room (an OSS that
declares none is a domain of its own); a file gets fewer mirrors, not two on
one node, when there are not enough nodes. Every mirror of a file has the
same stripe count (object k of each holds the same bytes), so a mirror that
cannot get that many OSTs is not made.

Pure: it is handed the OST states and pool sizes and returns indexes; taking
the object ids is the caller's job.
"""

from __future__ import annotations

import errno
import random
import threading
from typing import Sequence

from lustrepy.common.errors import LpError
from dataclasses import replace

from lustrepy.common.layout import STRIPE_ALL, Layout
from lustrepy.mds.ostreg import OstState

DEFAULT_RESERVED = 64 << 20     # bytes an OST keeps free before new objects go elsewhere


class Allocator:
    def __init__(self, qos_threshold: float = 0.17, reserved: int = DEFAULT_RESERVED,
                 rng: random.Random | None = None) -> None:
        self.qos_threshold = qos_threshold
        self.reserved = reserved
        self._rng = rng or random.Random()
        self._next = 0
        self._domain_turn = 0
        self._lock = threading.Lock()

    def open_osts(self, layout: Layout, osts: Sequence[OstState]) -> list[OstState]:
        """The OSTs new objects of `layout` may go to, pools aside: active and not full and, while
        any such OST has `reserved` bytes available, only those that have."""
        live = [s for s in osts if s.active and not s.full]
        if layout.stripe_offset >= 0:
            return live
        roomy = [s for s in live if s.avail_bytes >= self.reserved]
        return roomy or live

    def usable(self, layout: Layout, osts: Sequence[OstState], pools: dict[int, int]) -> list[OstState]:
        """open_osts() with precreated objects ready."""
        return [s for s in self.open_osts(layout, osts) if pools.get(s.index, 0) > 0]

    def choose(self, layout: Layout, osts: Sequence[OstState], pools: dict[int, int]) -> list[int]:
        """OST indexes for a new file's stripes (fewer than asked when fewer are usable)."""
        usable = sorted(self.usable(layout, osts, pools), key=lambda s: s.index)
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

    def choose_mirrors(self, layout: Layout, osts: Sequence[OstState], pools: dict[int, int], want: int,
                       avoid: Sequence[OstState] = ()) -> list[list[int]]:
        """OST indexes for each of `want` new mirrors of a file (fewer when the nodes do not allow
        them all; at least one, else ENOSPC). `avoid`: OSTs the file's other mirrors use."""
        nodes = {s.node for s in avoid}
        domains = {domain_of(s) for s in avoid}
        out: list[list[int]] = []
        by_index = {s.index: s for s in osts}
        if layout.stripe_count == STRIPE_ALL:       # all OSTs, shared out between the mirrors
            room = len(self.usable(layout, [s for s in osts if s.node not in nodes], pools))
            layout = replace(layout, stripe_count=max(1, room // max(want, 1)))
        for _ in range(want):
            free = [s for s in osts if s.node not in nodes]
            pick = self._apart(layout, [s for s in free if domain_of(s) not in domains], pools) or free
            if not self.usable(layout, pick, pools):
                break
            chosen = self.choose(layout if not out else replace(layout, stripe_offset=-1), pick, pools)
            if out and len(chosen) < len(out[0]):
                break                       # not enough OSTs left for a whole mirror
            if not out:
                layout = replace(layout, stripe_count=len(chosen))
            out.append(chosen)
            nodes.update(by_index[i].node for i in chosen)
            domains.update(domain_of(by_index[i]) for i in chosen)
        if not out:
            raise LpError(errno.ENOSPC, "no active OST with free space and precreated objects on another node")
        return out

    def _apart(self, layout: Layout, osts: list[OstState], pools: dict[int, int]) -> list[OstState]:
        """The OSTs of one failure domain among `osts` with room for a whole mirror (the domains
        taken in turn), else all of `osts` when they have room together, else none."""
        by_domain: dict[str, list[OstState]] = {}
        for s in self.usable(layout, osts, pools):
            by_domain.setdefault(domain_of(s), []).append(s)
        whole = [g for _, g in sorted(by_domain.items()) if len(g) >= layout.stripe_count]
        if whole:
            with self._lock:
                self._domain_turn += 1
                return whole[self._domain_turn % len(whole)]
        return osts if sum(map(len, by_domain.values())) >= layout.stripe_count else []

    def _unbalanced(self, usable: Sequence[OstState]) -> bool:
        free = [s.avail_bytes for s in usable]
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


def domain_of(st: OstState) -> str:
    """The failure domain of an OST: the declared one, else its node alone."""
    return st.domain or f"node:{st.node}"
