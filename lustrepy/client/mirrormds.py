"""What the data path of a mirrored file asks of the MDS: mark a mirror stale, read a layout anew.

The data path (datapath/filedata) never speaks to the MDS itself; the mount
hands it this. Marking a mirror stale is a reint (resent safely, under the
file's LAYOUT lock at the MDS); the reply's layout replaces the one cached
here, since this client's own LAYOUT lock is not called back for its own
change. Reading the layout goes through the POSIX layer's cache, which takes
a LAYOUT lock for it.
"""

from __future__ import annotations

from collections.abc import Callable

from lustrepy.client.inodes import Inode, InodeTable
from lustrepy.client.lmv import Lmv
from lustrepy.common.capa import Capa
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.rpc.convert import fid_to_pb, layout_from_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb


class MirrorMdsOps:
    """The data path's MirrorMds, over the mount's metadata layer and inode table."""

    def __init__(self, mdc: Lmv, table: InodeTable, layout_of: Callable[[Inode], Layout | None]) -> None:
        self._mdc = mdc
        self._table = table
        self._layout_of = layout_of

    def mark_stale(self, fid: Fid, mirror_id: int) -> None:
        rep = self._mdc.reint(mirror=mpb.MirrorOp(fid=fid_to_pb(fid), action=mpb.MirrorOp.STALE,
                                                  mirror_id=mirror_id))
        node = self._table.by_fid(fid)
        if rep.has_layout and node is not None:
            with self._table.mu:
                node.layout = layout_from_pb(rep.layout)

    def capas(self, fid: Fid, write: bool) -> list[Capa]:
        return self._mdc.capas(fid, write)

    def layout_of(self, fid: Fid) -> Layout | None:
        node = self._table.by_fid(fid)
        return self._layout_of(node) if node is not None else None
