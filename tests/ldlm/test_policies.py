"""The inode-bits and extent policies: conflicts and extent grant growth."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lustrepy.ldlm import extent as xp
from lustrepy.ldlm import inodebits as ib
from lustrepy.ldlm.extent import EOF, Extent
from lustrepy.ldlm.modes import LockMode, compatible

modes = st.sampled_from(list(LockMode))
bits = st.integers(1, ib.FULL)
points = st.one_of(st.integers(0, 64), st.integers(0, EOF), st.just(EOF))


@st.composite
def extents(draw: st.DrawFn) -> Extent:
    a, b = draw(points), draw(points)
    return Extent(min(a, b), max(a, b))


def test_ibit_values() -> None:
    assert [int(b) for b in ib.IBit] == [1, 2, 4, 8, 16, 32]
    assert ib.bits_str(ib.IBit.LOOKUP | ib.IBit.PERM) == "LOOKUP|PERM"
    assert not ib.valid_bits(0) and not ib.valid_bits(64) and ib.valid_bits(ib.FULL)


@given(modes, bits, modes, bits)
def test_ibits_conflict_iff_bits_intersect_and_modes_conflict(ma: LockMode, ba: int, mb: LockMode, bb: int) -> None:
    expect = bool(ba & bb) and not compatible(ma, mb)
    assert ib.conflict(ma, ba, mb, bb) == expect == ib.conflict(mb, bb, ma, ba)


@given(modes, extents(), modes, extents())
def test_extent_conflict_iff_overlap_and_modes_conflict(ma: LockMode, ea: Extent, mb: LockMode, eb: Extent) -> None:
    overlap = any(ea.start <= p <= ea.end for p in (eb.start, eb.end)) or eb.start <= ea.start <= eb.end
    expect = overlap and not compatible(ma, mb)
    assert xp.conflict(ma, ea, mb, eb) == expect == xp.conflict(mb, eb, ma, ea)


def test_bad_extents() -> None:
    for s, e in ((5, 4), (-1, 3), (0, EOF + 1)):
        with pytest.raises(ValueError):
            Extent(s, e)


def test_lone_writer_grows_to_eof() -> None:
    assert xp.grow(LockMode.PW, Extent(8192, 12287), []) == Extent(8192, EOF)


def test_growth_stops_before_incompatible_lock() -> None:
    others = [(LockMode.PR, Extent(1 << 20, (2 << 20) - 1)), (LockMode.PR, Extent(10 << 20, EOF))]
    assert xp.grow(LockMode.PW, Extent(0, 4095), others) == Extent(0, (1 << 20) - 1)
    # Compatible readers do not stop a reader.
    assert xp.grow(LockMode.PR, Extent(0, 4095), others) == Extent(0, EOF)
    # A lock overlapping the request's end leaves no room to grow.
    assert xp.grow(LockMode.PW, Extent(0, 4095), [(LockMode.PW, Extent(4000, 5000))]) == Extent(0, 4095)
    # Only PR and PW grow.
    assert xp.grow(LockMode.CW, Extent(0, 4095), []) == Extent(0, 4095)


@given(modes, extents(), st.lists(st.tuples(modes, extents()), max_size=8))
def test_growth_never_overlaps_an_incompatible_lock(mode: LockMode, want: Extent,
                                                    others: list[tuple[LockMode, Extent]]) -> None:
    got = xp.grow(mode, want, others)
    assert got.start == want.start and got.end >= want.end
    if got.end > want.end:
        added = Extent(want.end + 1, got.end)
        for m, e in others:
            if not compatible(mode, m):
                assert not added.overlaps(e)
        # ... and it is maximal: one more byte would touch an incompatible lock, unless at EOF.
        if got.end < EOF:
            assert any(not compatible(mode, m) and e.start == got.end + 1 for m, e in others)
