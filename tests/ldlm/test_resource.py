"""The sans-I/O lock state machine: queues, FCFS, callbacks, growth, eviction, timeouts."""

from __future__ import annotations

import dataclasses
import errno

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lustrepy.common.errors import LpError
from lustrepy.ldlm.extent import EOF, Extent
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import (BlockingCallback, Granted, Lock, Namespace, ResId,
                                    locks_conflict)

EX, PW, PR, CW, CR, NL = LockMode.EX, LockMode.PW, LockMode.PR, LockMode.CW, LockMode.CR, LockMode.NL
R1, R2 = ResId(1, 2, 0), ResId(7)
LOOKUP, UPDATE, PERM = 1, 2, 16


def kinds(events: list) -> list[tuple[str, int]]:
    out = []
    for ev in events:
        if isinstance(ev, Granted):
            out.append(("granted", ev.lock.cookie))
        elif isinstance(ev, BlockingCallback):
            out.append(("blocking", ev.holder.cookie))
        else:
            out.append(("dropped", ev.lock.cookie))
    return out


def test_compatible_locks_granted_at_once() -> None:
    ns = Namespace()
    a, ev_a = ns.enqueue("c1", R1, PR, ibits=LOOKUP | UPDATE)
    b, ev_b = ns.enqueue("c2", R1, PR, ibits=LOOKUP)
    c, ev_c = ns.enqueue("c3", R1, EX, ibits=PERM)       # bits disjoint
    assert a.granted and b.granted and c.granted
    assert kinds(ev_a + ev_b + ev_c) == [("granted", a.cookie), ("granted", b.cookie), ("granted", c.cookie)]
    assert ns.statistics()["locks_granted"] == 3


def test_conflict_waits_sends_one_callback_and_is_granted_on_cancel() -> None:
    ns = Namespace()
    holder, _ = ns.enqueue("c1", R1, PR, ibits=UPDATE, now=1.0)
    w, events = ns.enqueue("c2", R1, EX, ibits=UPDATE | LOOKUP, now=2.0)
    assert not w.granted
    assert events == [BlockingCallback(holder, w)]
    # A second conflicting request sends no second callback to the same holder.
    w2, events2 = ns.enqueue("c3", R1, PW, ibits=UPDATE, now=3.0)
    assert not w2.granted and events2 == []
    assert ns.expired(now=4.0, timeout=5.0) == []
    assert ns.expired(now=7.5, timeout=5.0) == [holder]
    events = ns.cancel(holder.cookie, now=8.0)
    # w is granted; w2 now conflicts with the granted w: w gets its callback.
    granted_w = ns.get(w.cookie)
    assert granted_w is not None and granted_w.granted
    assert events == [Granted(granted_w), BlockingCallback(granted_w, w2)]
    assert ns.expired(now=100.0, timeout=5.0) == [granted_w]
    assert ns.cancel(holder.cookie) == []       # unknown cookies are ignored
    assert kinds(ns.cancel(w.cookie)) == [("granted", w2.cookie)]


def test_fcfs_later_compatible_request_waits_behind_earlier_waiter() -> None:
    ns = Namespace()
    r1, _ = ns.enqueue("c1", R1, PR)
    w, _ = ns.enqueue("c2", R1, PW)
    r2, events = ns.enqueue("c3", R1, PR)       # compatible with r1, but w came first
    assert not r2.granted and events == []
    assert ns.would_wait(R1, PR)
    # w is granted, and the reader queued behind it asks w back.
    assert kinds(ns.cancel(r1.cookie)) == [("granted", w.cookie), ("blocking", w.cookie)]
    assert kinds(ns.cancel(w.cookie)) == [("granted", r2.cookie)]


def test_local_holders_get_no_callbacks() -> None:
    ns = Namespace()
    mine, _ = ns.enqueue("mds", R1, EX, ibits=UPDATE, local=True)
    w, events = ns.enqueue("c1", R1, PR, ibits=UPDATE)
    assert not w.granted and events == []
    assert ns.expired(now=1e9, timeout=1.0) == []
    # Two local locks conflict like any others.
    other, events = ns.enqueue("mds", R1, EX, ibits=UPDATE, local=True)
    assert not other.granted and events == []
    # The client's lock is granted and at once asked back for the waiting local lock.
    assert kinds(ns.cancel(mine.cookie)) == [("granted", w.cookie), ("blocking", w.cookie)]
    assert kinds(ns.cancel(w.cookie)) == [("granted", other.cookie)]


