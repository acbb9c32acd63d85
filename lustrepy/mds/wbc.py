"""Metadata write-back cache grants and the adaptive switch, on the MDS.

A WBC lock is an EX lock on a directory's UPDATE|PERM bits, granted to one
client with a create (or a mkdir) when nobody else uses the directory. It is
an ordinary lock of the MDS lock server, taken so that it never conflicts
with its owner's other locks: the owner goes on caching and replaying its
update records under it, while any other client's request on the directory
conflicts with it, which sends the holder a blocking callback (it flushes its
records and cancels) before that request is served.

Contention is counted per directory: blocking callbacks on the directory
caused by a client other than the holder (WBC revocations among them), and
WBC requests refused because another client holds locks there. `threshold`
of them within `window_s` make the directory contended: no WBC grant until
`hold_s` have passed without a new one, so everyone is served on the server
side, one intent per operation (Lustre's contention detection, LU-12550).
While contended, a create by another client than the last one keeps it
contended as a conflict would: clients then get no UPDATE lock on it
(intent.py), so its creates call nothing back and lock conflicts stop, though
the clients still take turns there.

Lock order: the lock server may call `on_blocking` with its mutex held; this
module never calls the lock server while holding its own mutex.
"""

from __future__ import annotations

import errno
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.ldlm import flags as lfl
from lustrepy.ldlm.inodebits import IBit
from lustrepy.ldlm.lockd import LockServer
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import Lock, ResId
from lustrepy.ldlm.wire import mode_to_pb
from lustrepy.mds.locking import LOCAL_OWNER
from lustrepy.rpc.v1 import common_pb2 as cpb

WBC_BITS = IBit.UPDATE | IBit.PERM
MAX_TRACKED = 65536         # directories with state kept; idle ones are forgotten past this


@dataclass(frozen=True, slots=True)
class ContentionPolicy:
    threshold: int = 16         # conflicts ...
    window_s: float = 4.0       # ... within this many seconds make a directory contended
    hold_s: float = 30.0        # for this long after the last conflict

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.window_s <= 0 or self.hold_s < 0:
            raise ValueError("contention threshold and window must be positive, hold not negative")


@dataclass(frozen=True, slots=True)
class WbcInfo:
    """What the MDS knows of one directory's WBC state."""

    mode: str                   # "wbc-held", "server-side" or "contended"
    holder: str
    contended_for_s: float
    conflicts: int
    grants: int
    revocations: int


@dataclass
class _Dir:
    events: deque[float] = field(default_factory=deque)
    contended_until: float = 0.0
    grants: int = 0
    revocations: int = 0
    cookie: int = 0             # the WBC lock, 0 when none was granted
    holder: str = ""
    creator: str = ""           # the client of the last create there


def _res(fid: Fid) -> ResId:
    return ResId(fid.seq, fid.oid, fid.ver)


