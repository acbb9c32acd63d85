"""The OSS's side of object capabilities (common/capa.py): a client's request touches only the
objects it carries capabilities for.

Only requests of clients are checked: the MDS and other OSSes (their
certificates say so) act on any object, and a server without TLS (the
plaintext development mode) checks nothing. The keys come from each MDT with
each heartbeat's reply (oss/announce.py), into one ring that keeps every MDT's
(a key id names its MDT); until the first arrive a client's request is
EINPROGRESS, to be sent again, and so is one whose capability was signed by an
MDT this OSS has no keys of yet. Replays after a restart are not
checked here: the OST takes them only from the clients it recorded as writers.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import Any

from lustrepy.common import capa
from lustrepy.common.errors import LpError
from lustrepy.rpc import authz, lane, tls
from lustrepy.rpc.convert import capa_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb

READ, WRITE = capa.READ, capa.READ | capa.WRITE


class CapaGuard:
    """Checks the capabilities of one OST's requests."""

    def __init__(self, ost_index: int) -> None:
        self.index = ost_index
        self.keys = capa.KeyRing()          # every MDT's keys; it makes none itself

    def checked(self, context: Any) -> bool:
        """Whether this caller's requests need capabilities: a client's (context None: a request
        on the lane, whose connection knows its peer's certificate)."""
        if tls.current() is None:
            return False
        who = lane.subject() if context is None else authz.subject(context)
        return who is None or who.role == "client"

    def check(self, hdr: cpb.ReqHdr, context: Any, object_ids: Iterable[int], mode: int) -> None:
        """LpError unless the request's capabilities cover every object for `mode`."""
        if not self.checked(context):
            return
        if not self.keys.known():
            raise LpError(errno.EINPROGRESS, f"OST{self.index:04x} has no capability keys from the MDS yet")
        given = {c.object_id: c for c in hdr.capas if c.ost_index == self.index}
        name = hdr.client_id.partition(":")[0]
        for oid in set(object_ids):
            c = given.get(oid)
            if c is None:
                raise LpError(errno.EACCES, f"no capability for object {oid} of OST{self.index:04x}")
            self.keys.check(capa_from_pb(c), name, self.index, oid, mode)
