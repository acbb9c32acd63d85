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

READ = 1
WRITE = 2                       # writing (and punching) includes reading
LIFETIME_S = 3600.0             # a capability's life from its issue
ROTATE_S = 1800.0               # a key signs new capabilities this long
KEEP_KEYS = 4                   # keys an OSS still accepts (older ones expired every capability they signed)
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


def sign(key: bytes, key_id: int, client: str, ost_index: int, object_id: int, mode: int, expiry: float) -> Capa:
    mac = hmac.digest(key, _message(client, ost_index, object_id, mode, expiry, key_id), "sha256")[:MAC_BYTES]
    return Capa(ost_index, object_id, mode, float(int(expiry)), key_id, mac)


class KeyRing:
    """Capability keys by id: the MDS's (making and rotating them) or an OSS's (as the MDS sent them)."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._keys: dict[int, tuple[bytes, float]] = {}     # id -> (key, made at)
        self._current = 0

    # ---- the MDS side ------------------------------------------------------------------

    def current(self, now: float | None = None) -> tuple[int, bytes]:
        """The key that signs now: a new one when there is none or it is older than ROTATE_S."""
        now = time.time() if now is None else now
        with self._mu:
            k = self._keys.get(self._current)
            if k is None or now - k[1] >= ROTATE_S:
                self._current = max(self._keys, default=secrets.randbits(31)) + 1
                self._keys[self._current] = (secrets.token_bytes(32), now)
                for old in sorted(self._keys)[:-KEEP_KEYS]:
                    del self._keys[old]
            return self._current, self._keys[self._current][0]

    def issue(self, client: str, ost_index: int, object_id: int, mode: int, lifetime: float = LIFETIME_S,
              now: float | None = None) -> Capa:
        now = time.time() if now is None else now
        kid, key = self.current(now)
        return sign(key, kid, client, ost_index, object_id, mode, now + lifetime)

    # ---- both sides: the keys themselves ------------------------------------------------

    def export(self) -> list[tuple[int, bytes, float]]:
        with self._mu:
            return [(i, k, t) for i, (k, t) in sorted(self._keys.items())]

    def load(self, keys: list[tuple[int, bytes, float]]) -> None:
        """Take these keys (the MDS's latest), keeping at most KEEP_KEYS, newest first."""
        with self._mu:
            for i, k, t in keys:
                if len(k) >= 16:
                    self._keys[i] = (bytes(k), t)
            for old in sorted(self._keys)[:-KEEP_KEYS]:
                del self._keys[old]
            if self._keys:
                self._current = max(self._keys)

    def known(self) -> int:
        with self._mu:
            return len(self._keys)

    # ---- the OSS side ------------------------------------------------------------------

    def check(self, c: Capa, client: str, ost_index: int, object_id: int, mode: int, now: float | None = None) -> None:
        """LpError unless `c` lets `client` act in `mode` on this object now."""
        if c.ost_index != ost_index or c.object_id != object_id:
            raise LpError(errno.EACCES, f"no capability for object {object_id} of OST{ost_index:04x}")
        if c.mode & mode != mode:
            raise LpError(errno.EACCES, f"object {object_id}: the capability allows no writing")
        with self._mu:
            k = self._keys.get(c.key_id)
        if k is None:
            raise LpError(errno.EKEYEXPIRED, f"object {object_id}: capability key {c.key_id} unknown here")
        want = hmac.digest(k[0], _message(client, ost_index, object_id, c.mode, c.expiry, c.key_id),
                           "sha256")[:MAC_BYTES]
        if not hmac.compare_digest(want, c.mac):
            raise LpError(errno.EACCES, f"object {object_id}: forged capability")
        if (time.time() if now is None else now) > c.expiry:
            raise LpError(errno.EKEYEXPIRED, f"object {object_id}: capability expired")