class WbcManager:
    """WBC grants, revocation before other clients' requests, and contention per directory."""

    def __init__(self, lockd: LockServer, policy: ContentionPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lockd = lockd
        self.policy = policy or ContentionPolicy()
        self._clock = clock
        self.refused: Callable[[str], bool] = lambda client_id: False    # clients never granted one
        # directories never granted one: names there bind inodes of other MDTs (records replay on one)
        self.elsewhere: Callable[[Fid], bool] = lambda fid: False
        self._mu = threading.Lock()
        self._dirs: dict[ResId, _Dir] = {}
        self._by_cookie: dict[int, ResId] = {}
        self._stats = {"wbc_grants": 0, "wbc_refused": 0, "wbc_revocations": 0, "wbc_contended": 0,
                       "wbc_conflicts": 0}

    # ---- grants -------------------------------------------------------------------

    def try_grant(self, client_id: str, dir_fid: Fid) -> cpb.LockDesc | None:
        """A WBC lock on the directory for the client, or None: contended, used by another
        client, or a client that may not write."""
        if self.refused(client_id) or self.elsewhere(dir_fid):
            return None
        res = _res(dir_fid)
        if self.holder(dir_fid) == client_id:
            return None         # it has one already (asked of the lock server outside our mutex)
        now = self._clock()
        with self._mu:
            d = self._dirs.get(res)
            if d is not None and self._contended_locked(d, now):
                self._stats["wbc_refused"] += 1
                return None
        try:
            lk = self.lockd.enqueue(client_id, res, LockMode.EX, ibits=WBC_BITS,
                                    flags=lfl.BLOCK_NOWAIT | lfl.NO_EXPANSION, on_behalf=client_id)
        except LpError as e:
            if e.errno != errno.EAGAIN:
                raise
            with self._mu:
                self._stats["wbc_refused"] += 1
                self._conflict_locked(self._entry_locked(res, now), now)
            return None
        with self._mu:
            d = self._entry_locked(res, now)
            d.cookie, d.holder = lk.cookie, client_id
            d.grants += 1
            self._by_cookie[lk.cookie] = res
            self._stats["wbc_grants"] += 1
        return cpb.LockDesc(cookie=lk.cookie, res=cpb.ResId(n0=res.n0, n1=res.n1, n2=res.n2),
                            mode=mode_to_pb(LockMode.EX), ibits=WBC_BITS, owner=client_id)

    def holder(self, dir_fid: Fid) -> str:
        """The client holding a WBC lock on the directory, or ""."""
        with self._mu:
            d = self._dirs.get(_res(dir_fid))
            cookie, holder = (d.cookie, d.holder) if d is not None else (0, "")
        if not cookie:
            return ""
        lk = self.lockd.lock(cookie)
        if lk is None or not lk.granted:
            with self._mu:
                if d is not None and d.cookie == cookie:
                    d.cookie, d.holder = 0, ""
                self._by_cookie.pop(cookie, None)
            return ""
        return holder

    def covers(self, client_id: str, fid: Fid) -> bool:
        """The client holds a WBC lock on this directory: no other client caches its UPDATE|PERM bits."""
        return bool(fid.seq) and self.holder(fid) == client_id

    def outside(self, client_id: str, locks: list[tuple[Fid | None, int]]) -> list[tuple[Fid | None, int]]:
        """The local locks an update by `client_id` needs beyond its own WBC locks.

        A WBC lock already keeps every other client from caching its directory's UPDATE|PERM
        bits. Taking them again would queue behind a request that is itself waiting for the
        WBC lock to be given back, while giving it back waits for this very update."""
        out = []
        for fid, bits in locks:
            if fid is not None and bits & WBC_BITS and self.covers(client_id, fid):
                bits &= ~WBC_BITS
            if bits:
                out.append((fid, bits))
        return out

    def revoke_for(self, client_id: str, dir_fid: Fid) -> None:
        """Before serving another client in the directory: make its WBC holder flush and cancel.

        Blocks until the holder has cancelled (or was evicted for not doing so)."""
        holder = self.holder(dir_fid)
        if not holder or holder == client_id:
            return
        lk = self.lockd.enqueue(LOCAL_OWNER, _res(dir_fid), LockMode.PR, ibits=WBC_BITS, local=True,
                                on_behalf=client_id)
        self.lockd.cancel(LOCAL_OWNER, [lk.cookie])

    # ---- contention ---------------------------------------------------------------

    def on_blocking(self, holder: Lock, conflicting: Lock) -> None:
        """Lock server hook (its mutex held): a blocking callback went to `holder`."""
        other = conflicting.on_behalf or conflicting.owner
        if other == holder.owner:
            return
        with self._mu:
            res = self._by_cookie.get(holder.cookie)
            d = self._dirs.get(res) if res is not None else None
            if d is not None:
                d.revocations += 1
                self._stats["wbc_revocations"] += 1
                self._conflict_locked(d, self._clock())
            elif holder.ibits & WBC_BITS and holder.res in self._dirs:
                self._conflict_locked(self._dirs[holder.res], self._clock())

    def track(self, dir_fid: Fid, client_id: str = "") -> None:
        """Count conflicts on a directory clients create in, WBC or not. While it is contended,
        a create by another client than the last one keeps it so: its attributes are then
        served without UPDATE locks (intent.py), so no lock conflicts there any more, but
        clients still take turns in it."""
        res = _res(dir_fid)
        with self._mu:
            now = self._clock()
            d = self._entry_locked(res, now)
            if client_id:
                if d.creator and d.creator != client_id and d.contended_until > now:
                    d.contended_until = now + self.policy.hold_s
                d.creator = client_id

    def contended(self, dir_fid: Fid) -> bool:
        """Clients keep conflicting there: locks on it would only be called back again."""
        with self._mu:
            d = self._dirs.get(_res(dir_fid))
            return d is not None and d.contended_until > self._clock()

    def _entry_locked(self, res: ResId, now: float) -> _Dir:
        d = self._dirs.get(res)
        if d is None:
            if len(self._dirs) >= MAX_TRACKED:
                horizon = now - self.policy.window_s
                for k in [k for k, v in self._dirs.items() if not v.cookie and v.contended_until <= now
                          and (not v.events or v.events[-1] < horizon)]:
                    del self._dirs[k]
            d = self._dirs[res] = _Dir()
        return d

    def _conflict_locked(self, d: _Dir, now: float) -> None:
        self._stats["wbc_conflicts"] += 1
        p = self.policy
        if 0 < d.contended_until <= now:        # a contended spell ended: count afresh
            d.events.clear()
            d.contended_until = 0.0
        d.events.append(now)
        while d.events and d.events[0] < now - p.window_s:
            d.events.popleft()
        if d.contended_until > now:
            d.contended_until = now + p.hold_s      # conflicts keep it contended
        elif len(d.events) >= p.threshold:
            d.contended_until = now + p.hold_s
            self._stats["wbc_contended"] += 1

    def _contended_locked(self, d: _Dir, now: float) -> bool:
        return d.contended_until > now

    # ---- introspection -------------------------------------------------------------

    def info(self, dir_fid: Fid) -> WbcInfo:
        holder = self.holder(dir_fid)
        now = self._clock()
        with self._mu:
            d = self._dirs.get(_res(dir_fid)) or _Dir()
            while d.events and d.events[0] < now - self.policy.window_s:
                d.events.popleft()
            left = max(0.0, d.contended_until - now)
            mode = "wbc-held" if holder else ("contended" if left > 0 else "server-side")
            return WbcInfo(mode, holder, left, len(d.events), d.grants, d.revocations)

    def statistics(self) -> dict[str, int]:
        with self._mu:
            return {**self._stats, "wbc_held": sum(1 for d in self._dirs.values() if d.cookie)}

    def forget_client(self, client_id: str) -> None:
        """An evicted or departed client's grants are gone with its locks."""
        with self._mu:
            for d in self._dirs.values():
                if d.holder == client_id:
                    self._by_cookie.pop(d.cookie, None)
                    d.cookie, d.holder = 0, ""
