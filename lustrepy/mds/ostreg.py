"""The MDS's registry of OSTs: who is registered, who is alive, how full each is.

An OSS announces itself at start and then heartbeats with its statfs; an OST
whose heartbeats stop for `timeout` seconds is inactive (no new objects go to
it) and becomes active again with its next heartbeat. The persistent part
(index -> uuid, address) lives in the store; liveness lives here, in memory.
Never does network I/O.
"""

from __future__ import annotations

import threading
import time
from typing import Callable
from dataclasses import dataclass, replace

from lustrepy.common.records import Statfs

FULL_RESERVE = 0.02     # an OST with less than 2% available counts as full


@dataclass(frozen=True, slots=True)
class OstState:
    index: int
    uuid: str
    address: str
    statfs: Statfs
    last_seen: float        # monotonic
    boot_id: int = 0
    active: bool = True
    node: str = ""              # the host it runs on: two mirrors of a file never share one
    domain: str = ""            # its declared failure domain ("": none)

    @property
    def avail_bytes(self) -> int:
        return self.statfs.bavail * self.statfs.bsize

    @property
    def full(self) -> bool:
        s = self.statfs
        return s.blocks > 0 and s.bavail <= s.blocks * FULL_RESERVE


class OstRegistry:
    """Thread-safe view of the OSTs; `sweep` (called periodically) applies the timeout."""

    def __init__(self, timeout: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._osts: dict[int, OstState] = {}

    def known(self, index: int, uuid: str, address: str) -> None:
        """An OST from the persistent registry, not yet heard from since this MDS started."""
        with self._lock:
            if index not in self._osts:
                self._osts[index] = OstState(index, uuid, address, Statfs(), last_seen=-1e9, active=False)

    def heartbeat(self, index: int, uuid: str, address: str, statfs: Statfs, boot_id: int,
                  placement: tuple[str, str] = ("", "")) -> tuple[bool, bool]:
        """Record a heartbeat (placement: the OSS's node and failure domain); returns (became_active, restarted)."""
        now = self._clock()
        node = placement[0] or address.rpartition(":")[0]
        with self._lock:
            old = self._osts.get(index)
            self._osts[index] = OstState(index, uuid, address, statfs, now, boot_id, True, node, placement[1])
        became = old is None or not old.active
        restarted = old is not None and old.boot_id not in (0, boot_id)
        return became, restarted

    def sweep(self) -> list[int]:
        """Mark silent OSTs inactive; returns the indexes that just went inactive."""
        now = self._clock()
        gone: list[int] = []
        with self._lock:
            for i, st in self._osts.items():
                if st.active and now - st.last_seen > self.timeout:
                    self._osts[i] = replace(st, active=False)
                    gone.append(i)
        return gone

    def get(self, index: int) -> OstState | None:
        with self._lock:
            return self._osts.get(index)

    def all(self) -> list[OstState]:
        with self._lock:
            return sorted(self._osts.values(), key=lambda s: s.index)

    def active(self) -> list[OstState]:
        return [s for s in self.all() if s.active]

    def count(self) -> int:
        with self._lock:
            return len(self._osts)

    def age(self, st: OstState) -> float:
        return max(0.0, self._clock() - st.last_seen)
