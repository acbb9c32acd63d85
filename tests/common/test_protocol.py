"""The protocol's constants in Python are the .proto enums, member for member, and
check_bits refuses what a flag set does not define."""

from __future__ import annotations

import errno
from enum import IntEnum, IntFlag

import pytest

from lustrepy.common import protocol
from lustrepy.common.errors import LpError
from lustrepy.ldlm.inodebits import IBit
from lustrepy.ldlm.modes import LockMode
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

PAIRS = [
    (protocol.IT, mpb.IntentOp, "IT_"),
    (protocol.DISP, mpb.Disposition, "DISP_"),
    (protocol.SA, mpb.AttrValid, "SA_"),
    (protocol.RENAME, mpb.RenameFlag, "RENAME_"),
    (protocol.XATTR, mpb.XattrFlag, "XATTR_"),
    (IBit, cpb.IBit, "IBIT_"),
    (LockMode, cpb.LockMode, "LCK_"),
]


@pytest.mark.parametrize("py, wire, prefix", PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_python_constants_are_the_proto_enums(py: type[IntFlag | IntEnum], wire, prefix: str) -> None:
    ours = {m.name: m.value for m in py.__members__.values()}
    theirs = {name.removeprefix(prefix): v for name, v in wire.items() if v}
    assert ours == theirs


def test_check_bits_takes_known_bits_and_refuses_others() -> None:
    SA = protocol.SA
    assert protocol.check_bits(SA, 0, "setattr") == 0
    assert protocol.check_bits(SA, SA.MODE | SA.MTIME_NOW, "setattr") == SA.MODE | SA.MTIME_NOW
    with pytest.raises(LpError) as ei:
        protocol.check_bits(SA, SA.MODE | 0x400, "setattr")
    assert ei.value.errno == errno.EINVAL
    assert "\n" not in ei.value.message and "0x400" in ei.value.message and "setattr" in ei.value.message


def test_flags_travel_in_messages_as_their_numbers() -> None:
    op = mpb.SetattrOp(valid=protocol.SA.SIZE | protocol.SA.MTIME)
    assert mpb.SetattrOp.FromString(op.SerializeToString()).valid == 8 | 32
    req = mpb.IntentRequest(ops=protocol.IT.OPEN | protocol.IT.CREAT, ibits=IBit.LOOKUP | IBit.LAYOUT)
    assert (req.ops, req.ibits) == (12, 9)