def test_drop_owner_reports_dropped_and_grants_waiters() -> None:
    ns = Namespace()
    a, _ = ns.enqueue("c1", R1, PW, extent=Extent(0, 4095))
    b, _ = ns.enqueue("c1", R2, PR)
    w, _ = ns.enqueue("c2", R1, PW, extent=Extent(0, 10))
    mine_waiting, _ = ns.enqueue("c1", R1, PR, extent=Extent(0, 1))
    events = ns.drop_owner("c1")
    assert kinds(events) == [("dropped", a.cookie), ("dropped", b.cookie), ("dropped", mine_waiting.cookie),
                             ("granted", w.cookie)]
    assert ns.owner_locks("c1") == [] and ns.resources() == [R1]


def test_a_granted_lock_keeps_every_field_of_its_request_but_granted_and_extent() -> None:
    ns = Namespace()
    local, _ = ns.enqueue("c1", R1, EX, ibits=UPDATE | PERM, local=True, on_behalf="c2")
    assert (local.granted, local.owner, local.res, local.mode, local.ibits, local.local, local.on_behalf) == \
        (True, "c1", R1, EX, UPDATE | PERM, True, "c2")
    ns2 = Namespace()
    first, _ = ns2.enqueue("c3", R2, PW, extent=Extent(0, 4095))
    asked, _ = ns2.enqueue("c4", R2, PW, extent=Extent(8192, 12287))
    assert not asked.granted
    (granted,) = [ev.lock for ev in ns2.cancel(first.cookie) if isinstance(ev, Granted)]
    assert granted == dataclasses.replace(asked, granted=True, extent=granted.extent)
    assert granted.extent == Extent(8192, EOF)


def test_extent_growth_for_a_lone_writer_and_its_neighbours() -> None:
    ns = Namespace()
    a, _ = ns.enqueue("c1", R2, PW, extent=Extent(1 << 20, (1 << 20) + 8191))
    assert a.extent == Extent(1 << 20, EOF) and a.req_extent == Extent(1 << 20, (1 << 20) + 8191)
    # A writer below a's grown range grows up to just before it.
    b, _ = ns.enqueue("c2", R2, PW, extent=Extent(0, 4095))
    assert b.granted and b.extent == Extent(0, (1 << 20) - 1)
    # Without expansion, exactly what was asked.
    ns2 = Namespace()
    c, _ = ns2.enqueue("c1", R2, PW, extent=Extent(0, 4095), grow=False)
    assert c.extent == Extent(0, 4095)


def test_growth_respects_waiting_locks() -> None:
    ns = Namespace()
    h, _ = ns.enqueue("c1", R2, PW, extent=Extent(0, 99), grow=False)
    w, _ = ns.enqueue("c2", R2, PR, extent=Extent(50, 60))          # waits for h
    late_reader, _ = ns.enqueue("c3", R2, PR, extent=Extent(1000, 1999))
    assert late_reader.granted and late_reader.extent == Extent(1000, EOF)
    # A writer past h: must not grow over the reader waiting behind... nor the granted reader.
    wr, _ = ns.enqueue("c4", R2, PW, extent=Extent(200, 299))
    assert wr.granted and wr.extent == Extent(200, 999)
    assert not ns.get(w.cookie).granted                                  # type: ignore[union-attr]


def test_malformed_requests() -> None:
    ns = Namespace()
    for kwargs in ({"ibits": 64}, {"ibits": 1, "extent": Extent(0, 1)}):
        with pytest.raises(LpError) as ei:
            ns.enqueue("c1", R1, PR, **kwargs)  # type: ignore[arg-type]
        assert ei.value.errno == errno.EINVAL
    with pytest.raises(LpError):
        ns.enqueue("c1", R1, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ResId(-1)


# -- random sequences of requests ------------------------------------------------

OWNERS = ["c1", "c2", "c3", "local"]
RESOURCES = [ResId(1), ResId(2)]


@st.composite
def requests(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["ibits", "extent", "plain"]))
    req: dict = {"owner": draw(st.sampled_from(OWNERS)), "res": draw(st.sampled_from(RESOURCES)),
                 "mode": draw(st.sampled_from(list(LockMode))), "grow": draw(st.booleans())}
    if kind == "ibits":
        req["ibits"] = draw(st.integers(1, 63))
    elif kind == "extent":
        a = draw(st.integers(0, 40))
        b = draw(st.one_of(st.integers(a, 40), st.just(EOF)))
        req["extent"] = Extent(a, b)
    return req


class LockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ns = Namespace()
        self.now = 0.0
        self.callbacks: dict[int, int] = {}     # holder cookie -> callbacks sent

    def _apply(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, BlockingCallback):
                assert not ev.holder.local and ev.holder.granted and not ev.conflicting.granted
                assert locks_conflict(ev.holder, ev.conflicting)
                self.callbacks[ev.holder.cookie] = self.callbacks.get(ev.holder.cookie, 0) + 1
                assert self.callbacks[ev.holder.cookie] == 1
            elif isinstance(ev, Granted):
                self._check_growth(ev.lock)

    def _check_growth(self, lock: Lock) -> None:
        # The grown part of a new grant never overlaps an incompatible granted or waiting lock.
        if lock.extent is None or lock.req_extent is None or lock.extent == lock.req_extent:
            return
        added = Extent(lock.req_extent.end + 1, lock.extent.end)
        probe = Lock(0, "?", lock.res, lock.mode, extent=added)
        for other in self.ns.granted(lock.res) + self.ns.waiting(lock.res):
            if other.cookie != lock.cookie:
                assert not locks_conflict(probe, other), (lock, other)

    def all_locks(self) -> list[Lock]:
        return [lk for r in self.ns.resources() for lk in self.ns.granted(r) + self.ns.waiting(r)]

    @rule(req=requests())
    def enqueue(self, req: dict) -> None:
        self.now += 1
        owner = req.pop("owner")
        lock, events = self.ns.enqueue(owner, now=self.now, local=owner == "local", **req)
        self._apply(events)

    @precondition(lambda self: self.all_locks())
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self.now += 1
        lock = data.draw(st.sampled_from(self.all_locks()))
        self._apply(self.ns.cancel(lock.cookie, now=self.now))

    @rule(owner=st.sampled_from(OWNERS))
    def drop_owner(self, owner: str) -> None:
        self.now += 1
        events = self.ns.drop_owner(owner, now=self.now)
        self._apply(events)
        assert self.ns.owner_locks(owner) == []

    @invariant()
    def no_two_incompatible_granted(self) -> None:
        for r in self.ns.resources():
            granted = self.ns.granted(r)
            for i, a in enumerate(granted):
                for b in granted[i + 1:]:
                    assert not locks_conflict(a, b), (a, b)

    @invariant()
    def fcfs(self) -> None:
        for r in self.ns.resources():
            waiting = self.ns.waiting(r)
            granted = self.ns.granted(r)
            for i, w in enumerate(waiting):
                # Nobody that came later and conflicts with w got past it ...
                for g in granted:
                    if g.cookie > w.cookie:
                        assert not locks_conflict(g, w), (g, w)
                # ... and w waits for a reason.
                assert any(locks_conflict(w, x) for x in granted + waiting[:i]), w
            for i, a in enumerate(waiting):      # queue order is arrival order
                assert all(a.cookie < b.cookie for b in waiting[i + 1:])

    @invariant()
    def callbacks_only_to_blocking_holders(self) -> None:
        for r in self.ns.resources():
            for g in self.ns.granted(r):
                st_ = self.ns.state(g.cookie)
                assert st_ is not None
                if st_.blocking_sent_at is not None:
                    assert not g.local and self.callbacks.get(g.cookie) == 1


TestLockMachine = LockMachine.TestCase
TestLockMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


def test_local_lock_on_behalf_of_a_client_ignores_only_that_clients_locks():
    from lustrepy.ldlm.modes import LockMode as M
    from lustrepy.ldlm.resource import BlockingCallback, Namespace, ResId

    ns = Namespace("t")
    r = ResId(1, 2, 0)
    a, _ = ns.enqueue("a", r, M.PR, ibits=2)
    b, _ = ns.enqueue("b", r, M.PR, ibits=2)
    lk, events = ns.enqueue("mds", r, M.EX, ibits=2, local=True, on_behalf="a")
    assert not lk.granted
    assert [e.holder.owner for e in events if isinstance(e, BlockingCallback)] == ["b"]
    events = ns.cancel(b.cookie)
    assert ns.get(lk.cookie).granted and ns.get(a.cookie).granted
