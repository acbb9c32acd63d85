"""Checksums at rest on a real OST directory, without gRPC: every write, partial write, punch and
hole keeps them right; a byte flipped on disk is EBADMSG on read (never the bytes) and stays in
the bad list until a write covers its block whole; a crash between an object's bytes and its
checksums gives no false mismatch at the next start."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time

import crc32c
import pytest

from lustrepy.common.errors import LpError
from lustrepy.oss.csum import BLOCK, DIRTY_FILE, nblocks
from lustrepy.oss.integrity import Corrupt, matches
from lustrepy.oss.tgt import Tgt
from tests.oss.test_oss_ofd import make_ofd, read, write

pytestmark = pytest.mark.timeout(120)

MiB = 1 << 20


def flip(ofd, oid: int, offset: int) -> None:
    """Change one byte of the object's file behind the OSS's back (bit rot)."""
    path = ofd.osd.path(oid)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def assert_checksums_match(ofd, oid: int) -> None:
    """Every block's recorded crc agrees with the bytes on disk, and nothing is recorded past the end."""
    data = open(ofd.osd.path(oid), "rb").read()
    n = nblocks(len(data))
    got = ofd.integrity.sidecars.get(oid, 0, n + 4)
    for b in range(n):
        block = data[b * BLOCK:(b + 1) * BLOCK]
        assert matches(crc32c.crc32c(block), got[b], len(block)), f"block {b}"
    assert got[n:] == [0] * 4


