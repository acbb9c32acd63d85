"""RetryHolds: which threads are walking a path again after ESTALE, and the holds they made."""

from __future__ import annotations

from lustrepy.client.reval import HOLD_FOR, MAX_HOLDS, RETRY_WINDOW, RetryHolds


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_only_a_thread_answered_estale_retries_and_only_within_its_window():
    clock = Clock()
    h = RetryHolds(clock)
    assert not h.retrying(7)
    h.stale_answered(7)
    assert h.retrying(7) and not h.retrying(8)
    clock.t += RETRY_WINDOW + 0.1
    assert not h.retrying(7)
    h.stale_answered(0)                     # no thread id: nothing to remember
    assert h.statistics() == {"retrying_threads": 0, "holds": 0}


def test_holds_are_taken_by_their_open_or_expire():
    clock = Clock()
    h = RetryHolds(clock)
    assert h.held(1, 10) is None
    assert h.held(1, 11) == 10              # a second hold of one inode: the older one goes
    assert h.take(1) == 11 and h.take(1) is None
    h.held(2, 20)
    clock.t += HOLD_FOR / 2
    h.held(3, 30)
    clock.t += HOLD_FOR / 2 + 0.1
    assert h.expired() == [20]
    assert h.take(3) == 30


def test_no_more_holds_than_the_bound():
    h = RetryHolds(Clock())
    h.stale_answered(5)
    for ino in range(MAX_HOLDS):
        h.held(ino, ino)
    assert not h.retrying(5)                # full: the lookup stays a plain lookup
