"""The WBC journal: appends, acks, drops, compaction, torn tails, bounds and a killed writer."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lustrepy.client import journal as journal_mod
from lustrepy.client.journal import HEADER_SIZE, MAGIC, Journal
from lustrepy.common.errors import LpError
from lustrepy.rpc.v1 import common_pb2, mds_pb2

ROOT = Path(__file__).resolve().parents[2]


def create_record(name: bytes, oid: int = 1) -> mds_pb2.UpdateRecord:
    """A typical WBC create: parent, name, mode, client-chosen FID, delayed layout, credentials."""
    return mds_pb2.UpdateRecord(
        op=mds_pb2.ReintOp(create=mds_pb2.CreateOp(
            parent=common_pb2.Fid(seq=0x200000401, oid=7), name=name, mode=0o100644,
            fid=common_pb2.Fid(seq=0x200000402, oid=oid), delay_layout=True)),
        time_ns=time.time_ns(), uid=1000, gid=1000, groups=[1000, 27])


def names(recs: list[mds_pb2.UpdateRecord]) -> list[bytes]:
    return [r.op.create.name for r in recs]


def seqs(recs: list[mds_pb2.UpdateRecord]) -> list[int]:
    return [r.seq for r in recs]


@pytest.fixture
def jpath(tmp_path: Path) -> Path:
    return tmp_path / "wbc" / "client-1.journal"        # the directory does not exist yet


def test_append_ack_pending(jpath: Path) -> None:
    with Journal(jpath) as j:
        assert j.stats()["next_seq"] == 1 and j.acked_seq == 0
        assert [j.append(create_record(b"f%d" % i)) for i in range(5)] == [1, 2, 3, 4, 5]
        assert seqs(j.pending()) == [1, 2, 3, 4, 5]
        assert names(j.pending(after=2)) == [b"f2", b"f3", b"f4"]
        assert seqs(j.pending(after=1, limit=2)) == [2, 3]
        j.ack(3)
        assert seqs(j.pending()) == [4, 5] and j.acked_seq == 3
        j.ack(2)                                            # older: no-op
        j.ack(3)                                            # repeated: no-op
        assert seqs(j.pending()) == [4, 5]
        st_ = j.stats()
        assert st_["pending"] == 2 and st_["appended"] == 5 and st_["acked_seq"] == 3 and st_["next_seq"] == 6
        assert st_["file_bytes"] == os.path.getsize(jpath)
        assert st_["pending_bytes"] > 0


def test_append_checks_a_preset_seq(jpath: Path) -> None:
    with Journal(jpath) as j:
        r = create_record(b"a")
        r.seq = 1
        assert j.append(r) == 1
        r2 = create_record(b"b")
        r2.seq = 5
        with pytest.raises(LpError) as ei:
            j.append(r2)
        assert ei.value.errno == errno.EINVAL
        assert j.next_seq == 2


def test_reopen_restores_pending_and_next_seq(jpath: Path) -> None:
    with Journal(jpath) as j:
        for i in range(10):
            j.append(create_record(b"f%d" % i, oid=i))
        j.ack(4)
    with Journal(jpath) as j:
        assert seqs(j.pending()) == [5, 6, 7, 8, 9, 10]
        assert names(j.pending()) == [b"f%d" % i for i in range(4, 10)]
        assert j.pending()[0].op.create.fid.oid == 4
        assert j.acked_seq == 4 and j.next_seq == 11
        assert j.append(create_record(b"g")) == 11


def test_skip_to_moves_numbering_on_with_records_pending_and_keeps_each_records_mdt(jpath: Path) -> None:
    with Journal(jpath) as j:
        r = create_record(b"a")
        r.mdt = 1
        assert j.append(r) == 1
        j.skip_to(40)                       # an MDT asked late has records up to 39
        j.skip_to(7)                        # never back
        assert j.next_seq == 40 and seqs(j.pending()) == [1]
        assert j.append(create_record(b"b")) == 40
        j.skip_to(90)                       # nothing took these numbers: not kept by itself
    with Journal(jpath) as j:
        assert seqs(j.pending()) == [1, 40] and [x.mdt for x in j.pending()] == [1, 0]
        assert j.next_seq == 41
        j.ack(40)
        assert j.acked_seq == 40 and not j.pending()


def test_compaction_drops_acked_entries_and_keeps_seq_monotonic(jpath: Path) -> None:
    with Journal(jpath) as j:
        for i in range(100):
            j.append(create_record(b"f%d" % i))
        j.ack(60)
        before = os.path.getsize(jpath)
        j.compact()
        after = os.path.getsize(jpath)
        assert after < before / 2
        assert after == HEADER_SIZE + j.stats()["pending_bytes"] == j.stats()["file_bytes"]
        assert seqs(j.pending()) == list(range(61, 101))
        assert j.append(create_record(b"x")) == 101
        j.ack(101)                                          # nothing pending: compacts by itself
        assert os.path.getsize(jpath) == HEADER_SIZE
        assert j.stats()["compactions"] == 2
        assert j.append(create_record(b"y")) == 102
    with Journal(jpath) as j:
        assert seqs(j.pending()) == [102] and j.next_seq == 103
        j.ack(102)
    with Journal(jpath) as j:
        assert j.pending() == [] and j.next_seq == 103 and j.acked_seq == 102
    assert not os.path.exists(str(jpath) + ".tmp")


def test_mostly_acknowledged_big_file_compacts_itself(jpath: Path) -> None:
    with Journal(jpath, compact_bytes=4096) as j:
        for i in range(200):
            j.append(create_record(b"f%d" % i))
        big = os.path.getsize(jpath)
        j.ack(40)                                           # a fifth acknowledged: stays
        assert j.stats()["compactions"] == 0 and os.path.getsize(jpath) > big
        j.ack(150)                                          # three quarters: rewritten
        assert j.stats()["compactions"] == 1
        assert os.path.getsize(jpath) < big / 3
        assert seqs(j.pending()) == list(range(151, 201))


def test_torn_tail_is_cut_at_last_good_record(jpath: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Journal(jpath) as j:
        for i in range(20):
            j.append(create_record(b"f%d" % i))
    size = os.path.getsize(jpath)
    os.truncate(jpath, size - 7)                            # a partial last entry
    with caplog.at_level(logging.WARNING, logger="lustrepy.client.journal"):
        with Journal(jpath) as j:
            assert seqs(j.pending()) == list(range(1, 20))
            assert j.append(create_record(b"again")) == 20
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "torn or corrupt" in warnings[0].getMessage()
    with Journal(jpath) as j:                               # the cut was made durable: no garbage between
        assert seqs(j.pending()) == list(range(1, 21))
        assert names(j.pending())[-1] == b"again"


def test_header_only_tail_fragment(jpath: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Journal(jpath) as j:
        j.append(create_record(b"a"))
    with open(jpath, "ab") as f:
        f.write(b"\x05\x00")                                 # less than an entry head
    with caplog.at_level(logging.WARNING, logger="lustrepy.client.journal"):
        with Journal(jpath) as j:
            assert seqs(j.pending()) == [1]
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1


def test_flipped_byte_in_last_entry_is_cut(jpath: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Journal(jpath) as j:
        for i in range(20):
            j.append(create_record(b"name-%d" % i))
    data = bytearray(jpath.read_bytes())
    pos = data.rfind(b"name-19")
    data[pos + 2] ^= 0x20
    jpath.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="lustrepy.client.journal"):
        with Journal(jpath) as j:
            assert seqs(j.pending()) == list(range(1, 20))
            assert j.next_seq == 20
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1


def test_bad_magic_is_a_one_line_error(jpath: Path) -> None:
    jpath.parent.mkdir(parents=True)
    jpath.write_bytes(b"this is not a journal at all, just some text\n" * 3)
    with pytest.raises(LpError) as ei:
        Journal(jpath)
    msg = str(ei.value)
    assert "\n" not in msg and str(jpath) in msg and "magic" in msg
    assert jpath.read_bytes().startswith(b"this is not")        # left alone
    jpath.unlink()
    Journal(jpath).close()                                      # the lock was released on failure


def test_wrong_version_is_an_error(jpath: Path) -> None:
    with Journal(jpath):
        pass
    data = bytearray(jpath.read_bytes())
    assert data.startswith(MAGIC)
    data[8] = 9
    jpath.write_bytes(bytes(data))
    with pytest.raises(LpError) as ei:
        Journal(jpath)
    assert "version 9" in str(ei.value) and str(jpath) in str(ei.value) and "\n" not in str(ei.value)


def test_corrupt_header_is_an_error(jpath: Path) -> None:
    with Journal(jpath):
        pass
    data = bytearray(jpath.read_bytes())
    data[20] ^= 1                                           # inside base_seq
    jpath.write_bytes(bytes(data))
    with pytest.raises(LpError) as ei:
        Journal(jpath)
    assert "checksum" in str(ei.value) and "\n" not in str(ei.value)


def test_one_journal_per_identity(jpath: Path) -> None:
    with Journal(jpath):
        with pytest.raises(LpError) as ei:
            Journal(jpath)
        assert ei.value.errno == errno.EBUSY
    Journal(jpath).close()


def test_bounds(jpath: Path) -> None:
    with Journal(jpath, max_records=3) as j:
        for i in range(3):
            assert not j.full
            j.append(create_record(b"f%d" % i))
        assert j.full
        j.append(create_record(b"more"))                    # append never refuses
        j.ack(2)
        assert not j.full
    with Journal(jpath, max_bytes=200) as j:
        assert not j.full
        while not j.full:
            j.append(create_record(b"f"))
        assert j.stats()["pending_bytes"] >= 200
        j.ack(j.next_seq - 1)
        assert not j.full and j.stats()["pending_bytes"] == 0


def test_start_after(jpath: Path) -> None:
    with Journal(jpath) as j:
        j.start_after(41)
        assert j.next_seq == 42 and j.acked_seq == 41
        assert j.append(create_record(b"a")) == 42
        with pytest.raises(LpError) as ei:
            j.start_after(100)                              # a record is pending
        assert ei.value.errno == errno.EBUSY
        j.ack(42)
        j.start_after(42)                                   # no change
        assert j.next_seq == 43
    with Journal(jpath) as j:
        assert j.next_seq == 43
        j.start_after(10)                                   # the MDS is the authority, even backwards
        assert j.next_seq == 11
    with Journal(jpath) as j:
        assert j.next_seq == 11


def test_drop(jpath: Path) -> None:
    with Journal(jpath) as j:
        for i in range(4):
            j.append(create_record(b"f%d" % i))
        j.drop(2)
        assert seqs(j.pending()) == [1, 3, 4] and j.acked_seq == 0
        j.drop(2)                                           # not pending: ignored
        j.drop(1)
        assert seqs(j.pending()) == [3, 4] and j.acked_seq == 2
        j.drop(4)                                           # the newest: its seq stays used
        with pytest.raises(LpError):
            j.drop(9)
    with Journal(jpath) as j:
        assert seqs(j.pending()) == [3] and j.next_seq == 5
        j.compact()
    with Journal(jpath) as j:
        assert seqs(j.pending()) == [3] and j.next_seq == 5
        j.drop(3)
        assert j.pending() == [] and j.acked_seq == 4
        assert os.path.getsize(jpath) == HEADER_SIZE
    with Journal(jpath) as j:
        assert j.next_seq == 5


def test_ack_beyond_written_moves_numbering_on(jpath: Path) -> None:
    with Journal(jpath) as j:
        j.append(create_record(b"a"))
        j.ack(7)                                            # the MDS has seqs this journal lost
        assert j.pending() == [] and j.next_seq == 8
    with Journal(jpath) as j:
        assert j.next_seq == 8


def test_write_errors_surface_and_leave_no_garbage(jpath: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    j = Journal(jpath)
    j.append(create_record(b"ok"))
    mode = {"how": ""}

    def failing_write(fd: int, data: bytes) -> int:
        if fd == j._fd and mode["how"] == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if fd == j._fd and mode["how"] == "short":
            return real_write(fd, bytes(data)[:len(data) // 2])
        return real_write(fd, data)

    monkeypatch.setattr(journal_mod.os, "write", failing_write)
    for how, err in (("enospc", errno.ENOSPC), ("short", errno.ENOSPC)):
        mode["how"] = how
        with pytest.raises(LpError) as ei:
            j.append(create_record(b"lost"))
        assert ei.value.errno == err and str(jpath) in str(ei.value)
        with pytest.raises(LpError):
            j.ack(1)
        assert j.next_seq == 2 and seqs(j.pending()) == [1]
    mode["how"] = ""
    monkeypatch.undo()
    assert j.append(create_record(b"after")) == 2
    j.close()
    with Journal(jpath) as j2:
        assert names(j2.pending()) == [b"ok", b"after"]


def test_closed_journal_refuses(jpath: Path) -> None:
    j = Journal(jpath)
    j.close()
    j.close()
    with pytest.raises(LpError) as ei:
        j.append(create_record(b"a"))
    assert ei.value.errno == errno.EBADF


def test_concurrent_appends(jpath: Path) -> None:
    with Journal(jpath) as j:
        got: list[list[int]] = [[] for _ in range(4)]

        def worker(k: int) -> None:
            for i in range(300):
                got[k].append(j.append(create_record(b"t%d-%d" % (k, i))))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(s for g in got for s in g) == list(range(1, 1201))
        assert all(g == sorted(g) for g in got)
        j.sync()
    with Journal(jpath) as j:
        recs = j.pending()
        assert seqs(recs) == list(range(1, 1201))
        for k in range(4):
            assert [n for n in names(recs) if n.startswith(b"t%d-" % k)] == [b"t%d-%d" % (k, i) for i in range(300)]


# ---- a writer killed with SIGKILL ----------------------------------------------------------

CHILD = r"""
import sys, time
from lustrepy.client.journal import Journal
from lustrepy.rpc.v1 import common_pb2, mds_pb2

