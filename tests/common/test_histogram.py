"""Latency histogram buckets and percentiles, and the per-op / per-client RPC accounting of a server."""

from __future__ import annotations

import random
import threading

import pytest

from lustrepy.common import histogram as h
from lustrepy.common.opstats import RpcStats


def test_every_value_lands_in_a_bucket_that_holds_it() -> None:
    prev = 0
    ordered = range(0, 70_000)
    for i, v in enumerate([*ordered, *(random.randrange(1 << 33) for _ in range(20_000))]):
        b = h.bucket(v)
        lo, hi = h.bounds(b)
        assert lo <= v <= hi or (b == h.NBUCKETS - 1 and v > hi)
        if i < len(ordered):                     # buckets grow with the value
            assert b >= prev
            prev = b
        assert hi - lo <= max(1, lo // 4)        # a bucket is at most 25% wide


def test_huge_and_negative_values_are_clamped() -> None:
    assert h.bucket(1 << 50) == h.NBUCKETS - 1
    assert h.bucket(-5) == 0


def test_percentiles_are_close_to_the_exact_ones() -> None:
    rng = random.Random(7)
    values = sorted(int(rng.lognormvariate(6, 1)) for _ in range(20_000))
    counts = h.new()
    for v in values:
        counts[h.bucket(v)] += 1
    for q in (50, 90, 99):
        exact = values[int(q / 100 * len(values)) - 1]
        got = h.percentile(h.trimmed(counts), q)
        assert got is not None and abs(got - exact) <= exact * 0.25 + 1, (q, got, exact)
    assert h.percentile([], 50) is None and h.percentile([0, 0], 99) is None
    assert h.percentile([0, 0, 0, 5], 50) == 3.0         # exact buckets below 8 us


def test_subtract_gives_the_interval_and_survives_a_restart() -> None:
    before, after = [1, 2, 3], [1, 5, 3, 4]
    assert h.subtract(after, before) == [0, 3, 0, 4]
    assert h.subtract([1, 1], [2, 2, 2]) == [1, 1, 0]    # counts went down: the server restarted
    assert h.trimmed([0, 2, 0, 0]) == [0, 2]


def test_rpc_stats_counts_exactly_under_threads() -> None:
    st = RpcStats()

    def work(cid: str) -> None:
        for i in range(2000):
            st.record("write", cid, 100 + i % 50, nbytes=10, failed=i % 100 == 0)
            st.record("read", "", 5)

    threads = [threading.Thread(target=work, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = st.snapshot()
    ops = {o.op: o for o in snap.ops}
    assert ops["write"].count == 8000 and ops["write"].bytes == 80_000 and ops["write"].errors == 80
    assert sum(ops["write"].hist) == 8000 and ops["read"].hist == (0, 0, 0, 0, 0, 8000)
    assert [c.client_id for c in snap.clients] == ["c0", "c1", "c2", "c3"]     # "" (no client) is not a row
    c0 = {o.op: o for o in snap.clients[0].ops}
    assert c0["write"].count == 2000 and c0["write"].hist == () and "read" not in c0


def test_rpc_stats_forgets_the_idlest_client_when_full() -> None:
    st = RpcStats(max_clients=2)
    st.record("intent", "a", 1)
    st.record("intent", "b", 1)
    st.record("intent", "a", 1)
    st.record("intent", "c", 1)
    assert [c.client_id for c in st.snapshot().clients] == ["a", "c"]


@pytest.mark.parametrize("us", [0, 7, 8, 1000, 123_456])
def test_bounds_of_the_bucket_of(us: int) -> None:
    lo, hi = h.bounds(h.bucket(us))
    assert lo <= us <= hi
