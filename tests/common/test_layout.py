"""RAID0 stripe math, layout validation, the lov xattr, FIDs and the wire errno table."""

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lustrepy.common import errors
from lustrepy.common.errors import LpError
from lustrepy.common.fid import FIRST_SEQ, ROOT_FID, SEQ_WIDTH, Fid
from lustrepy.common.layout import (Layout, StripeObject, decode_lov, encode_lov, file_size_from_object,
                                    object_size_for_file, split_range, stripe_of)
from lustrepy.common.names import check_name

SS = 65536


def _layout(count: int) -> Layout:
    return Layout(stripe_size=SS, stripe_count=count, objects=tuple(StripeObject(i, 100 + i) for i in range(count)))


def test_stripe_of_follows_the_design_formula():
    lo = _layout(4)
    assert stripe_of(lo, 0) == (0, 0)
    assert stripe_of(lo, SS) == (1, 0)
    assert stripe_of(lo, 4 * SS + 5) == (0, SS + 5)
    assert stripe_of(lo, 7 * SS - 1) == (2, 2 * SS - 1)


@given(count=st.integers(1, 6), off=st.integers(0, 10 * SS), length=st.integers(0, 10 * SS))
def test_split_range_covers_the_range_once(count, off, length):
    lo = _layout(count)
    pieces = list(split_range(lo, off, length))
    assert sum(p.length for p in pieces) == length
    pos = off
    for p in pieces:
        assert p.file_offset == pos and (p.stripe, p.object_offset) == stripe_of(lo, pos)
        pos += p.length


@given(count=st.integers(1, 6), size=st.integers(0, 20 * SS))
def test_object_sizes_and_file_size_agree(count, size):
    lo = _layout(count)
    sizes = [object_size_for_file(lo, s, size) for s in range(count)]
    assert sum(sizes) == size
    assert max((file_size_from_object(lo, s, n) for s, n in enumerate(sizes)), default=0) == size


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
