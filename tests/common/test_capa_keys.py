"""Capability keys of several MDTs (common/capa.py): a key id carries its MDT's index, an OSS's
ring keeps the newest KEEP_KEYS keys of each MDT, and a capability is checked against the key its
id names, whichever MDT signed it."""

from __future__ import annotations

import errno

import pytest

from lustrepy.common import capa
from lustrepy.common.capa import KEEP_KEYS, MDT_SHIFT, ROTATE_S, KeyRing, mdt_of
from lustrepy.common.errors import LpError

T0 = 1_700_000_000.0


def _rotations(ring: KeyRing, n: int, start: float = T0) -> list[int]:
    """The ids of `n` keys the ring makes one rotation apart."""
    return [ring.current(start + i * ROTATE_S)[0] for i in range(n)]


def _key(i: int, t: float) -> tuple[int, bytes, float]:
    return i, bytes([i % 251]) * 32, t


def test_key_ids_carry_the_mdt_and_count_on_within_its_space():
    for mdt in (0, 1, 7, 255):
        ids = _rotations(KeyRing(mdt=mdt), 6)
        assert {mdt_of(i) for i in ids} == {mdt}
        n = [i & ((1 << MDT_SHIFT) - 1) for i in ids]
        assert all((b - a) % (1 << MDT_SHIFT) == 1 for a, b in zip(n, n[1:], strict=False))
    assert KeyRing().mdt == 0 and mdt_of(KeyRing().current()[0]) == 0     # the default: MDT0, as before
    for bad in (-1, 256):
        with pytest.raises(ValueError):
            KeyRing(mdt=bad)


def test_the_counter_wraps_inside_the_mdts_space_and_the_wrapped_key_is_the_newest():
    ring = KeyRing(mdt=3)
    top = (3 << MDT_SHIFT) | ((1 << MDT_SHIFT) - 1)
    ring.load([_key(top - 1, T0 - ROTATE_S), _key(top, T0)])     # a ring whose counter is at its top
    assert ring.current(T0)[0] == top
    nxt, key = ring.current(T0 + ROTATE_S)
    assert nxt == 3 << MDT_SHIFT                                # n back to 0, still MDT3's
    assert ring.current(T0 + ROTATE_S + 1)[0] == nxt             # signs until it is old
    more = _rotations(ring, KEEP_KEYS, T0 + 2 * ROTATE_S)
    assert more == [(3 << MDT_SHIFT) | n for n in range(1, KEEP_KEYS + 1)]
    assert [i for i, _, _ in ring.export()] == more              # the older ones, top included, dropped


def test_an_oss_ring_keeps_each_mdts_newest_keys_without_pushing_out_anothers():
    oss = KeyRing()
    mdt0, mdt1 = KeyRing(mdt=0), KeyRing(mdt=1)
    _rotations(mdt1, 2)
    oss.load(mdt1.export())
    for i in range(KEEP_KEYS + 3):                              # MDT0 rotates many times
        mdt0.current(T0 + i * ROTATE_S)
        oss.load(mdt0.export())
    assert oss.known(0) == KEEP_KEYS and oss.known(1) == 2 and oss.known() == KEEP_KEYS + 2
    assert {i for i, _, _ in oss.export() if mdt_of(i) == 0} == {i for i, _, _ in mdt0.export()}
    assert {i for i, _, _ in oss.export() if mdt_of(i) == 1} == {i for i, _, _ in mdt1.export()}


def test_newest_goes_by_the_time_made_not_the_id():
    """An MDS that restarted starts its counter afresh, maybe below its old keys' ids: the OSS keeps
    the new key (it signs every capability from now on) and lets the oldest go."""
    oss = KeyRing()
    old = [_key(5000 + i, T0 + i) for i in range(KEEP_KEYS)]
    oss.load(old)
    oss.load([_key(17, T0 + 100)])
    ids = {i for i, _, _ in oss.export()}
    assert 17 in ids and 5000 not in ids and len(ids) == KEEP_KEYS


def test_capabilities_of_every_mdt_check_against_their_own_key():
    oss = KeyRing()
    mdts = {m: KeyRing(mdt=m) for m in (0, 1, 2)}
    caps = {m: r.issue("alpha", 4, 99, capa.READ) for m, r in mdts.items()}
    oss.load(mdts[0].export())
    oss.load(mdts[1].export())
    oss.check(caps[0], "alpha", 4, 99, capa.READ)
    oss.check(caps[1], "alpha", 4, 99, capa.READ)
    with pytest.raises(LpError) as ei:                          # no key of MDT2 here yet: ask again later
        oss.check(caps[2], "alpha", 4, 99, capa.READ)
    assert ei.value.errno == errno.EINPROGRESS
    oss.load(mdts[2].export())
    oss.check(caps[2], "alpha", 4, 99, capa.READ)
    forged = capa.Capa(4, 99, capa.READ, caps[1].expiry, caps[0].key_id, caps[1].mac)   # MDT1's mac, MDT0's key
    with pytest.raises(LpError) as ei:
        oss.check(forged, "alpha", 4, 99, capa.READ)
    assert ei.value.errno == errno.EACCES
    gone = capa.Capa(4, 99, capa.READ, caps[1].expiry, caps[1].key_id ^ 1, caps[1].mac)  # an MDT1 key not here
    with pytest.raises(LpError) as ei:
        oss.check(gone, "alpha", 4, 99, capa.READ)
    assert ei.value.errno == errno.EKEYEXPIRED
