"""The client's RAID0 stripe math (lustrepy.client.lov): file offsets to objects and back."""

from hypothesis import given
from hypothesis import strategies as st

from lustrepy.client.lov import file_size_from_object, object_size_for_file, split_range, stripe_of
from lustrepy.common.layout import Layout, StripeObject

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
