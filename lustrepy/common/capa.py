"""Object capabilities: the MDS's signed permission for one client to read or write one OST object.

An OSS serves an object's bytes only to a request that carries a capability
for that object: issued by the MDS to that client (its certificate's name),
for that OST and object, for reading or for reading and writing, until an
expiry time; signed with an HMAC-SHA256 key the MDS shares with its OSSes
(sent in the reply to each heartbeat over mutual TLS) and replaces every
`ROTATE_S` seconds. The OSS keeps the last few keys, so a capability stays good
until its own expiry across a rotation; one signed with a key it no longer
knows, or past its expiry, is EKEYEXPIRED (the client fetches new ones and
sends again), one whose signature does not match, or absent, is EACCES.

With several MDTs each signs with keys of its own, and one OSS holds them all:
a key id carries its MDT's index in its top bits ((mdt << MDT_SHIFT) | n), so
the OSS keeps the last KEEP_KEYS of every MDT, one MDT's rotations never push
out another's keys, and a capability names by its key id the MDT that signed it.
"""

from __future__ import annotations

import errno
import hmac
import secrets
import struct
import threading
import time
from dataclasses import dataclass

from lustrepy.common.errors import LpError
from lustrepy.common.objid import valid_mdt

READ = 1
WRITE = 2                       # writing (and punching) includes reading
LIFETIME_S = 3600.0             # a capability's life from its issue
ROTATE_S = 1800.0               # a key signs new capabilities this long
KEEP_KEYS = 4                   # keys of one MDT an OSS still accepts (older ones expired every capability they signed)
MDT_SHIFT = 24                  # a key id is (mdt << MDT_SHIFT) | n: 256 MDTs fit the 32 bits of an id
_N_SPACE = 1 << MDT_SHIFT
MAC_BYTES = 16
_FIELDS = struct.Struct("!IQQIQ")   # key id, OST index, object id, mode, expiry (then the client name)


@dataclass(frozen=True, slots=True)
class Capa:
    """One capability, as the client holds it and sends it."""

    ost_index: int
    object_id: int
    mode: int                   # READ or READ | WRITE
    expiry: float               # seconds since the epoch
    key_id: int
    mac: bytes


def _message(client: str, ost_index: int, object_id: int, mode: int, expiry: float, key_id: int) -> bytes:
    return _FIELDS.pack(key_id, ost_index, object_id, mode, int(expiry)) + client.encode()


def mdt_of(key_id: int) -> int:
    """The MDT whose key this id names."""
    return key_id >> MDT_SHIFT


def sign(key: bytes, key_id: int, client: str, ost_index: int, object_id: int, mode: int, expiry: float) -> Capa:
    mac = hmac.digest(key, _message(client, ost_index, object_id, mode, expiry, key_id), "sha256")[:MAC_BYTES]
    return Capa(ost_index, object_id, mode, float(int(expiry)), key_id, mac)


