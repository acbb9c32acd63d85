"""Reply pieces the MDS handlers share: attributes on the wire with their
size-on-MDS flag, and a striped directory's stripes. Reads the transaction it is handed;
never writes."""

from __future__ import annotations

import stat

from lustrepy.common.errors import LpError
from lustrepy.common.records import Attr
from lustrepy.mds import dirstripe
from lustrepy.mds.namespace import Tx
from lustrepy.rpc.convert import attr_to_pb
from lustrepy.rpc.dirwire import stripes_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb


def attr_pb(tx: Tx, attr: Attr) -> cpb.Attr:
    """The wire form of attr; size_valid says whether its size is authoritative."""
    m = attr_to_pb(attr)
    if stat.S_ISREG(attr.mode):
        try:
            # size and validity from one snapshot (attr may be from an earlier read)
            m.size, m.blocks, m.size_valid = tx.size_state(attr.fid)
        except LpError:         # the inode is gone (its last link was just removed)
            m.size_valid = False
    return m


def new_file_pb(attr: Attr, *, writer: bool) -> cpb.Attr:
    """attr_pb of a regular file created and opened by the transaction under way, without
    reading it again: nothing else has it open, so its size (0) is authoritative unless
    that open is for writing."""
    m = attr_to_pb(attr)
    m.size_valid = not writer
    return m


def add_stripes(tx: Tx, attr: Attr, rep: mpb.IntentReply | mpb.ReintReply) -> None:
    """When `attr` is a striped directory's master, its stripes go in the reply."""
    if stat.S_ISDIR(attr.mode):
        s = dirstripe.stripes_of_fid(tx, attr.fid)
        if s is not None:
            rep.stripes.CopyFrom(stripes_to_pb(s))
