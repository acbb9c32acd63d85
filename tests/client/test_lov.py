"""The data path of one client over real OSS processes: striped round trips, holes, size, truncate,
buffering, and the API's edge cases."""

from __future__ import annotations

import errno
import os
import random

import pytest

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import MAX_FILE_SIZE, Layout

pytestmark = pytest.mark.timeout(60)

KiB, MiB = 1 << 10, 1 << 20


def _model_write(model: bytearray, off: int, data: bytes) -> None:
    if len(model) < off:
        model.extend(bytes(off - len(model)))
    model[off:off + len(data)] = data


@pytest.mark.parametrize("stripe_count,stripe_size", [(1, 64 * KiB), (4, 64 * KiB), (4, MiB)])
def test_random_round_trip_crossing_stripes(make_dp, new_file, stripe_count, stripe_size):
    fid, layout = new_file(stripe_count, stripe_size)
    assert len(layout.objects) == stripe_count
    rnd = random.Random(stripe_count * 1000 + stripe_size)
    dp = make_dp("rt")
    fd = dp.open(fid, layout)
    model = bytearray()
    span = stripe_size * stripe_count * 3
    for i in range(60):
        off = rnd.randrange(0, span)
        n = rnd.choice([1, 17, 4095, 4096, stripe_size - 3, stripe_size + 5, 3 * stripe_size + 11])
        data = rnd.randbytes(n)
        assert fd.write(off, data) == n
        _model_write(model, off, data)
        if i % 7 == 0:                       # reads see unflushed writes, bit for bit
            a = rnd.randrange(0, len(model))
            b = rnd.randrange(a, len(model) + 2 * stripe_size)
            assert fd.read(a, b - a) == bytes(model[a:b])
        if i % 20 == 19:
            fd.flush()
    assert fd.size() == len(model)
    assert fd.read(0, len(model) + 100) == bytes(model)
    fd.release()

    other = make_dp("fresh").open(fid, layout)           # another client reads what reached the OSTs
    assert other.size() == len(model)
    for _ in range(20):
        a = rnd.randrange(0, len(model))
        n = rnd.randrange(1, 3 * stripe_size)
        assert other.read(a, n) == bytes(model[a:a + n])
    assert other.read(0, len(model)) == bytes(model)
    assert other.read(len(model), 10) == b"" and other.read(len(model) + 5 * MiB, 10) == b""
    other.release()


def test_holes_read_as_zeros_and_size_counts_the_last_byte(make_dp, new_file):
    fid, layout = new_file(4, 64 * KiB)
    fd = make_dp().open(fid, layout)
    far = 10 * MiB + 3
    fd.write(far, b"end")
    fd.write(100, b"start")
    assert fd.size() == far + 3
    fd.flush()
    got = fd.read(0, far + 100)
    assert len(got) == far + 3
    assert got[100:105] == b"start" and got[far:] == b"end"
    assert got[:100] == bytes(100) and got[105:far] == bytes(far - 105)
    fd.release()
    fresh = make_dp().open(fid, layout)
    assert fresh.size() == far + 3                  # from the objects' LVBs
    assert fresh.read(far - 2, 10) == b"\0\0end"
    fresh.release()


def test_size_of_a_file_written_only_in_a_middle_stripe(make_dp, new_file):
    fid, layout = new_file(4, 64 * KiB)
    fd = make_dp().open(fid, layout)
    fd.write(2 * 64 * KiB + 10, b"x")               # object 2 only
    fd.release()
    other = make_dp().open(fid, layout)
    assert other.size() == 2 * 64 * KiB + 11
    assert other.read(0, 1 << 30) == bytes(2 * 64 * KiB + 10) + b"x"
    other.release()


def test_truncate_down_and_up(make_dp, new_file):
    fid, layout = new_file(4, 64 * KiB)
    dp = make_dp()
    fd = dp.open(fid, layout)
    data = os.urandom(MiB + 12345)
    fd.write(0, data)
    fd.truncate(300 * KiB + 7)                      # also cuts data still dirty
    assert fd.size() == 300 * KiB + 7
    assert fd.read(0, MiB * 2) == data[:300 * KiB + 7]
    fd.truncate(2 * MiB)
    assert fd.size() == 2 * MiB
    assert fd.read(0, 3 * MiB) == data[:300 * KiB + 7] + bytes(2 * MiB - 300 * KiB - 7)
    fd.write(5, b"after")
    fd.release()
    other = make_dp().open(fid, layout)
    assert other.size() == 2 * MiB
    assert other.read(0, 10) == data[:5] + b"after"
    other.truncate(0)
    assert other.size() == 0 and other.read(0, 10) == b""
    other.release()
    assert fd.size() == 0                           # the first client's locks were called back


