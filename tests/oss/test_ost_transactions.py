"""The OST's transactions, replay barrier and replay on a real directory, without gRPC:
transnos across starts, commits and the writers record, going back to a barrier, and
replays applied in transno order (pieces for destroyed objects passed over)."""

from __future__ import annotations

import errno
import json

import crc32c
import pytest

from lustrepy.common.errors import LpError
from lustrepy.oss.recovery import open_window
from lustrepy.oss.tgt import BOOT_SHIFT, LAST_RCVD, WRITERS, Tgt
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from tests.oss.test_oss_ofd import make_ofd, read, write


def _tgt(ofd) -> Tgt:
    return Tgt(ofd.osd, ofd.sync_objects, interval=3600)


def _item(transno: int, *pieces: tuple[int, int, bytes]) -> mpb.ReplayItem:
    req = opb.WriteManyRequest(chunks=[opb.WriteChunk(object_id=o, offset=off, data=d, crc32c=crc32c.crc32c(d))
                                       for o, off, d in pieces])
    return mpb.ReplayItem(transno=transno, xid=transno, method="WriteMany", request=req.SerializeToString())


def test_transnos_grow_across_starts_and_commits_forget_the_writers(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    t = _tgt(ofd)
    assert t.boot == 1 and t.base == 0 and t.expected == frozenset()
    a = t.stamp("c1", [1])
    b = t.stamp("c2", [2])
    assert a.transno == (1 << BOOT_SHIFT) + 1 and b.transno == a.transno + 1 and b.last_committed == 0
    assert json.loads(ofd.osd.read_meta(WRITERS)) == ["c1", "c2"]
    assert t.commit() == b.transno
    assert json.loads(ofd.osd.read_meta(WRITERS)) == []
    c = t.stamp("c1", [1])
    # a crash now: the next start knows what was committed and whom to wait for
    t2 = _tgt(ofd)
    assert t2.boot == 2 and t2.base == b.transno and t2.expected == frozenset({"c1"})
    assert t2.stamp("c3", [3]).transno > c.transno


def test_a_barrier_stops_commits(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    t = _tgt(ofd)
    first = t.stamp("c", [1]).transno
    assert t.set_barrier() == first
    t.stamp("c", [1])
    assert t.commit() == first and t.committed() == first
    assert json.loads(ofd.osd.read_meta(LAST_RCVD))["last_committed"] == first


def test_a_damaged_last_rcvd_is_one_clear_error(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    ofd.osd.write_meta(LAST_RCVD, b"{not json")
    with pytest.raises(LpError) as e:
        _tgt(ofd)
    assert e.value.errno == errno.EIO and LAST_RCVD in e.value.message


def test_the_next_start_puts_back_the_bytes_of_the_barrier(tmp_path):
    d = str(tmp_path / "ost")
    ofd = make_ofd(d)
    first, _ = ofd.precreate(3)
    write(ofd, first, 0, b"kept" * 10)
    ofd.barrier.set()
    write(ofd, first, 0, b"LOST")
    write(ofd, first + 1, 0, b"new object bytes")
    ofd.punch(first, 2)
    ofd.destroy([first + 2])
    again = make_ofd(d)                     # the restart
    assert read(again, first, 0, 100) == b"kept" * 10
    assert read(again, first + 1, 0, 100) == b""
    assert not again.exists(first + 2)      # destruction is not rolled back
    assert make_ofd(d).last_id == again.last_id


def test_replays_apply_in_transno_order_and_pass_over_destroyed_objects(tmp_path):
    ofd = make_ofd(str(tmp_path / "ost"))
    first, _ = ofd.precreate(2)
    t = _tgt(ofd)
    t.stamp("a", [first])
    t.stamp("b", [first])                   # both wrote since the last commit: a crash now
    t2 = _tgt(ofd)
    ofd.destroy([first + 1])
    rw = open_window(ofd, t2, window=30)
    assert rw.blocks()
    rw.connected("a", 1)
    rw.connected("b", 1)
    base = t2.base
    assert rw.add("b", [_item(base + 2, (first, 2, b"BB"))], last=True)
    assert rw.add("a", [_item(base + 1, (first + 1, 0, b"gone"), (first, 0, b"AAAA"))], last=True)
    done, failed = rw.outcome("a", 10)
    assert done and failed == [] and not rw.blocks()
    assert read(ofd, first, 0, 10) == b"AABB"
    assert t2.committed() > base            # recovery ends with a commit
    assert json.loads(ofd.osd.read_meta(WRITERS)) == []
