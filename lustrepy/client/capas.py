"""The client's object capabilities: fetched from the MDS per file, attached to each OST request.

An OSC asks for the capabilities of the objects a request touches; one not
held, too close to its expiry, or for reading only when writing is wanted, is
fetched anew with all of its file's (the file found by the object, from the
layouts the data path and the write-back cache hand in). One fetch per file
and mode serves every object of it for most of an hour. An OST that says a
capability expired or its key is unknown (it restarted, or the MDS rotated
keys past it) makes the OSC drop what it holds for that OST and try again.
Without TLS (plaintext development mode) nothing is fetched: the OSSes check
nothing then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from lustrepy.common import capa
from lustrepy.common.capa import Capa
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.rpc import tls
from lustrepy.rpc.convert import capa_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb

log = logging.getLogger(__name__)

REFRESH = 1 / 3             # fetch again when a capability has less than this part of its life left
MAX_FILES = 65536           # files whose objects are remembered (least recently added go first)

Fetch = Callable[[Fid, bool], list[Capa]]


class CapaCache:
    """Capabilities by (OST, object), and which file each object belongs to."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._mu = threading.Lock()
        self._caps: dict[tuple[int, int], tuple[Capa, float]] = {}     # with when it was fetched
        self._owner: dict[tuple[int, int], Fid] = {}
        self._files: dict[Fid, tuple[tuple[int, int], ...]] = {}

    def remember(self, fid: Fid, layout: Layout) -> None:
        """The objects of this file (every mirror's)."""
        keys = tuple((o.ost_index, o.object_id) for o in layout.all_objects())
        with self._mu:
            old = self._files.pop(fid, ())
            for k in old:
                if self._owner.get(k) == fid:
                    del self._owner[k]
            self._files[fid] = keys
            for k in keys:
                self._owner[k] = fid
            while len(self._files) > MAX_FILES:
                gone_fid = next(iter(self._files))
                for k in self._files.pop(gone_fid):
                    self._owner.pop(k, None)
                    self._caps.pop(k, None)

    def for_request(self, ost: int, object_ids: Iterable[int], write: bool) -> list[cpb.Capa]:
        """The capabilities to send with a request touching these objects of this OST."""
        if tls.current() is None:
            return []
        want = capa.READ | capa.WRITE if write else capa.READ
        now = time.time()
        out: list[cpb.Capa] = []
        for oid in dict.fromkeys(object_ids):
            c = self._held(ost, oid, want, now)
            if c is None:
                self._refresh(ost, oid, write)
                c = self._held(ost, oid, want, now)
            if c is not None:
                out.append(capa_to_pb(c))
        return out

    def _held(self, ost: int, oid: int, want: int, now: float) -> Capa | None:
        with self._mu:
            got = self._caps.get((ost, oid))
        if got is None:
            return None
        c, fetched = got
        if c.mode & want != want or c.expiry - now < (c.expiry - fetched) * REFRESH:
            return None
        return c

    def _refresh(self, ost: int, oid: int, write: bool) -> None:
        with self._mu:
            fid = self._owner.get((ost, oid))
        if fid is None:
            log.debug("object %d of OST%04x: no file known for it, no capability", oid, ost)
            return
        got = self._fetch(fid, write)           # LpError (EACCES, EROFS...) goes to the caller
        now = time.time()
        with self._mu:
            for c in got:
                self._caps[(c.ost_index, c.object_id)] = (c, now)

    def drop_ost(self, ost: int) -> None:
        """An OST refused what we hold for it: fetch anew next time."""
        with self._mu:
            for k in [k for k in self._caps if k[0] == ost]:
                del self._caps[k]