path, n, ack, forever = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"

def rec(i):
    return mds_pb2.UpdateRecord(
        op=mds_pb2.ReintOp(create=mds_pb2.CreateOp(
            parent=common_pb2.Fid(seq=0x200000401, oid=7), name=b"kill-%d" % i, mode=0o100644,
            fid=common_pb2.Fid(seq=0x200000402, oid=i), delay_layout=True)),
        time_ns=time.time_ns(), uid=1000, gid=1000)

j = Journal(path)
for i in range(1, n + 1):
    assert j.append(rec(i)) == i
if ack:
    j.ack(ack)
print("ready", flush=True)
i = n
while forever:
    i += 1
    j.append(rec(i))
sys.stdin.read()
"""


def run_and_kill(path: Path, n: int, ack: int = 0, forever: bool = False) -> None:
    """Run a child interpreter that journals n records (then maybe more), and SIGKILL it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(n), str(ack), "1" if forever else "0"],
                         cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line == b"ready\n", line
        if forever:
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        assert p.wait(timeout=30) == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_kill_9_keeps_every_appended_record(jpath: Path) -> None:
    run_and_kill(jpath, 2000)
    with Journal(jpath) as j:
        recs = j.pending()
        assert seqs(recs) == list(range(1, 2001))
        assert names(recs) == [b"kill-%d" % i for i in range(1, 2001)]
        assert j.next_seq == 2001 and j.acked_seq == 0


