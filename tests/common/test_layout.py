"""Layout validation, the lov xattr, FIDs and the wire errno table."""

import errno

import pytest

from lustrepy.common import errors
from lustrepy.common.errors import LpError
from lustrepy.common.fid import FIRST_SEQ, ROOT_FID, SEQ_WIDTH, Fid
from lustrepy.common.layout import Layout, decode_lov, encode_lov
from lustrepy.common.names import check_name

SS = 65536


def test_layout_validation():
    for bad in (Layout(stripe_size=1000), Layout(stripe_count=0), Layout(stripe_count=-2), Layout(pattern="raid5")):
        with pytest.raises(LpError) as ei:
            bad.check(ost_count=4)
        assert ei.value.errno == errno.EINVAL
    with pytest.raises(LpError):
        Layout(stripe_count=5).check(ost_count=4)
    Layout(stripe_count=-1).check(ost_count=4)


def test_lov_xattr_round_trip_and_refusals():
    lo = Layout(stripe_size=2 * SS, stripe_count=3, stripe_offset=1)
    back = decode_lov(encode_lov(lo))
    assert (back.stripe_size, back.stripe_count, back.stripe_offset) == (2 * SS, 3, 1)
    for bad in (b"{", b"[]", b'{"stripe_size": 3}', b'{"stripe_count": "x"}', b"\xff"):
        with pytest.raises(LpError) as ei:
            decode_lov(bad)
        assert ei.value.errno == errno.EINVAL


def test_fid_text_and_inode_numbers():
    f = Fid(FIRST_SEQ, 5)
    assert Fid.parse(str(f)) == f
    assert ROOT_FID.ino() == 1
    inos = {Fid(FIRST_SEQ + s, o).ino() for s in range(3) for o in (1, 2, SEQ_WIDTH - 1)}
    assert len(inos) == 9
    with pytest.raises(ValueError):
        Fid.parse("[0x1:zz:0]")


def test_wire_errno_table():
    assert errors.from_wire(errors.to_wire(errno.ENOENT)) == errno.ENOENT
    assert errors.to_wire(999999) == errno.EIO and errors.from_wire(424242) == errno.EIO


def test_names():
    check_name(b"ok")
    for bad, err in ((b"", errno.EINVAL), (b".", errno.EINVAL), (b"a/b", errno.EINVAL), (b"a\0", errno.EINVAL),
                     (b"x" * 256, errno.ENAMETOOLONG)):
        with pytest.raises(LpError) as ei:
            check_name(bad)
        assert ei.value.errno == err
