"""How a mirrored file's I/O goes on when one of its objects fails (Lustre's FLR, client side).

An operation of a FileData runs through `Failover.run`. When an object's
RPC fails (lov.ObjectFailed) with an error that says its OST failed:
- a read passes the object's mirror over for a while and runs again on
  another; reads mark a mirror stale only when its OST holds bytes that fail
  their checksum (BadData), so that the MDS rewrites it from a good one;
- a write (also a punch, a sync, a write lock, background write-back)
  gives the mirror up: unless the OST answers a new connect at once (it
  restarted: the operation is retried as usual), the MDS marks the mirror
  stale, its dirty data here is dropped, and the operation runs again on
  the mirrors left. The last in-sync mirror is never given up: its error
  is the operation's.
An unmirrored file's errors pass through unchanged.

State (the file's MirrorSet, `m`) is guarded by the FileData's mutex,
handed in as a Condition; it is never held across an RPC.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from lustrepy.client.lov import ObjectFailed
from lustrepy.client.mirrorset import FAILOVER, MirrorSet, View
from lustrepy.client.owbc import ObjectCache, WriteBack
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid

log = logging.getLogger(__name__)

T = TypeVar("T")


class Failover:
    """Failing one file's operations over between its mirrors. Thread-safe."""

    def __init__(self, fid: Fid, cv: threading.Condition, mark_stale: Callable[[int], None], wb: WriteBack) -> None:
        self.fid = fid
        self._cv = cv
        self._mark_stale = mark_stale       # has the MDS mark a mirror stale (LpError when refused)
        self._wb = wb
        self.m: MirrorSet                   # the file's mirrors, set by the FileData with its layout

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """fn(*args), run again on the mirrors left each time an object's failure is failed over."""
        for _ in range(len(self.m.views)):
            try:
                return fn(*args)
            except ObjectFailed as e:
                if not self.fail_over(e):
                    raise
        return fn(*args)

    def fail_over(self, e: ObjectFailed) -> bool:
        """An object failed: True when its mirror is given up (a write) or passed over (a read)
        and the operation may go on without it; False: the error is the operation's."""
        m = self.m
        if not m.mirrored or e.errno not in FAILOVER or not isinstance(e.obj, ObjectCache):
            return False
        with self._cv:
            view = m.view_of(e.obj)
            if view is None or e.obj not in view.stripes:
                return False                # an object of an older layout
            if view.mirror_id in m.dead:
                return True                 # given up meanwhile: go on without it
            if not e.write and not e.bad_data:
                passed = m.shun(view)
                if passed:
                    log.warning("%s: reading mirror %d failed (%s); reading another", self.fid, view.mirror_id, e)
                return passed
            if not m.can_lose(view):
                return False
        if e.errno == errno.ENOTCONN and _answers(e.obj):
            return False                    # the OST answers again: the operation is retried as usual
        try:
            self._mark_stale(view.mirror_id)
        except LpError as refused:
            log.warning("%s: mirror %d failed (%s) and could not be marked stale: %s", self.fid, view.mirror_id,
                        e, refused)
            return False
        with self._cv:
            if m is self.m:
                self.drop_locked([view])
        log.warning("%s: %s mirror %d failed (%s); marked stale, going on with the others", self.fid,
                    "writing" if e.write else "reading", view.mirror_id, e)
        return True

    def drop_locked(self, views: list[View]) -> None:
        """These views are stale: neither written nor read here again (the mutex is held)."""
        self.m.dead.update(v.mirror_id for v in views)
        self._wb.discard_locked([st for v in views for st in v.stripes], self.m.live_stripes())


def _answers(st: ObjectCache) -> bool:
    """Whether the object's OST answers a connect now."""
    try:
        st.osc.connect_now()
    except LpError as e:
        log.info("%s does not answer: %s", st.osc.name, e)
        return False
    return True