def test_one_file_data_per_inode_and_cached_locks(make_dp, new_file):
    fid, layout = new_file(2)
    dp = make_dp()
    a = dp.open(fid, layout)
    b = dp.open(fid, layout)
    assert a is b
    assert not a.cached_lock()
    a.write(0, b"hello")
    assert not a.cached_lock()                      # PW [0, EOF] on the written object only...
    assert a.read(0, 10) == b"hello"                # ...the read (ahead) takes PR on the other one
    assert a.cached_lock()
    a.release()
    b.release()
    assert dp.open(fid, layout) is a                # still known: it holds locks
    a.release()


def test_small_random_writes_are_buffered(make_dp, new_file):
    fid, layout = new_file(4, 64 * KiB)
    dp = make_dp()
    fd = dp.open(fid, layout)
    rnd = random.Random(3)
    model = bytearray(4 * MiB)
    for _ in range(2000):
        off = rnd.randrange(0, 4 * MiB // 4096) * 4096
        blk = rnd.randbytes(4096)
        fd.write(off, blk)
        model[off:off + 4096] = blk
    fd.flush()
    st = dp.statistics()
    assert st["write_rpcs"] <= 16, st["write_rpcs"]     # a few streams, not one RPC per write
    assert fd.read(0, 4 * MiB)[:len(model)].ljust(len(model), b"\0") == bytes(model)
    fd.release()


def test_sequential_io_streams_in_large_messages(make_dp, new_file):
    fid, layout = new_file(4)
    dp = make_dp()
    fd = dp.open(fid, layout)
    blocks = [os.urandom(MiB) for _ in range(4)]
    for i in range(32):
        fd.write(i * MiB, blocks[i % 4])
    fd.flush()
    st = dp.statistics()
    assert st["write_bytes"] == 32 * MiB and st["write_rpcs"] <= 16
    assert st["lock_enqueues"] == 4                 # one grown PW lock per object
    fd.drop_cache()
    for i in range(0, 32 * MiB, 128 * KiB):
        assert fd.read(i, 128 * KiB) == blocks[i // MiB % 4][i % MiB:i % MiB + 128 * KiB]
    st = dp.statistics()
    assert st["read_rpcs"] <= 16 and st["cache_hits"] > 200
    fd.fsync()
    fd.release()


def test_append_in_one_client(make_dp, new_file):
    fid, layout = new_file(2, 64 * KiB)
    fd = make_dp().open(fid, layout)
    offs = [fd.append(bytes([i]) * 50_000) for i in range(6)]
    assert offs == [i * 50_000 for i in range(6)]
    assert fd.size() == 300_000
    assert fd.read(0, 300_000) == b"".join(bytes([i]) * 50_000 for i in range(6))
    fd.release()


def test_empty_layout_reads_empty_and_refuses_writes(make_dp):
    dp = make_dp()
    fd = dp.open(Fid(0x200000401, 99), Layout(objects=()))
    assert fd.read(0, 100) == b"" and fd.size() == 0 and not fd.cached_lock()
    with pytest.raises(LpError) as ei:
        fd.write(0, b"x")
    assert ei.value.errno == errno.EIO
    fd.truncate(0)
    fd.flush()
    fd.fsync()
    fd.release()


def test_layout_arriving_later_replaces_the_empty_one(make_dp, new_file):
    fid, layout = new_file(1)
    dp = make_dp()
    empty = dp.open(fid, Layout(objects=()))
    fd = dp.open(fid, layout)
    assert fd is empty and fd.layout == layout
    fd.write(0, b"data")
    assert dp.open(fid, Layout(objects=())).read(0, 4) == b"data"   # an empty layout never replaces one
    fd.release()
    fd.release()
    fd.release()


def test_offsets_past_the_maximum_file_size(make_dp, new_file):
    fid, layout = new_file(1)
    fd = make_dp().open(fid, layout)
    for call in (lambda: fd.write(MAX_FILE_SIZE - 1, b"xy"), lambda: fd.truncate(MAX_FILE_SIZE + 1)):
        with pytest.raises(LpError) as ei:
            call()
        assert ei.value.errno == errno.EFBIG
    with pytest.raises(LpError) as ei:
        fd.write(-1, b"x")
    assert ei.value.errno == errno.EINVAL
    assert fd.read(MAX_FILE_SIZE, 10) == b""
    fd.write(MAX_FILE_SIZE - 1, b"z")               # the very last byte is accepted...
    assert fd.size() == MAX_FILE_SIZE
    assert fd.read(MAX_FILE_SIZE - 1, 10) == b"z"
    try:
        fd.flush()
    except LpError as e:                            # ...though the OST's own file system may refuse it
        assert e.errno == errno.EFBIG
    fd.truncate(0)
    tib = 1 << 40
    fd.write(tib, b"far")
    fd.flush()
    assert fd.size() == tib + 3 and fd.read(tib - 1, 10) == b"\0far"
    fd.truncate(0)
    fd.release()
