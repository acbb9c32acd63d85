"""Object placement (lustrepy.mds.lod) over OST states as the registry holds them:
nearly full OSTs are left alone while others have room, full ones always."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lustrepy.common.errors import LpError
from lustrepy.common.layout import Layout
from lustrepy.common.records import Statfs
from lustrepy.mds.lod import DEFAULT_RESERVED, Allocator
from lustrepy.mds.ostreg import OstState

MiB = 1 << 20


def ost(index: int, free: int, size: int = 16 * MiB, active: bool = True) -> OstState:
    blocks, avail = size // 4096, free // 4096
    return OstState(index, f"ost{index}", "127.0.0.1:1", Statfs(4096, blocks, avail, avail, 0, 0), 0.0,
                    active=active)


POOLS = {i: 100 for i in range(8)}


def counts(alloc: Allocator, osts: list[OstState], layout: Layout, n: int = 400) -> Counter[int]:
    got: Counter[int] = Counter()
    for _ in range(n):
        got.update(alloc.choose(layout, osts, POOLS))
    return got


def test_a_nearly_full_ost_gets_no_objects_while_others_have_room() -> None:
    alloc = Allocator(reserved=4 * MiB, rng=random.Random(1))
    osts = [ost(0, 16 * MiB), ost(1, 16 * MiB), ost(2, 16 * MiB), ost(3, 2 * MiB)]
    got = counts(alloc, osts, Layout(stripe_count=1))
    assert set(got) == {0, 1, 2} and min(got.values()) > 50
    got = counts(alloc, [ost(0, 16 * MiB), ost(1, 6 * MiB), ost(2, 5 * MiB), ost(3, 3 * MiB)], Layout(stripe_count=1))
    assert 3 not in got and set(got) == {0, 1, 2}          # weighted by free space, still never the nearly full


def test_a_file_asking_for_more_stripes_than_osts_with_room_gets_fewer() -> None:
    alloc = Allocator(reserved=4 * MiB)
    osts = [ost(0, 16 * MiB), ost(1, 2 * MiB), ost(2, 16 * MiB), ost(3, 16 * MiB)]
    for layout in (Layout(stripe_count=4), Layout(stripe_count=-1)):
        chosen = alloc.choose(layout, osts, POOLS)
        assert sorted(chosen) == [0, 2, 3]


def test_when_every_ost_is_nearly_full_they_are_used_but_never_a_full_one() -> None:
    alloc = Allocator(reserved=4 * MiB)
    full = ost(3, 100 * 1024)                                # under the 2% the registry calls full
    assert full.full
    osts = [ost(0, 2 * MiB), ost(1, 3 * MiB), ost(2, 1 * MiB), full]
    got = counts(alloc, osts, Layout(stripe_count=1), 100)
    assert set(got) == {0, 1, 2}
    assert sorted(alloc.choose(Layout(stripe_count=-1), osts, POOLS)) == [0, 1, 2]
    with pytest.raises(LpError):
        alloc.choose(Layout(stripe_count=1), [full], POOLS)


def test_inactive_osts_and_empty_pools_do_not_count_as_room() -> None:
    alloc = Allocator(reserved=4 * MiB)
    osts = [ost(0, 16 * MiB, active=False), ost(1, 2 * MiB), ost(2, 16 * MiB)]
    assert alloc.open_osts(Layout(stripe_count=1), osts) == [osts[2]]
    assert alloc.usable(Layout(stripe_count=1), osts, {1: 5, 2: 0}) == []   # waits for precreation on OST2


def test_a_named_first_ost_is_used_while_it_is_not_full() -> None:
    alloc = Allocator(reserved=4 * MiB)
    osts = [ost(0, 16 * MiB), ost(1, 16 * MiB), ost(2, 16 * MiB), ost(3, 2 * MiB)]
    assert alloc.choose(Layout(stripe_count=1, stripe_offset=3), osts, POOLS) == [3]
    assert alloc.choose(Layout(stripe_count=4, stripe_offset=0), osts, POOLS) == [0, 1, 2, 3]


def test_reserve_zero_turns_it_off_and_the_default_is_64_mib() -> None:
    osts = [ost(0, 16 * MiB), ost(1, 16 * MiB), ost(2, 16 * MiB), ost(3, 2 * MiB)]
    assert sorted(Allocator(reserved=0).choose(Layout(stripe_count=4), osts, POOLS)) == [0, 1, 2, 3]
    assert DEFAULT_RESERVED == 64 * MiB
    big = [ost(0, 1 << 30, 1 << 32), ost(1, 63 * MiB, 1 << 32)]
    assert Allocator().choose(Layout(stripe_count=2), big, POOLS) == [0]
