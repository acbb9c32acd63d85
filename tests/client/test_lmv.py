"""The client's metadata layer routes every kind of update by the FID it names (a one-MDT view)."""

from __future__ import annotations

from typing import Any

from lustrepy.client.lmv import Lmv
from lustrepy.common.fid import ROOT_FID, Fid
from lustrepy.rpc.convert import fid_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb


class _Seen:
    """A stand-in MDT client that records the updates it is asked for (the layer, not the MDT,
    is under test here)."""

    def __init__(self) -> None:
        self.got: list[str] = []

    def reint(self, cred: Any = None, **op: Any) -> str:
        self.got.extend(op)
        return "ok"


def test_every_update_kind_is_routed_without_error():
    seen = _Seen()
    lmv = Lmv(seen, lambda address: seen)   # type: ignore[arg-type]
    f, p = fid_to_pb(Fid(0x200000400, 5, 0)), fid_to_pb(ROOT_FID)
    ops = {
        "mirror": mpb.MirrorOp(fid=f, action=mpb.MirrorOp.STALE, mirror_id=1),
        "setattr": mpb.SetattrOp(fid=f), "setxattr": mpb.SetxattrOp(fid=f, name=b"user.a"),
        "removexattr": mpb.RemovexattrOp(fid=f, name=b"user.a"),
        "rename": mpb.RenameOp(src_parent=p, src_name=b"a", dst_parent=p, dst_name=b"b"),
        "mkdir": mpb.MkdirOp(parent=p, name=b"d"), "unlink": mpb.UnlinkOp(parent=p, name=b"x"),
        "link": mpb.LinkOp(fid=f, parent=p, name=b"l"),
    }
    for kind, body in ops.items():
        assert lmv.reint(None, **{kind: body}) == "ok", kind
    assert seen.got == list(ops)