def test_writes_partial_writes_punches_and_holes_keep_the_checksums(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    oid, _ = ofd.precreate(1)
    rnd = random.Random(7)
    want = bytearray()
    for step in range(120):
        kind = rnd.random()
        if kind < 0.15:
            size = rnd.choice([0, 1, BLOCK - 1, BLOCK, BLOCK + 1, rnd.randrange(0, 3 * MiB)])
            ofd.punch(oid, size)
            want = want[:size] + bytes(max(0, size - len(want)))
        else:
            off = rnd.choice([rnd.randrange(0, 3 * MiB), rnd.randrange(0, 4) * BLOCK, len(want),
                              len(want) + rnd.randrange(1, 2 * BLOCK)])
            n = rnd.choice([1, 100, 4096, BLOCK, BLOCK + 7, 2 * BLOCK, MiB, rnd.randrange(1, 300_000)])
            data = os.urandom(n)
            write(ofd, oid, off, data)
            if len(want) < off + n:
                want += bytes(off + n - len(want))
            want[off:off + n] = data
        if step % 10 == 0:
            assert_checksums_match(ofd, oid)
    assert_checksums_match(ofd, oid)
    assert read(ofd, oid, 0, len(want) + 10) == bytes(want)
    for _ in range(30):                               # reads at any offset and length check their blocks
        off = rnd.randrange(0, len(want) + 1)
        n = rnd.randrange(1, 400_000)
        assert read(ofd, oid, off, n) == bytes(want[off:off + n])
    assert ofd.integrity.bad.snapshot() == (0, [])


def test_holes_read_as_zeros_without_a_mismatch(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    oid, _ = ofd.precreate(1)
    write(ofd, oid, 5 * MiB + 10, b"tail")
    ofd.punch(oid, 9 * MiB)                         # and a hole past the old end
    assert read(ofd, oid, 0, 5 * MiB) == bytes(5 * MiB)
    assert read(ofd, oid, 5 * MiB + 8, 8) == b"\0\0tail\0\0"
    assert read(ofd, oid, 6 * MiB, 3 * MiB) == bytes(3 * MiB)
    assert ofd.integrity.bad.snapshot() == (0, [])
    assert_checksums_match(ofd, oid)


def test_a_flipped_byte_is_ebadmsg_on_read_and_stays_bad_until_rewritten_whole(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    oid, _ = ofd.precreate(1)
    data = os.urandom(4 * BLOCK)
    write(ofd, oid, 0, data)
    flip(ofd, oid, 2 * BLOCK + 123)
    with pytest.raises(Corrupt) as e:
        read(ofd, oid, 0, len(data))
    assert e.value.errno == errno.EBADMSG and e.value.blocks == [2]
    assert ofd.integrity.bad.snapshot() == (1, [(oid, 2)])
    assert read(ofd, oid, 0, 2 * BLOCK) == data[:2 * BLOCK]          # the other blocks still read
    assert read(ofd, oid, 3 * BLOCK, BLOCK) == data[3 * BLOCK:]
    with pytest.raises(LpError) as e2:                               # the lane's read path too
        ofd.read_into(oid, 2 * BLOCK + 100, 10, lambda n: memoryview(bytearray(n)))
    assert e2.value.errno == errno.EBADMSG
    # a partial write does not bless the bad bytes around it; a known bad block is not counted twice
    write(ofd, oid, 2 * BLOCK + 10, b"x" * 100)
    with pytest.raises(Corrupt):
        read(ofd, oid, 2 * BLOCK, 10)
    assert ofd.integrity.bad.snapshot() == (1, [(oid, 2)])
    assert make_ofd(ofd.osd.root).integrity.bad.snapshot() == (1, [(oid, 2)])    # kept across starts
    # a write covering the block whole repairs it
    fresh = os.urandom(BLOCK)
    write(ofd, oid, 2 * BLOCK, fresh)
    assert ofd.integrity.bad.snapshot() == (1, [])
    assert read(ofd, oid, 0, len(data)) == data[:2 * BLOCK] + fresh + data[3 * BLOCK:]


def test_a_partial_write_into_a_rotten_block_marks_it_bad(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    oid, _ = ofd.precreate(1)
    write(ofd, oid, 0, os.urandom(2 * BLOCK))
    flip(ofd, oid, 5)
    write(ofd, oid, 100, b"new bytes")              # nobody read block 0 yet: the write finds it
    assert ofd.integrity.bad.snapshot() == (1, [(oid, 0)])
    with pytest.raises(Corrupt):
        read(ofd, oid, 100, 9)


def test_a_cut_drops_the_bad_blocks_past_the_end_and_a_destroy_drops_all(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    first, _ = ofd.precreate(2)
    write(ofd, first, 0, os.urandom(4 * BLOCK))
    write(ofd, first + 1, 0, os.urandom(BLOCK))
    flip(ofd, first, 3 * BLOCK + 1)
    flip(ofd, first + 1, 1)
    for oid in (first, first + 1):
        with pytest.raises(Corrupt):
            read(ofd, oid, 0, 4 * BLOCK)
    ofd.punch(first, 3 * BLOCK)
    assert ofd.integrity.bad.snapshot() == (2, [(first + 1, 0)])
    ofd.destroy([first + 1])
    assert ofd.integrity.bad.snapshot() == (2, [])
    assert not os.path.exists(ofd.integrity.sidecars.path(first + 1))


def test_bytes_written_but_not_their_checksums_give_no_false_mismatch_after_a_restart(tmp_path):
    d = str(tmp_path / "ost")
    ofd = make_ofd(d)
    first, _ = ofd.precreate(2)
    write(ofd, first, 0, os.urandom(3 * BLOCK))
    write(ofd, first + 1, 0, os.urandom(BLOCK))
    ofd.sync_objects(set())                         # a commit
    assert ofd.integrity.dirty.left_over() == []
    # a change starts (recorded), its bytes reach the file, then the process dies before the checksums
    ofd.integrity.dirty.begin([first])
    new = os.urandom(BLOCK + 5)
    with open(ofd.osd.path(first), "r+b") as f:
        f.seek(BLOCK - 3)
        f.write(new)
    assert ofd.integrity.dirty.left_over() == [first, first + 1]     # with the next precreated id
    again = make_ofd(d)                             # the next start recomputes what the log names
    assert again.integrity.dirty.left_over() == []
    assert read(again, first, BLOCK - 3, len(new)) == new
    assert again.integrity.bad.snapshot() == (0, [])
    # the same change to an object not in the log is bit rot, and is caught
    flip(again, first + 1, 7)
    with pytest.raises(Corrupt):
        read(again, first + 1, 0, BLOCK)


def test_a_commit_makes_the_checksums_durable_and_empties_the_dirty_log(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    tgt = Tgt(ofd.osd, ofd.sync_objects, interval=3600)
    oid, _ = ofd.precreate(1)
    write(ofd, oid, 0, b"a" * 1000)
    assert ofd.integrity.dirty.left_over() == [oid]
    tgt.stamp("c", [oid])
    tgt.commit()
    assert ofd.integrity.dirty.left_over() == []
    assert os.path.getsize(os.path.join(ofd.osd.root, DIRTY_FILE)) == 0


_WRITER = """
import os, random, sys
import crc32c
from tests.oss.test_oss_ofd import make_ofd, write
ofd = make_ofd(sys.argv[1])
first, last = int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(int(sys.argv[4]))
print("ready", flush=True)
while True:
    oid = rnd.randint(first, last)
    off = rnd.randrange(0, 1 << 20)
    write(ofd, oid, off, os.urandom(rnd.choice([10, 5000, 70000, 200000])))
    if rnd.random() < 0.1:
        ofd.punch(oid, rnd.randrange(0, 1 << 20))
    if rnd.random() < 0.05:
        ofd.sync_objects(set())
"""


def test_kill_9_of_a_writing_process_at_any_moment_gives_no_false_mismatch(tmp_path):
    d = str(tmp_path / "ost")
    first, last = make_ofd(d).precreate(6)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for round_ in range(6):
        p = subprocess.Popen([sys.executable, "-c", _WRITER, d, str(first), str(last), str(round_)],
                             stdout=subprocess.PIPE, cwd=root, start_new_session=True)
        try:
            assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
            time.sleep(0.2 + 0.15 * round_)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            p.stdout.close()
        ofd = make_ofd(d)
        for oid in range(first, last + 1):
            read(ofd, oid, 0, 2 << 20)              # raises Corrupt on a mismatch
            assert_checksums_match(ofd, oid)
        assert ofd.integrity.bad.snapshot() == (0, [])


def test_an_object_recreated_empty_keeps_nothing_of_the_lost_ones_checksums(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    oid, _ = ofd.precreate(1)
    write(ofd, oid, 0, os.urandom(4 * BLOCK))
    os.unlink(ofd.osd.path(oid))                    # lost behind the OSS's back; lfsck recreates it
    assert ofd.recreate([oid]) == [oid]
    write(ofd, oid, 3 * BLOCK, b"late")              # blocks 0..2 are holes now
    assert read(ofd, oid, 0, 4 * BLOCK) == bytes(3 * BLOCK) + b"late"
    assert ofd.integrity.bad.snapshot() == (0, [])
