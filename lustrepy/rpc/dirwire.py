"""A striped directory's stripes on the wire (mds.proto DirStripes) and back."""

from __future__ import annotations

from lustrepy.common.dirhash import Stripes
from lustrepy.rpc.convert import fid_from_pb, fid_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb


def stripes_to_pb(s: Stripes) -> mpb.DirStripes:
    return mpb.DirStripes(hash_type=s.hash_type, fids=[fid_to_pb(f) for f in s.fids], mdts=list(s.mdts))


def stripes_from_pb(m: mpb.DirStripes) -> Stripes:
    if len(m.fids) != len(m.mdts):
        raise ValueError("a directory's stripes name as many MDTs as FIDs")
    return Stripes(m.hash_type, tuple(fid_from_pb(f) for f in m.fids), tuple(int(x) for x in m.mdts))
