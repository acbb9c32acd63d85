"""The mode compatibility matrix and the client-side cover rule."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lustrepy.ldlm.modes import LockMode, compatible, covers, parse_mode
from lustrepy.rpc.v1 import common_pb2 as cpb

EX, PW, PR, CW, CR, NL = LockMode.EX, LockMode.PW, LockMode.PR, LockMode.CW, LockMode.CR, LockMode.NL
modes = st.sampled_from(list(LockMode))

# As listed in Lustre (lck_compat_array).
EXPECTED = {
    NL: {NL, CR, CW, PR, PW, EX},
    CR: {NL, CR, CW, PR, PW},
    CW: {NL, CR, CW},
    PR: {NL, CR, PR},
    PW: {NL, CR},
    EX: {NL},
}


def test_wire_values() -> None:
    assert [int(m) for m in (EX, PW, PR, CW, CR, NL)] == [1, 2, 4, 8, 16, 32]
    for m in LockMode:
        assert cpb.LockMode.Value(f"LCK_{m.name}") == int(m)


@pytest.mark.parametrize("a,b", list(itertools.product(LockMode, LockMode)))
def test_matrix_as_listed(a: LockMode, b: LockMode) -> None:
    assert compatible(a, b) == (b in EXPECTED[a])


@given(modes, modes)
def test_matrix_symmetric(a: LockMode, b: LockMode) -> None:
    assert compatible(a, b) == compatible(b, a)


@given(modes, modes)
def test_cover_implies_compatibility_is_no_weaker(held: LockMode, wanted: LockMode) -> None:
    # A lock that covers another conflicts with at least everything the other conflicts with.
    if covers(held, wanted):
        for other in LockMode:
            if not compatible(wanted, other):
                assert not compatible(held, other)


def test_covers() -> None:
    assert all(covers(EX, m) for m in LockMode)
    assert {m for m in LockMode if covers(PW, m)} == {PW, PR, CW, CR, NL}
    assert {m for m in LockMode if covers(PR, m)} == {PR, CR, NL}
    assert {m for m in LockMode if covers(CW, m)} == {CW, CR, NL}
    assert {m for m in LockMode if covers(CR, m)} == {CR, NL}
    assert {m for m in LockMode if covers(NL, m)} == {NL}
    assert all(covers(m, m) for m in LockMode)


def test_parse_mode() -> None:
    assert parse_mode("pr") is PR and parse_mode("LCK_EX") is EX and parse_mode(2) is PW
    with pytest.raises(ValueError):
        parse_mode("XX")
    with pytest.raises(ValueError):
        parse_mode(3)