class KeyRing:
    """Capability keys by id: an MDT's (making and rotating them) or an OSS's (as each MDT sent them).

    `mdt` is the MDT whose keys this ring makes (an OSS's ring makes none and holds every MDT's).
    Which keys are the newest goes by the time they were made, not by their ids: the counter in
    an id starts anywhere and wraps, and starts afresh when an MDS restarts (its keys are not kept).
    """

    def __init__(self, mdt: int = 0) -> None:
        if not valid_mdt(mdt):
            raise ValueError(f"MDT index {mdt} out of range")
        self.mdt = mdt
        self._mu = threading.Lock()
        self._keys: dict[int, tuple[bytes, float]] = {}     # id -> (key, made at)
        self._current = -1

    # ---- the MDS side ------------------------------------------------------------------

    def current(self, now: float | None = None) -> tuple[int, bytes]:
        """The key that signs now: a new one when there is none or it is older than ROTATE_S."""
        now = time.time() if now is None else now
        with self._mu:
            k = self._keys.get(self._current)
            if k is None or now - k[1] >= ROTATE_S:
                mine = self._of(self.mdt)
                if mine:        # after the newest, made later than it even if the clock went back
                    n, made = (mine[-1] + 1) % _N_SPACE, max(now, self._keys[mine[-1]][1] + 0.001)
                else:
                    n, made = secrets.randbelow(_N_SPACE), now
                self._current = (self.mdt << MDT_SHIFT) | n
                self._keys[self._current] = (secrets.token_bytes(32), made)
                self._trim(self.mdt)
            return self._current, self._keys[self._current][0]

    def issue(self, client: str, ost_index: int, object_id: int, mode: int, lifetime: float = LIFETIME_S,
              now: float | None = None) -> Capa:
        now = time.time() if now is None else now
        kid, key = self.current(now)
        return sign(key, kid, client, ost_index, object_id, mode, now + lifetime)

    # ---- both sides: the keys themselves ------------------------------------------------

    def export(self) -> list[tuple[int, bytes, float]]:
        """Every key as (id, key, made at), oldest first."""
        with self._mu:
            return [(i, *self._keys[i]) for i in sorted(self._keys, key=lambda i: self._keys[i][1])]

    def load(self, keys: list[tuple[int, bytes, float]]) -> None:
        """Take these keys (an MDT's latest), keeping at most KEEP_KEYS of each MDT, the newest."""
        with self._mu:
            touched = set()
            for i, k, t in keys:
                if len(k) >= 16:
                    self._keys[i] = (bytes(k), t)
                    touched.add(mdt_of(i))
            for mdt in touched:
                self._trim(mdt)
            mine = self._of(self.mdt)
            if mine:
                self._current = mine[-1]

    def known(self, mdt: int | None = None) -> int:
        """How many keys this ring holds (of MDT `mdt` only, when given)."""
        with self._mu:
            return len(self._keys) if mdt is None else len(self._of(mdt))

    def _of(self, mdt: int) -> list[int]:
        """The ids of MDT `mdt`'s keys, oldest first: by the time made, then in the order taken
        (a stable sort of the dict's order). Under _mu."""
        return sorted((i for i in self._keys if mdt_of(i) == mdt), key=lambda i: self._keys[i][1])

    def _trim(self, mdt: int) -> None:
        for old in self._of(mdt)[:-KEEP_KEYS]:
            del self._keys[old]

    # ---- the OSS side ------------------------------------------------------------------

    def check(self, c: Capa, client: str, ost_index: int, object_id: int, mode: int, now: float | None = None) -> None:
        """LpError unless `c` lets `client` act in `mode` on this object now."""
        if c.ost_index != ost_index or c.object_id != object_id:
            raise LpError(errno.EACCES, f"no capability for object {object_id} of OST{ost_index:04x}")
        if c.mode & mode != mode:
            raise LpError(errno.EACCES, f"object {object_id}: the capability allows no writing")
        with self._mu:
            k = self._keys.get(c.key_id)
            heard = k is not None or any(mdt_of(i) == mdt_of(c.key_id) for i in self._keys)
        if not heard:           # this MDT's keys have not come yet: send again in a while
            raise LpError(errno.EINPROGRESS, f"object {object_id}: no capability keys of MDT{mdt_of(c.key_id)} "
                          "here yet")
        if k is None:
            raise LpError(errno.EKEYEXPIRED, f"object {object_id}: capability key {c.key_id} unknown here")
        want = hmac.digest(k[0], _message(client, ost_index, object_id, c.mode, c.expiry, c.key_id),
                           "sha256")[:MAC_BYTES]
        if not hmac.compare_digest(want, c.mac):
            raise LpError(errno.EACCES, f"object {object_id}: forged capability")
        if (time.time() if now is None else now) > c.expiry:
            raise LpError(errno.EKEYEXPIRED, f"object {object_id}: capability expired")
