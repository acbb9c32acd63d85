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


def test_holds_are_taken_by_their_threads_open_or_expire():
    clock = Clock()
    h = RetryHolds(clock)
    assert h.held(7, 1, 10) is None
    assert h.held(7, 1, 11) == 10           # the thread's second hold of one inode: the older one goes
    assert h.take(7, 1) == 11 and h.take(7, 1) is None
    h.held(7, 2, 20)
    clock.t += HOLD_FOR / 2
    h.held(7, 3, 30)
    clock.t += HOLD_FOR / 2 + 0.1
    assert h.expired() == [20]
    assert h.take(7, 3) == 30


def test_another_threads_open_of_the_inode_leaves_the_hold():
    h = RetryHolds(Clock())
    h.held(7, 1, 10)
    assert h.held(8, 1, 11) is None         # two threads retrying on one inode: a hold each
    assert h.take(9, 1) is None             # a reader that never saw ESTALE opens it: no hold of its own
    assert h.take(8, 1) == 11
    assert h.take(7, 1) == 10


def test_no_more_holds_than_the_bound():
    h = RetryHolds(Clock())
    h.stale_answered(5)
    for ino in range(MAX_HOLDS):
        h.held(5, ino, ino)
    assert not h.retrying(5)                # full: the lookup stays a plain lookup
