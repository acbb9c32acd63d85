"""Two clients (two DataPaths with their own client ids) on one file: what one writes the other
reads at once, appends from both lose nothing, sizes are glimpsed without revoking the writer."""

from __future__ import annotations

import os
import threading

import pytest

pytestmark = pytest.mark.timeout(60)

KiB, MiB = 1 << 10, 1 << 20


@pytest.mark.parametrize("stripe_count", [1, 4])
def test_write_on_one_client_is_read_by_the_other_right_after(make_dp, new_file, stripe_count):
    fid, layout = new_file(stripe_count, 64 * KiB)
    a_dp, b_dp = make_dp("a"), make_dp("b")
    a, b = a_dp.open(fid, layout), b_dp.open(fid, layout)
    data = os.urandom(300 * KiB + 5)
    a.write(7, data)                                # stays dirty in a
    assert b_dp.statistics()["write_rpcs"] == 0
    assert b.read(0, MiB) == bytes(7) + data        # b's PR locks call a's PW locks back: a flushes
    assert fid in a_dp._on_invalidate.fids and a_dp.statistics()["revocations"] >= 1
    # and back again: b writes, a reads (a's read-ahead cache was dropped with its locks)
    b.write(10, b"BBBB")
    assert a.read(0, 20) == (bytes(7) + data)[:10] + b"BBBB" + (bytes(7) + data)[14:20]
    assert a.size() == b.size() == 7 + len(data)
    a.release()
    b.release()


def test_size_seen_through_a_glimpse_while_the_writer_keeps_its_lock(make_dp, new_file):
    fid, layout = new_file(2, 64 * KiB)
    w_dp, r_dp = make_dp("w"), make_dp("r")
    w, r = w_dp.open(fid, layout), r_dp.open(fid, layout)
    w.write(0, b"x" * 1000)
    w.flush()
    w.write(1000, b"y" * (200 * KiB))               # dirty, not flushed
    assert r.size() == 1000 + 200 * KiB             # the writer's dirty data counts
    ws = w_dp.statistics()
    assert ws["revocations"] == 0 and ws["osts"][layout.objects[0].ost_index]["glimpse_callbacks"] >= 1
    assert w.cached_lock()                          # the writer still holds its PW locks
    assert w.statistics()["dirty_bytes"] > 0
    assert w.size_nowait() == 1000 + 200 * KiB      # known under the writer's own locks, without I/O
    assert r.size_nowait() is None                  # another client writes: only a glimpse tells
    w.write(1000 + 200 * KiB, b"z")
    assert r.size() == 1001 + 200 * KiB
    assert w.size_nowait() == 1001 + 200 * KiB
    w.release()
    r.release()


@pytest.mark.parametrize("stripe_count", [1, 3])
def test_appends_from_two_clients_lose_nothing(make_dp, new_file, stripe_count):
    fid, layout = new_file(stripe_count, 64 * KiB)
    dps = [make_dp("app0"), make_dp("app1")]
    fds = [dp.open(fid, layout) for dp in dps]
    rec = 1000
    n = 40
    offsets: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def appender(k: int) -> None:
        try:
            for i in range(n):
                payload = f"client{k} record {i:04d} ".encode().ljust(rec - 1, b".") + b"\n"
                offsets[k].append(fds[k].append(payload))
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=appender, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(45)
    assert not errors, errors
    for fd in fds:
        fd.flush()
    total = 2 * n * rec
    assert sorted(offsets[0] + offsets[1]) == list(range(0, total, rec))
    content = fds[0].read(0, total + 10)
    assert len(content) == total and fds[1].size() == total
    lines = content.split(b"\n")[:-1]
    assert len(lines) == 2 * n
    for k in (0, 1):
        mine = [ln for ln in lines if ln.startswith(b"client%d " % k)]
        assert [int(ln.split()[2]) for ln in mine] == list(range(n))   # each record once, in order
    for fd in fds:
        fd.release()


def test_truncate_on_one_client_is_seen_by_the_other(make_dp, new_file):
    fid, layout = new_file(4, 64 * KiB)
    a_dp, b_dp = make_dp("ta"), make_dp("tb")
    a, b = a_dp.open(fid, layout), b_dp.open(fid, layout)
    a.write(0, os.urandom(MiB))
    a.flush()
    assert b.read(0, 10) == a.read(0, 10)           # both cache the file now
    b.truncate(1000)
    assert a.size() == 1000 and len(a.read(0, MiB)) == 1000
    a.write(5000, b"tail")
    assert b.read(999, 10) == a.read(999, 1) + bytes(9)
    assert b.size() == 5004
    a.release()
    b.release()
