"""Reply pieces the MDS handlers share: attributes on the wire with their
size-on-MDS flag. Reads the transaction it is handed; never writes."""

from __future__ import annotations

import stat

from lustrepy.common.errors import LpError
from lustrepy.common.records import Attr
from lustrepy.mds.namespace import Tx
from lustrepy.rpc.convert import attr_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb


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
