"""Who calls: a process's credentials with its supplementary groups.

FUSE passes a request's uid and gid only; the groups come from
/proc/PID/status. They are read once a second at most per (pid, uid, gid) (a
create loop would otherwise read /proc for every file), and a read happens in
a worker thread, never on the thread that serves FUSE requests. Used from
that thread only (fs.py), so it takes no lock.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable

from lustrepy.client.replies import Caller
from lustrepy.common.records import Cred

GROUPS_TTL = 1.0        # seconds a process's supplementary groups are reused before /proc is read again
MAX_KEPT = 4096         # (pid, uid, gid) kept at most; more: the cache starts again


def read_groups(pid: int) -> tuple[int, ...]:
    """The supplementary groups of process `pid` (none when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Groups:"):
                    return tuple(int(g) for g in line.split()[1:])
    except (OSError, ValueError):
        pass
    return ()


class Callers:
    def __init__(self, run: Callable[[Callable[[], tuple[int, ...]]], Awaitable[tuple[int, ...]]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._run = run             # runs a blocking call in a worker thread
        self._clock = clock
        self._groups: dict[tuple[int, int, int], tuple[float, tuple[int, ...]]] = {}

    async def of(self, pid: int, uid: int, gid: int) -> Caller:
        key = (pid, uid, gid)
        now = self._clock()
        hit = self._groups.get(key)
        if hit is not None and now - hit[0] < GROUPS_TTL:
            groups = hit[1]
        else:
            groups = await self._run(lambda: read_groups(pid))
            if len(self._groups) >= MAX_KEPT:
                self._groups.clear()
            self._groups[key] = (now, groups)
        return Caller(pid, Cred(uid, gid, groups))
