"""The mirrors of one file as its data path uses them (Lustre's FLR, seen from one client).

A file's in-sync mirrors each get a View: its RAID0 layout and one
ObjectCache per object; so do the mirrors being resynced (`syncing`), after
them and write-only: a write goes to them too, so that the copy the MDS
has made of the others stays whole, but nothing reads them. The FileData's objects are the views' objects one
after the other (an object's index in that list is its index everywhere in
the data path: lock callbacks, dirty data, glimpses). Writes, truncates and
syncs go to every live view; reads, sizes and the read-ahead go to one view,
the reader, an in-sync one: each client prefers a mirror chosen by its id and the file, so
many readers spread over the mirrors.

A view stops being live on this client when a write to it failed and the
MDS marked its mirror stale (`give_up`): it is neither written nor read
again until the file's layout is read anew. A read that fails on a view
shuns it for a while and goes to another; reads never mark a mirror stale.
An unmirrored file is one view (mirror 0) that is never given up.

State is guarded by the owning FileData's mutex. No I/O here.
"""

from __future__ import annotations

import errno
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from lustrepy.client.lov import Piece, per_object_ranges
from lustrepy.client.owbc import ObjectCache
from lustrepy.common.errors import LpError
from lustrepy.common.layout import Layout

# errors that say an object's OST failed (not the request): a mirrored file fails over on them
FAILOVER = frozenset({errno.ENOTCONN, errno.ETIMEDOUT, errno.ECANCELED, errno.EIO, errno.EBADMSG,
                      errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.ESHUTDOWN, errno.EINPROGRESS})
SHUN_S = 30.0       # a view whose read failed is not read from for this long while another is live


@dataclass(frozen=True, slots=True)
class View:
    """One in-sync mirror of the file: its layout and its objects (global indexes from `base`)."""

    mirror_id: int
    layout: Layout
    stripes: tuple[ObjectCache, ...]
    base: int
    readable: bool = True       # False: being resynced, written but not read

    def groups(self, offset: int, length: int) -> dict[int, list[Piece]]:
        """File bytes [offset, offset+length) cut per object of this view, keyed by global index."""
        return {self.base + si: ps for si, ps in per_object_ranges(self.layout, offset, length).items()}


class MirrorSet:
    """The views of one file and which of them this client still uses."""

    def __init__(self, layout: Layout, make: Callable[[int, int, int], ObjectCache], prefer: str) -> None:
        """make(global index, ost index, object id) -> the ObjectCache of one object."""
        self.layout = layout
        self.mirrored = layout.mirrored
        views: list[View] = []
        stripes: list[ObjectCache] = []
        for m in layout.write_targets():
            own = tuple(make(len(stripes) + i, o.ost_index, o.object_id) for i, o in enumerate(m.layout.objects))
            views.append(View(m.mirror_id, m.layout, own, len(stripes), not m.stale))
            stripes.extend(own)
        self.views = tuple(views)
        self.stripes = stripes
        self._view_of = {st.index: v for v in views for st in v.stripes}
        self.dead: set[int] = set()                 # mirror ids given up on this client
        self._shunned: dict[int, float] = {}        # mirror id -> monotonic time reads may go there again
        readable = sum(v.readable for v in views)
        self._first = zlib.crc32(prefer.encode()) % readable if readable else 0

    def view_of(self, st: ObjectCache) -> View | None:
        return self._view_of.get(st.index)

    def live(self) -> list[View]:
        return [v for v in self.views if v.mirror_id not in self.dead]

    def live_stripes(self) -> list[ObjectCache]:
        return [st for v in self.live() for st in v.stripes]

    def reader(self) -> View:
        """The view reads go to: the preferred live one not shunned, else any live one."""
        readable = [v for v in self.views if v.readable]
        order = readable[self._first:] + readable[:self._first]
        live = [v for v in order if v.mirror_id not in self.dead]
        if not live:
            raise LpError(errno.EIO, "no in-sync mirror left to read")
        now = time.monotonic()
        return next((v for v in live if self._shunned.get(v.mirror_id, 0.0) <= now), live[0])

    def write_groups(self, offset: int, length: int) -> dict[int, list[Piece]]:
        """File bytes [offset, offset+length) cut per object of every live view (global indexes)."""
        out: dict[int, list[Piece]] = {}
        for v in self.live():
            out.update(v.groups(offset, length))
        return out

    def can_lose(self, view: View) -> bool:
        """The view may be given up after a failed write: it is being resynced, or another in-sync
        view is live."""
        if not self.mirrored or view.mirror_id in self.dead:
            return False
        return not view.readable or any(v is not view and v.readable for v in self.live())

    def shun(self, view: View) -> bool:
        """A read from `view` failed: read elsewhere for a while. False when there is nowhere else."""
        now = time.monotonic()
        others = [v for v in self.live() if v is not view and v.readable
                  and self._shunned.get(v.mirror_id, 0.0) <= now]
        if not self.mirrored or not others:
            return False
        self._shunned[view.mirror_id] = now + SHUN_S
        return True

    def newly_stale(self, layout: Layout) -> list[View] | None:
        """The live views `layout` (a newer one of the file) marks stale, when that is all that
        changed for this client; None when the objects it reads and writes changed otherwise."""
        if layout.stripe_size != self.layout.stripe_size or layout.all_objects() != self.layout.all_objects():
            return None
        now = {m.mirror_id: not m.stale for m in layout.write_targets()}
        ours = {v.mirror_id: v.readable for v in self.live()}
        if any(ours.get(i) != readable for i, readable in now.items()):
            return None                 # a mirror is written (or read) now that was not: it needs objects here
        return [v for v in self.live() if v.mirror_id not in now]
