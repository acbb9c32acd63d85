"""Mirror placement (lustrepy.mds.lod.choose_mirrors): mirrors never share a node, go to
different failure domains while enough exist, and share one stripe count."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from lustrepy.common.errors import LpError
from lustrepy.common.layout import Layout
from lustrepy.common.records import Statfs
from lustrepy.mds.lod import Allocator
from lustrepy.mds.ostreg import OstState

GiB = 1 << 30


def ost(index: int, node: str, domain: str = "", active: bool = True) -> OstState:
    blocks = GiB // 4096
    return OstState(index, f"ost{index}", f"127.0.0.1:{index + 1}", Statfs(4096, blocks, blocks, blocks, 0, 0), 0.0,
                    active=active, node=node, domain=domain)


POOLS = {i: 100 for i in range(16)}


def nodes_of(osts: list[OstState], chosen: list[int]) -> set[str]:
    return {osts[i].node for i in chosen}


def test_two_mirrors_never_share_a_node() -> None:
    alloc = Allocator(rng=random.Random(1))
    osts = [ost(i, f"n{i // 2}") for i in range(6)]          # two OSTs per node
    for _ in range(50):
        plan = alloc.choose_mirrors(Layout(stripe_count=1, mirror_count=2), osts, POOLS, 2)
        assert len(plan) == 2
        assert not nodes_of(osts, plan[0]) & nodes_of(osts, plan[1])


def test_mirrors_go_to_different_domains_while_there_are_enough() -> None:
    alloc = Allocator(rng=random.Random(2))
    osts = [ost(i, f"n{i}", "rackA" if i < 3 else "rackB") for i in range(6)]
    for _ in range(50):
        plan = alloc.choose_mirrors(Layout(stripe_count=2, mirror_count=2), osts, POOLS, 2)
        assert [len(m) for m in plan] == [2, 2]
        doms = [{osts[i].domain for i in m} for m in plan]
        assert not doms[0] & doms[1], plan


def test_one_domain_still_gets_mirrors_on_other_nodes() -> None:
    alloc = Allocator(rng=random.Random(3))
    osts = [ost(i, f"n{i}", "rackA") for i in range(4)]
    plan = alloc.choose_mirrors(Layout(stripe_count=1, mirror_count=3), osts, POOLS, 3)
    assert len(plan) == 3 and len({osts[m[0]].node for m in plan}) == 3


def test_fewer_mirrors_when_nodes_run_out_and_every_mirror_has_the_same_stripe_count() -> None:
    alloc = Allocator(rng=random.Random(4))
    osts = [ost(i, f"n{i}") for i in range(3)]
    plan = alloc.choose_mirrors(Layout(stripe_count=2, mirror_count=2), osts, POOLS, 2)
    assert [len(m) for m in plan] == [2]                     # a second whole mirror does not fit
    one_node = [ost(i, "same") for i in range(4)]
    assert len(alloc.choose_mirrors(Layout(stripe_count=1, mirror_count=2), one_node, POOLS, 2)) == 1


def test_all_osts_are_shared_out_between_mirrors() -> None:
    alloc = Allocator(rng=random.Random(5))
    osts = [ost(i, f"n{i}") for i in range(6)]
    plan = alloc.choose_mirrors(Layout(stripe_count=-1, mirror_count=2), osts, POOLS, 2)
    assert [len(m) for m in plan] == [3, 3] and sorted(plan[0] + plan[1]) == list(range(6))


def test_avoided_nodes_and_inactive_osts_are_left_alone() -> None:
    alloc = Allocator(rng=random.Random(6))
    osts = [ost(i, f"n{i}") for i in range(4)]
    osts[3] = replace(osts[3], active=False)
    plan = alloc.choose_mirrors(Layout(stripe_count=1), osts, POOLS, 1, avoid=[osts[0], osts[1]])
    assert plan == [[2]]
    with pytest.raises(LpError):
        alloc.choose_mirrors(Layout(stripe_count=1), osts, POOLS, 1, avoid=[osts[0], osts[1], osts[2]])