def test_kill_9_after_ack(jpath: Path) -> None:
    run_and_kill(jpath, 500, ack=200)
    with Journal(jpath) as j:
        assert seqs(j.pending()) == list(range(201, 501)) and j.acked_seq == 200


def test_kill_9_in_the_middle_of_appending(jpath: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_and_kill(jpath, 300, forever=True)
    with caplog.at_level(logging.WARNING, logger="lustrepy.client.journal"):
        with Journal(jpath) as j:
            recs = j.pending()
            k = len(recs)
            assert k > 300
            assert seqs(recs) == list(range(1, k + 1))
            assert names(recs) == [b"kill-%d" % i for i in range(1, k + 1)]
            assert j.next_seq == k + 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]    # nothing torn


# ---- against a model ------------------------------------------------------------------------

class JournalModel(RuleBasedStateMachine):
    """Random appends, acks, drops, reopenings, compactions and renumberings against a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="journal-model-")
        self.path = os.path.join(self.dir, "c.journal")
        self.j = Journal(self.path, compact_bytes=2048)
        self.pending: dict[int, bytes] = {}
        self.next_seq = 1
        self.count = 0

    def teardown(self) -> None:
        self.j.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def acked(self) -> int:
        return min(self.pending) - 1 if self.pending else self.next_seq - 1

    @rule(n=st.integers(1, 5))
    def append(self, n: int) -> None:
        for _ in range(n):
            self.count += 1
            name = b"n%d" % self.count
            assert self.j.append(create_record(name)) == self.next_seq
            self.pending[self.next_seq] = name
            self.next_seq += 1

    @rule(back=st.integers(0, 8))
    def ack(self, back: int) -> None:
        seq = max(0, self.next_seq - 1 - back)
        self.j.ack(seq)
        if seq > self.acked():
            self.pending = {s: n for s, n in self.pending.items() if s > seq}

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(sorted(self.pending)))
        self.j.drop(seq)
        del self.pending[seq]

    @rule()
    def reopen(self) -> None:
        self.j.close()
        self.j = Journal(self.path, compact_bytes=2048)

    @rule()
    def compact(self) -> None:
        before = os.path.getsize(self.path)
        self.j.compact()
        assert os.path.getsize(self.path) <= before

    @precondition(lambda self: not self.pending)
    @rule(delta=st.integers(-3, 5))
    def start_after(self, delta: int) -> None:
        seq = max(0, self.next_seq - 1 + delta)
        self.j.start_after(seq)
        self.next_seq = seq + 1

    @invariant()
    def agrees(self) -> None:
        recs = self.j.pending()
        assert [(r.seq, r.op.create.name) for r in recs] == sorted(self.pending.items())
        st_ = self.j.stats()
        assert st_["next_seq"] == self.next_seq
        assert st_["acked_seq"] == self.acked()
        assert st_["pending"] == len(self.pending)
        assert st_["file_bytes"] == os.path.getsize(self.path) >= HEADER_SIZE + st_["pending_bytes"]


TestJournalModel = JournalModel.TestCase
TestJournalModel.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
