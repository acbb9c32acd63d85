"""How the MDS uses its lock server: locks it holds itself while it changes
the namespace, and locks it grants to clients with intent replies.

While the MDS executes an update it holds EX inode-bits locks ("local" locks,
owned by the MDS) on every inode whose cached state the update changes; that
sends blocking callbacks to clients caching those bits, so no client keeps
serving a name, attribute or listing the update made stale. Local locks are
taken in FID order, so two updates never deadlock on each other.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

from lustrepy.common.fid import Fid
from lustrepy.ldlm.inodebits import IBit
from lustrepy.ldlm.lockd import LockServer
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import ResId
from lustrepy.ldlm.wire import mode_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb

LOCAL_OWNER = "mds-local"

ALL_BUT_OPEN = IBit.LOOKUP | IBit.UPDATE | IBit.LAYOUT | IBit.PERM | IBit.XATTR


def res_of(fid: Fid) -> ResId:
    return ResId(fid.seq, fid.oid, fid.ver)


class MdsLocks:
    def __init__(self, lockd: LockServer) -> None:
        self.lockd = lockd

    @contextmanager
    def update(self, items: Iterable[tuple[Fid | None, int]], on_behalf: str = "") -> Iterator[None]:
        """Hold EX locks with the given bits on each FID for the duration of an update.

        Locks of `on_behalf` (the client whose request this is) are not called
        back: that client updates its own caches from the reply.
        """
        merged: dict[Fid, int] = {}
        for fid, bits in items:
            if fid is not None and bits:
                merged[fid] = merged.get(fid, 0) | bits
        taken: list[int] = []
        try:
            for fid in sorted(merged):
                lk = self.lockd.enqueue(LOCAL_OWNER, res_of(fid), LockMode.EX, ibits=merged[fid], local=True,
                                        on_behalf=on_behalf)
                taken.append(lk.cookie)
            yield
        finally:
            if taken:
                self.lockd.cancel(LOCAL_OWNER, taken)

    def grant(self, client_id: str, fid: Fid, mode: LockMode, bits: int) -> cpb.LockDesc:
        """Grant a client lock (blocking while a conflicting update runs) and describe it."""
        lk = self.lockd.enqueue(client_id, res_of(fid), mode, ibits=bits)
        return cpb.LockDesc(cookie=lk.cookie, res=cpb.ResId(n0=fid.seq, n1=fid.oid, n2=fid.ver),
                            mode=mode_to_pb(mode), ibits=bits, owner=client_id)

    def cancel(self, client_id: str, cookie: int) -> None:
        self.lockd.cancel(client_id, [cookie])
