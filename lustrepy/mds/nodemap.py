"""What the MDS makes of a client's credentials: root squash and read-only clients (Lustre's nodemap, reduced).

A client's name is its client id up to the first colon, which rpc.authz has
bound to the name in its certificate. `root_squash = "UID:GID"` maps uid 0
and gid 0 of every client not named in `nosquash_clients` to UID and GID (and
drops group 0 from its groups); `readonly_clients` may read but never change
the namespace: an update, a creation or an open for writing is EROFS, and no
write-back cache is granted. The credentials a request states are never
taken as they are: every path builds them through `cred()`. Read and set as
MDS tunables (mds.root_squash, mds.nosquash_clients, mds.readonly_clients).
"""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass, field

from lustrepy.common.errors import LpError
from lustrepy.common.records import Cred

MAX_ID = 0xFFFFFFFE


def client_name(client_id: str) -> str:
    """The node a client id speaks for: its certificate's name."""
    return client_id.partition(":")[0]


def parse_squash(text: str) -> tuple[int, int] | None:
    """'UID:GID' -> (uid, gid); '' (or 'off') -> None; LpError EINVAL otherwise."""
    text = text.strip()
    if text in ("", "off", "none"):
        return None
    uid, sep, gid = text.partition(":")
    if not sep or not uid.isdigit() or not gid.isdigit() or int(uid) > MAX_ID or int(gid) > MAX_ID:
        raise LpError(errno.EINVAL, f"bad root_squash {text!r}: UID:GID (numbers), or empty for none")
    return int(uid), int(gid)


def parse_names(text: str) -> frozenset[str]:
    """'a,b, c' -> {'a', 'b', 'c'}; names as certificates allow."""
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    for n in names:
        if len(n) > 64 or not all(c.isalnum() or c in "._-" for c in n):
            raise LpError(errno.EINVAL, f"bad client name {n!r} in list")
    return names


@dataclass
class Nodemap:
    """The three settings, changed at run time under a lock and read without one (each a
    single reference)."""

    squash: tuple[int, int] | None = None
    nosquash: frozenset[str] = frozenset()
    readonly_names: frozenset[str] = frozenset()
    _mu: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_squash(self, text: str) -> None:
        v = parse_squash(text)
        with self._mu:
            self.squash = v

    def set_nosquash(self, text: str) -> None:
        v = parse_names(text)
        with self._mu:
            self.nosquash = v

    def set_readonly(self, text: str) -> None:
        v = parse_names(text)
        with self._mu:
            self.readonly_names = v

    def cred(self, client_id: str, cred: Cred) -> Cred:
        """The credentials to act with for this client's stated ones."""
        sq = self.squash
        if sq is None or (cred.uid != 0 and cred.gid != 0 and 0 not in cred.groups):
            return cred
        if client_name(client_id) in self.nosquash:
            return cred
        return Cred(sq[0] if cred.uid == 0 else cred.uid, sq[1] if cred.gid == 0 else cred.gid,
                    tuple(g for g in cred.groups if g != 0))

    def readonly(self, client_id: str) -> bool:
        return bool(self.readonly_names) and client_name(client_id) in self.readonly_names

    def check_writable(self, client_id: str) -> None:
        if self.readonly(client_id):
            raise LpError(errno.EROFS, f"client {client_name(client_id)} is read-only")
